"""The package verbs: `keys new`, `package`, `verify`, `install`.

Thin shells over the package modules; importing this module costs only typer and rich
(everything else loads inside the commands). `register(app)` adds them to the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tierwise.console import console, err_console, timed_progress

if TYPE_CHECKING:
    from rich.console import Console

    from tierwise.package.evaldata import EvalData
    from tierwise.package.manifest import Manifest
    from tierwise.spec.model import Spec

CASCADE_BUDGET = 0.15  # the escalation share the summary quotes (the report's acceptance point)

keys_app = typer.Typer(help="Make Ed25519 signing keys for packages.", no_args_is_help=True)

TrustOption = Annotated[
    list[Path],
    typer.Option("--trust", help="public key (PEM or 32 raw bytes) or a dir of *.pub; repeatable"),
]


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `tierwise` app."""
    app.command("package")(package)
    app.command("verify")(verify)
    app.command("install")(install)
    app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    out: Annotated[Path, typer.Option(help="directory for NAME.key and NAME.pub")] = Path("keys"),
    name: Annotated[str, typer.Option(help="file name stem")] = "tierwise",
    force: Annotated[bool, typer.Option(help="replace an existing pair")] = False,
) -> None:
    """Write an Ed25519 key pair: NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (PEM)."""
    from tierwise.package.keys import key_id, load_public_key, write_keypair

    private, public = write_keypair(out, name, force=force)
    console.print(f"private key {private}  (sign with it; keep it off gateways)")
    console.print(f"public key  {public}  (id {key_id(load_public_key(public))}; trust it)")


def package(
    model: Annotated[Path, typer.Argument(help="trained model: .joblib (sklearn), .pt, .onnx")],
    data: Annotated[str, typer.Option(help="evaluation data: an .npz (x, y) or a scenario name")],
    out: Annotated[Path, typer.Option(help="directory to write the package to")],
    name: Annotated[str, typer.Option(help="model name (the same for every version)")],
    version: Annotated[int, typer.Option(help="package version; must grow with every release")],
    sign_key: Annotated[Path, typer.Option(help="Ed25519 private key (tierwise keys new)")],
    cloud_model: Annotated[
        Path | None,
        typer.Option(help="reference cloud model or package, for the cascade curve"),
    ] = None,
    latency_runs: Annotated[int, typer.Option(help="timed calls per variant and batch")] = 300,
    variants: Annotated[
        str,
        typer.Option(
            help="comma-separated: fp32, int8, distilled, distilled-int8, pruned, pruned-int8, "
            "sparse (docs/package.md)"
        ),
    ] = "fp32,int8",
    student_hidden: Annotated[
        str, typer.Option(help="hidden layer widths of the distilled student, e.g. 128 or 64,32")
    ] = "128",
    profiles: Annotated[
        Path | None,
        typer.Option(help="a spec: show how each variant fits its device classes and gateway"),
    ] = None,
    force: Annotated[bool, typer.Option(help="replace an existing package at --out")] = False,
) -> None:
    """Build a signed edge package: ONNX fp32, INT8, --variants; measured and calibrated."""
    from tierwise.errors import UsageError
    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.variants import compress_options, parse_variants

    if latency_runs < 1:
        raise UsageError(f"--latency-runs must be 1 or more, got {latency_runs}")
    kinds = parse_variants(variants)
    compress = compress_options(student_hidden)
    spec = None
    if profiles is not None:
        from tierwise.spec import load_spec

        spec = load_spec(profiles)  # bad input fails before minutes of work
    progress = timed_progress()
    progress(f"loading evaluation data {data}")
    eval_data = _eval_data(data)
    options = BuildOptions(
        name,
        version,
        sign_key,
        cloud_model,
        latency_runs=latency_runs,
        force=force,
        variants=kinds,
        compress=compress,
    )
    result = build_package(model, eval_data, out, options, progress)
    for note in result.notes:
        err_console.print(f"note: {note}", markup=False)
    print_summary(result.manifest, console)
    if spec is not None:
        print_profiles(result.manifest, spec, console)
    console.print(f"wrote {out}")


def _eval_data(ref: str) -> EvalData:
    """`--data`: an .npz file, or the held-out split of the scenario it names."""
    from tierwise.package.evaldata import load_eval_data

    path = Path(ref)
    if not path.exists() and path.suffix != ".npz":
        from tierwise.scenarios import get_scenario

        return get_scenario(ref).eval_data()
    return load_eval_data(path)


def verify(
    package_dir: Annotated[Path, typer.Argument(metavar="PACKAGE", help="package directory")],
    trust: TrustOption,
    installed_version: Annotated[
        int | None, typer.Option(help="refuse unless newer than this version")
    ] = None,
    installed: Annotated[
        Path | None,
        typer.Option(help="install dir (tierwise install): refuse unless newer than its current"),
    ] = None,
) -> None:
    """Check signature, file list, each file's hash and the version; exit 3 if refused."""
    from tierwise.package.install import installed_version as version_in
    from tierwise.package.verify import verify_package

    floor = installed_version
    if installed is not None:
        held = version_in(installed)
        floor = held if floor is None or (held is not None and held > floor) else floor
    manifest = verify_package(package_dir, trust, installed_version=floor)
    console.print(
        f"ok: {manifest.name} v{manifest.version} — signature by a trusted key, "
        f"{len(manifest.files)} files match the manifest"
        + (f", newer than installed v{floor}" if floor is not None else "")
    )


def install(
    package_dir: Annotated[Path, typer.Argument(metavar="PACKAGE", help="package directory")],
    into: Annotated[Path, typer.Option(help="install directory (current/previous links)")],
    trust: TrustOption,
) -> None:
    """Verify a package as an update and swap it in atomically, keeping last-known-good."""
    from tierwise.package.install import install_package, installed_version

    before = installed_version(into) if into.exists() else None
    manifest = install_package(package_dir, into, trust)
    was = f" (was v{before}, kept as previous)" if before is not None else ""
    console.print(f"installed {manifest.name} v{manifest.version} in {into}{was}")


def _size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n >= 10 * 1024 else f"{n / 1024:.1f} KiB"


def print_summary(manifest: Manifest, console: Console) -> None:
    """The variants side by side, and the cascade at the budget the report quotes."""
    from rich.table import Table

    table = Table(
        "variant",
        "method",
        "quantization",
        "size",
        "MACs/row",
        "accuracy",
        "batch 1 p50/p99",
        "batch 32 p50/p99",
    )
    for v in manifest.variants:
        cells = []
        for batch in (1, 32):
            stats = v.latency_at(batch)
            cells.append("-" if stats is None else f"{stats.p50_ms:.3f} / {stats.p99_ms:.3f} ms")
        table.add_row(
            v.name,
            v.method,
            v.quantization,
            _size(v.size_bytes),
            "-" if v.macs is None else f"{v.macs:,}",
            f"{v.accuracy:.2%}",
            *cells,
        )
    console.print(table)
    cascade = manifest.cascade
    if cascade is None:
        return
    for name, rules in cascade.rules.items():
        best = cascade.best_rule[name]
        console.print(
            f"cascade {name} → {cascade.reference.name} (alone {cascade.reference.accuracy:.2%}); "
            f"oracle would escalate {cascade.oracle_escalated[name]:.1%}; best rule {best}"
        )
        for rule in rules:
            point = cascade.threshold_for(name, CASCADE_BUDGET, rule)
            bound = point.local_error_bound
            console.print(
                f"  {rule:<16} threshold {point.threshold:.4f} escalates {point.escalated:.1%}, "
                f"joint accuracy {point.accuracy:.2%}"
                + ("" if bound is None else f", local answers wrong <= {bound:.1%} (95%)")
            )


def print_profiles(manifest: Manifest, spec: Spec, console: Console) -> None:
    """Each variant on each device class and gateway of a spec: fits, and time per call."""
    from rich.table import Table

    from tierwise.package.profiles import profile_fits

    tiers = profile_fits(manifest, spec)
    table = Table("variant", *(t.tier for t in tiers), title=f"on the hardware of {spec.name}")
    for i, v in enumerate(manifest.variants):
        table.add_row(v.name, *(t.fits[i].text for t in tiers))
    table.add_row("most accurate that fits", *(t.pick or "nothing" for t in tiers))
    console.print(table)
    console.print(
        "a feature's deadline and accuracy floor can rule out more: `tierwise plan` decides"
    )
