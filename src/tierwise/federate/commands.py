"""`tierwise federate SPEC [--job NAME]`: run a federated training job of the spec for real.

A thin shell: pick the job the plan made federated (refuse one it made centralized),
run it on Flower (`runner`), draw the progress bar from the run's event log, write the
metrics JSON and chart, package the global model, and upload it for a staged rollout
when a cloud is given. Importing this module costs only typer and rich; the rest loads in
the command. `register(app)` adds the command to the main CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tierwise.cli_options import SpecArgument
from tierwise.console import console

if TYPE_CHECKING:
    from tierwise.spec.model import Spec, TrainingJob
    from tierwise.wire import RolloutRequest

DEFAULT_RUNS = Path("runs")
ADMIN_TOKEN_ENV = "TIERWISE_ADMIN_TOKEN"


def register(app: typer.Typer) -> None:
    """Add `federate` to the `tierwise` app."""
    app.command("federate")(federate)


def federate(
    spec: SpecArgument,
    job: Annotated[
        str | None, typer.Option(help="training job to run (default: the only federated one)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="run directory (default runs/federate/JOB-TIME)")
    ] = None,
    package: Annotated[bool, typer.Option(help="package the global model when done")] = True,
    packages: Annotated[
        Path, typer.Option(help="where packages are kept (versions count up per model)")
    ] = DEFAULT_RUNS / "packages",
    sign_key: Annotated[
        Path | None,
        typer.Option(help="Ed25519 key that signs the package (default: runs/keys, made once)"),
    ] = None,
    cloud: Annotated[
        str | None, typer.Option(help="running continuum's cloud URL: upload and roll out")
    ] = None,
    admin_token_file: Annotated[
        Path | None, typer.Option(help=f"operator token file (else ${ADMIN_TOKEN_ENV})")
    ] = None,
    canary: Annotated[
        list[str] | None, typer.Option(help="canary site of the rollout (repeatable)")
    ] = None,
) -> None:
    """Train a federated job across its sites on Flower; raw data never leaves a site."""
    import time

    from tierwise.errors import TierwiseError
    from tierwise.federate.report import write_report
    from tierwise.federate.runner import RunOptions, run_federated
    from tierwise.spec import load_spec

    loaded = load_spec(spec)
    chosen = choose_job(loaded, job, spec)
    sites = [s.name for s in loaded.feature_sites(chosen)]
    # What --cloud needs is checked before training, which can take many minutes.
    admin_token = _admin_token(admin_token_file) if cloud is not None else ""
    canaries = _canaries(canary, sites, chosen.name)
    run_dir = out or DEFAULT_RUNS / "federate" / f"{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    console.print(
        f"federating [bold]{chosen.name}[/bold] ({chosen.strategy.value}, {chosen.rounds} "
        f"rounds) over {len(sites)} sites: {', '.join(sites)}"
    )
    with _ProgressBar(console, chosen.rounds) as bar:
        result = run_federated(chosen, sites, RunOptions(run_dir=run_dir, on_event=bar.update))
    json_path, png_path = write_report(result)
    _print_summary(console, result)
    console.print(f"[dim]wrote {json_path} and {png_path}[/dim]")
    if not result.ok:
        raise TierwiseError(f"{chosen.name}: {result.reason} (logs in {run_dir / 'logs'})")
    if not package:
        return
    from tierwise.federate.publish import package_result

    published = package_result(result, chosen.model, packages, _sign_key(sign_key, console))
    console.print(f"packaged {published.name} v{published.version} (signed) at {published.path}")
    if cloud is None:
        return
    from tierwise.cloud.client import CloudAdmin

    request = _rollout_request(published.name, published.version, canaries)
    admin = CloudAdmin(cloud, admin_token)
    admin.upload_package(published.path)
    rollout = admin.start_rollout(request)
    console.print(
        f"uploaded to {cloud}; rollout {rollout.id} is {rollout.state.value}: {rollout.reason}"
    )


def choose_job(spec: Spec, name: str | None, source: Path) -> TrainingJob:
    """The job to run: named, or the only one the plan made federated; refuse the rest."""
    from tierwise.errors import SpecError, UsageError
    from tierwise.federate.settings import problems
    from tierwise.plan.training import decide_training

    if not spec.training:
        raise UsageError(f"{source}: the spec has no training jobs")
    decisions = {t.name: decide_training(spec, t) for t in spec.training}
    if name is None:
        federated = [t for t in spec.training if decisions[t.name].mode == "federated"]
        if not federated:
            raise UsageError(
                f"{source}: no training job is federated in the plan "
                f"({'; '.join(d.reason for d in decisions.values())})"
            )
        if len(federated) > 1:
            names = ", ".join(t.name for t in federated)
            raise UsageError(f"{source}: several federated jobs ({names}); pick one with --job")
        job = federated[0]
    else:
        found = [t for t in spec.training if t.name == name]
        if not found:
            known = ", ".join(t.name for t in spec.training)
            raise UsageError(f'{source}: no training job "{name}"; known: {known}')
        job = found[0]
    decision = decisions[job.name]
    if decision.mode != "federated":
        raise UsageError(
            f'training job "{job.name}" is centralized in the plan ({decision.reason}); '
            "tierwise federate runs only jobs the plan makes federated"
        )
    index = spec.training.index(job)
    found_problems = problems(job, len(spec.feature_sites(job)))
    if found_problems:
        raise SpecError(
            [
                f"{source}:{_line(source, ('training', index, *path))} "
                f"training[{index}].{'.'.join(path)}: {message}"
                for path, message in found_problems
            ]
        )
    return job


def _line(source: Path, loc: tuple[str | int, ...]) -> int:
    """The YAML line of the deepest part of `loc` present in the file (1 if unknown)."""
    import yaml

    try:
        node: Any = yaml.compose(source.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return 1
    line = 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((kv for kv in node.value if kv[0].value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _sign_key(given: Path | None, console: Any) -> Path:
    if given is not None:
        return given
    from tierwise.package.keys import write_keypair

    default = DEFAULT_RUNS / "keys" / "tierwise.key"
    if not default.exists():
        write_keypair(default.parent)
        console.print(f"[dim]made a signing key pair in {default.parent} (keep the .key private)")
    return default


def _canaries(given: list[str] | None, sites: list[str], job: str) -> list[str]:
    """The rollout's canary sites: those given, each a site the job trains at; else the first."""
    from tierwise.errors import UsageError

    unknown = [site for site in given or [] if site not in sites]
    if unknown:
        raise UsageError(
            f"--canary {', '.join(unknown)}: not a site of {job} (its sites: {', '.join(sites)})"
        )
    return list(given) if given else sites[:1]


def _rollout_request(name: str, version: int, canary_sites: list[str]) -> RolloutRequest:
    """Canaries first, the rest once they bake, with RolloutRequest's default thresholds."""
    from pydantic import ValidationError

    from tierwise.errors import UsageError
    from tierwise.wire import RolloutRequest

    try:
        return RolloutRequest(package=name, version=version, canary_sites=canary_sites)
    except ValidationError as exc:
        raise UsageError(f"cannot roll out {name} v{version}: {exc}") from None


def _admin_token(path: Path | None) -> str:
    from tierwise.errors import UsageError

    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read the admin token: {exc.strerror}") from None
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    if not token:
        raise UsageError(
            f"--cloud needs the operator token: --admin-token-file or ${ADMIN_TOKEN_ENV}"
        )
    return token


class _ProgressBar:
    """A rich progress bar over rounds, fed with the run's events."""

    def __init__(self, console: Any, rounds: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
        )
        self.task = self.progress.add_task("starting sites", total=rounds, status="")

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "start":
            self.progress.update(self.task, description=f"{event['nodes']} sites connected")
        elif kind == "round":
            glob = event.get("global", {})
            acc = glob.get("eval_acc")
            status = (
                f"acc {acc:.3f}  " if acc is not None else ""
            ) + f"up {event['bytes_up'] / 1e3:.0f} kB  {event['seconds']:.1f}s"
            if "epsilon" in event:
                status += f"  eps {event['epsilon']:.2f}"
            self.progress.update(
                self.task, completed=event["round"], description="training", status=status
            )


def _print_summary(console: Any, result: Any) -> None:
    from rich.table import Table

    from tierwise.federate.report import summarize

    s = summarize(result)
    table = Table(title=f"{s['job']}: {s['status']}", show_header=False)
    table.add_row("strategy", s["strategy"])
    table.add_row("rounds", f"{s['rounds_done']} of {s['rounds_planned']}")
    if s["final_accuracy"] is not None:
        table.add_row("accuracy (sites' held-out rows)", f"{s['final_accuracy']:.4f}")
    table.add_row("bytes up / down", f"{s['bytes_up']:,} / {s['bytes_down']:,}")
    if s["seconds_per_round"] is not None:
        table.add_row("seconds per round", f"{s['seconds_per_round']:.2f}")
    if s["dp"] is not None:
        table.add_row("privacy", f"epsilon {s['dp']['epsilon']:.3f} at delta {s['dp']['delta']:g}")
    if s["reason"]:
        table.add_row("stopped", s["reason"])
    console.print(table)
