"""The `tierwise` command: one sub-command per verb, each a thin shell over the library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from tierwise.console import console, err_console
from tierwise.errors import TierwiseError, UsageError

app = typer.Typer(
    name="tierwise",
    help="Decide where each piece of your AI should live — device, edge or cloud — and run it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


from tierwise.plan.commands import register as register_plan  # noqa: E402

register_plan(app)  # plan

from tierwise.spec.commands import register as register_spec  # noqa: E402

register_spec(app)  # schema, validate


@app.command()
def simulate(
    spec: Annotated[Path, typer.Argument(help="the spec YAML")],
    strategy: Annotated[
        str, typer.Option(help="plan, cloud-only, edge-only, or all three")
    ] = "plan",
    duration: Annotated[str, typer.Option(help="simulated time, e.g. 24h or 15min")] = "24h",
    seed: Annotated[int, typer.Option(help="random seed (same seed, same run)")] = 0,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write the figures as JSON ('-' = stdout)")
    ] = None,
    plots: Annotated[Path | None, typer.Option(help="write PNG plots into this folder")] = None,
    html: Annotated[Path | None, typer.Option(help="write an HTML report (with plots)")] = None,
) -> None:
    """Replay the plan request by request under the spec's spikes and outages."""
    from tierwise.simulate.commands import run_simulate

    run_simulate(spec, strategy, duration, seed, json_out, plots, html, console)


@app.command()
def edge(
    site: Annotated[str, typer.Option(help="this site's name, as the cloud knows it")],
    cloud: Annotated[str, typer.Option(help="the cloud service URL, e.g. http://127.0.0.1:8000")],
    token_file: Annotated[
        Path | None, typer.Option(help="file holding the site token (else $TIERWISE_EDGE_TOKEN)")
    ] = None,
    trust: Annotated[
        list[Path] | None, typer.Option(help="public key packages must be signed by (repeatable)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="outbox and packages (default ./tierwise-edge-SITE)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address devices connect to")] = None,
    port: Annotated[int | None, typer.Option(help="port devices connect to (0: any free)")] = None,
    durability: Annotated[
        str | None, typer.Option(help="outbox commits survive: 'process' or 'power' (fsync)")
    ] = None,
    outbox_cap: Annotated[int | None, typer.Option(help="outbox byte cap")] = None,
    drop_policy: Annotated[
        str | None, typer.Option(help="when the outbox is full: drop-oldest or drop-newest")
    ] = None,
    drain_timeout: Annotated[float | None, typer.Option(help="seconds to flush at stop")] = None,
    poll_interval: Annotated[float | None, typer.Option(help="seconds between polls")] = None,
    upload_interval: Annotated[
        float | None, typer.Option(help="seconds a telemetry batch may wait to fill")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Run one site's edge agent: serve devices, follow the deployment, store and forward."""
    from tierwise.edge.commands import run_edge

    run_edge(
        site,
        cloud,
        token_file,
        trust or [],
        data_dir,
        host,
        port,
        durability,
        outbox_cap,
        drop_policy,
        drain_timeout,
        poll_interval,
        upload_interval,
        log_level,
    )


@app.command()
def up(
    spec: Annotated[Path, typer.Argument(help="the spec YAML")],
    duration: Annotated[str, typer.Option(help="how long devices stream, e.g. 60s")] = "60s",
    wan: Annotated[
        str | None,
        typer.Option(help="edge->cloud conditions, e.g. 'spec,outage=20s@20s' (docs/up.md)"),
    ] = None,
    scale: Annotated[
        str, typer.Option(help="auto (measure this machine) or a factor of the spec's rates")
    ] = "auto",
    min_rate: Annotated[
        str | None,
        typer.Option(
            help="floor for rare features, requests/s per site (default 1; 0 keeps the "
            "spec's proportions, as byte counts need)"
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write the run as JSON here")] = None,
    strategy: Annotated[str, typer.Option(help="plan, or cloud-only to compare")] = "plan",
    cache: Annotated[
        Path | None, typer.Option(help="scenario package cache (default ~/.cache/tierwise)")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="keep logs and data here (default: a temporary dir)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed of arrivals and the WAN")] = 0,
) -> None:
    """Run the continuum for real on this machine: cloud, edge agents, WAN, devices; measure."""
    from tierwise.up.commands import run_up_command

    run_up_command(
        spec,
        duration,
        wan,
        scale,
        min_rate,
        out,
        strategy,
        cache,
        run_dir,
        seed,
        console,
        err_console,
    )


from tierwise.cloud.commands import cloud_app  # noqa: E402  (light: typer only)

app.add_typer(cloud_app, name="cloud")

from tierwise.package.commands import register as register_package  # noqa: E402  (typer only)

register_package(app)  # package, verify, install, keys new

from tierwise.federate.commands import register as register_federate  # noqa: E402  (typer only)

register_federate(app)  # federate

from tierwise.scenarios.commands import register as register_scenarios  # noqa: E402

register_scenarios(app)  # scenario list/train


def main() -> None:
    """Entry point: run the app, turning every TierwiseError into its message and exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except TierwiseError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        raise SystemExit(130) from None
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(UsageError.exit_code) from None
        raise


if __name__ == "__main__":
    main()
