"""`tierwise up SPEC`: run the continuum on this machine; options in, run.json and a table out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tierwise.cli_options import SpecArgument, parse_duration
from tierwise.console import console, err_console
from tierwise.errors import UsageError

if TYPE_CHECKING:
    from tierwise.up.layout import Strategy


def register(app: typer.Typer) -> None:
    """Add `up` to the `tierwise` app."""
    app.command("up")(up)


def up(
    spec: SpecArgument,
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
    protocol: Annotated[
        str,
        typer.Option(help="how devices reach their agent: http, or mqtt (a Mosquitto per site)"),
    ] = "http",
    mqtt_broker: Annotated[
        str | None,
        typer.Option(help="mqtt: use this broker for every site, e.g. mqtt://user:pw@host:1883"),
    ] = None,
    cloud_replicas: Annotated[
        int,
        typer.Option(help="run the cloud as N replicas behind HAProxy (needs --db postgresql://)"),
    ] = 1,
    db: Annotated[
        str | None,
        typer.Option(help="the cloud's database URL (default: SQLite in the run directory)"),
    ] = None,
    shift: Annotated[
        str | None,
        typer.Option(
            help="shift one site's inputs mid-run, e.g. 'plant-north:safety-stop@20s,gain=1.3' "
            "(docs/learning.md)"
        ),
    ] = None,
    learn: Annotated[
        bool,
        typer.Option(
            help="run the learning loop: retrain a drifted feature where the spec says, roll "
            "it out to the drifted sites (docs/learning.md)"
        ),
    ] = False,
) -> None:
    """Run the continuum for real on this machine: cloud, edge agents, WAN, devices; measure."""
    from tierwise.up.layout import PROTOCOLS, STRATEGIES
    from tierwise.up.report import render_table
    from tierwise.up.run import UpOptions, check_cloud_options, default_cache, run_up
    from tierwise.up.scale import parse_min_rate, parse_scale
    from tierwise.up.shift import parse_shift
    from tierwise.up.wan_schedule import parse_wan

    seconds = parse_duration(duration)
    if seconds < 1:
        raise UsageError(f"--duration {duration}: run for at least 1s")
    if strategy not in STRATEGIES:
        raise UsageError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    chosen: Strategy = "plan" if strategy == "plan" else "cloud-only"
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if mqtt_broker is not None:
        if protocol != "mqtt":
            raise UsageError("--mqtt-broker: only with --protocol mqtt")
        from tierwise.edge.mqtt_wire import BrokerAddress

        BrokerAddress.parse(mqtt_broker, "--mqtt-broker")
    check_cloud_options(cloud_replicas, db)
    options = UpOptions(
        spec_path=spec,
        duration=seconds,
        wan=parse_wan(wan),
        scale=parse_scale(scale),
        min_rate=parse_min_rate(min_rate),
        strategy=chosen,
        cache=cache or default_cache(),
        run_dir=run_dir,
        seed=seed,
        protocol="mqtt" if protocol == "mqtt" else "http",
        mqtt_broker=mqtt_broker,
        shift=parse_shift(shift) if shift is not None else None,
        cloud_replicas=cloud_replicas,
        db_url=db,
        learn=learn,
    )
    if not spec.is_file():
        raise UsageError(f"{spec}: no such spec file")

    def say(text: str) -> None:
        err_console.print(f"[dim]{text}[/dim]", highlight=False)

    report = run_up(options, console, say)
    render_table(report, console)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        console.print(f"[dim]wrote {out}[/dim]")
