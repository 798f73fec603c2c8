"""`tierwise up SPEC`: plan, build, start, deploy, calibrate, stream, measure, report — for real.

The continuum runs as separate processes on 127.0.0.1, each started like an operator would:
one `tierwise cloud`; per site a WAN proxy in front of the cloud and a `tierwise edge` agent
whose cloud URL is that proxy; per site one device process streaming the scenario's data.
Everything is stopped on the way out — normal end, Ctrl-C, SIGTERM or error (see
`processes.py`). The run directory keeps every log and data directory; it is removed after
a successful run unless one was given.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import UsageError
from tierwise.plan.evaluate import Outcome
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.model import Spec
from tierwise.up import components
from tierwise.up.balancer import start_cloud_replicas
from tierwise.up.broker import SiteBroker, start_brokers
from tierwise.up.components import Tokens
from tierwise.up.deploy import (
    build_packages,
    deploy,
    deployed_variant,
    manifest_of,
    package_dir,
    wait_until_serving,
)
from tierwise.up.layout import (
    FeatureRun,
    Protocol,
    Strategy,
    layout,
    scenarios_needed,
    site_names,
)
from tierwise.up.learning import LearnerThread, loop_targets
from tierwise.up.live import agent_state
from tierwise.up.processes import Child, Supervisor
from tierwise.up.report import SiteResult, build_report
from tierwise.up.scale import (
    Scale,
    calibration_feature,
    choose_scale,
    measure_capacity,
    request_bodies,
)
from tierwise.up.shift import Shift, check_shift
from tierwise.up.stream import stream
from tierwise.up.wan_schedule import WanSchedule, run_spec

CACHE_ENV = "TIERWISE_CACHE"
WARMUP_S = 2.0  # uncounted device traffic before the measured run (connections, caches)
CALIBRATION_SITE = "calibration"  # a throwaway site: its traffic never crosses a measured WAN
DRAIN_TIMEOUT_S = 20.0
NOTES = [
    "compute is this machine's CPU running the scenario's models (ONNX Runtime), not the "
    "spec's hardware: latencies compare the system's shape, not the silicon",
    "the device-edge LAN is loopback (not emulated); the edge-cloud WAN is emulated per site",
    "rates are the spec's mean rates times the scale (peak factors are not replayed)",
]


MQTT_NOTES = [
    "devices publish to their site's MQTT broker (QoS 1) and the agent answers there; the "
    "scale is chosen from the agent's capacity measured over HTTP",
]


def _brokers(opts: UpOptions, sites: int) -> str:
    """What the start line says of the MQTT brokers (nothing over HTTP)."""
    if opts.protocol != "mqtt":
        return ""
    if opts.mqtt_broker is not None:
        return f" (devices over MQTT on {opts.mqtt_broker})"
    return f", {sites} Mosquitto brokers (devices over MQTT)"


def default_cache() -> Path:
    """Where scenario packages are built once and reused: $TIERWISE_CACHE or ~/.cache/tierwise."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "tierwise"
    )
    return Path(root) / "packages"


@dataclass
class UpOptions:
    spec_path: Path
    duration: float
    wan: WanSchedule
    scale: float | None  # None: measure and choose
    min_rate: float | None = None  # floor of rare features, requests/s per site; None: default
    strategy: Strategy = "plan"
    cache: Path = field(default_factory=lambda: default_cache())
    run_dir: Path | None = None
    seed: int = 0
    protocol: Protocol = "http"  # how devices reach their site's agent
    mqtt_broker: str | None = None  # mqtt: every site on this broker instead of one each
    shift: Shift | None = None  # one site's stream shifted mid-run (up/shift.py)
    cloud_replicas: int = 1  # more than one: behind HAProxy, on `db_url` (PostgreSQL)
    db_url: str | None = None  # the cloud's database; None: SQLite in the run directory
    learn: bool = False  # run the learning loop (up/learning.py)
    # tests only: how a feature is retrained, by where ("centralized"/"federated"); a test
    # injects a deliberately broken model this way
    trainers: dict[str, Any] | None = None


@dataclass
class _Continuum:
    """The running processes of one run."""

    cloud: Child
    wans: dict[str, Child]
    agents: dict[str, Child]
    admin: CloudAdmin
    brokers: dict[str, SiteBroker] = field(default_factory=dict)  # protocol mqtt
    replicas: list[Child] = field(default_factory=list)  # behind `cloud`, the balancer


def run_up(opts: UpOptions, console: Console, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the continuum of a spec for `opts.duration` seconds; the run.json document."""
    from tierwise.plan.planner import plan
    from tierwise.spec import load_spec

    spec = load_spec(opts.spec_path)
    result = plan(spec)
    strategy_name = "tierwise" if opts.strategy == "plan" else "cloud-only"
    runs = layout(spec, result.strategies[strategy_name], opts.strategy)
    sites = site_names(spec, runs)
    # what each site's agent serves: what a shift may change, and what to wait for at start
    served = {
        site: {r.name for r in runs if r.uses_agent and any(s.site == site for s in r.sites)}
        for site in sites
    }
    if opts.shift is not None:
        check_shift(opts.shift, served, opts.duration)
    packages = build_packages(scenarios_needed(runs), opts.cache, say)
    public_key = next(iter(packages.values())).public_key
    data = {s: _test_data(s, opts.cache) for s in scenarios_needed(runs)}
    run_dir = opts.run_dir or Path(tempfile.mkdtemp(prefix="tierwise-up-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    tokens = Tokens.issue([*sites, CALIBRATION_SITE])
    with Supervisor(run_dir / "logs") as sup:
        say(
            f"starting the cloud, {len(sites)} WAN proxies{_brokers(opts, len(sites))} and edge "
            f"agents (logs: {sup.log_dir})"
        )
        cont = _start(sup, run_dir, spec, runs, sites, tokens, public_key, opts)
        say(
            f"dashboard: {cont.cloud.url}/dashboard (sign in with the operator token in "
            f"{Tokens.admin_file(run_dir)}; it lives as long as this run)"
        )
        deployed = deploy(cont.admin, runs, packages, say)
        # the dashboard's cost view projects the plan's $/month onto the measured traffic
        cont.admin.put_plan(result.cost_document())
        expected = {site: served[site] for site in cont.agents}
        wait_until_serving({s: c.url for s, c in cont.agents.items()}, expected)
        capacity = None
        if opts.scale is None:
            capacity = _calibrate(
                sup, run_dir, runs, cont, deployed.assignments, tokens, data, public_key
            )
        scale = choose_scale(runs, opts.duration, opts.scale, capacity, opts.min_rate)
        console.print(scale.explain())
        devices = {
            site: components.start_devices(
                sup,
                run_dir,
                site,
                _device_config(site, runs, scale, cont, tokens, run_dir, opts, data, packages),
            )
            for site in sites
        }
        for site, child in devices.items():
            sup.wait_ready(child, rf"devices {site} ready", components.READY_TIMEOUT_S)
        started = datetime.now(UTC)
        with _learning(opts, spec, runs, packages, run_dir, cont, sites, say) as learner:
            stream(
                devices,
                [cont.cloud, *cont.replicas, *cont.wans.values(), *cont.agents.values()],
                cont.wans,
                {s: a.url for s, a in cont.agents.items()},
                runs,
                opts.duration,
                opts.wan,
                console,
                WARMUP_S,
                replicas={r.name: r.url for r in cont.replicas},
            )
        results = _finish(sup, run_dir, sites, devices, cont)
    predicted = _predict(spec, result.strategies[strategy_name], opts, results)
    header = {
        "spec": spec.name,
        "spec_path": str(opts.spec_path),
        "strategy": opts.strategy,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": opts.duration,
        "warmup_s": WARMUP_S,
        "scale": {
            "factor": scale.factor,
            "auto": scale.auto,
            "spec_requests_per_s": scale.spec_rate,
            "measured_capacity_per_s": scale.capacity,
            "offered_requests_per_s": scale.offered,
            "boosted": scale.boosted,
            "floor_per_site": scale.floor,
            "rates": scale.rates,
            "explained": scale.explain(),
        },
        "wan": {
            "schedule": opts.wan.text,
            "outages": [
                {"start_s": o.start_s, "duration_s": o.duration_s} for o in opts.wan.outages
            ],
            "sites": {site: _conditions(opts.wan, spec, site) for site in sites},
        },
        "deployed": deployed.summary,
        "protocol": opts.protocol,
        "shift": opts.shift.as_dict() if opts.shift is not None else None,
        "cloud": {
            "replicas": opts.cloud_replicas,
            "database": "sqlite"
            if opts.db_url is None
            else opts.db_url.split(":")[0].split("+")[0],
        },
        "learning": learner.section() if learner is not None else None,
        "notes": NOTES + (MQTT_NOTES if opts.protocol == "mqtt" else []),
        "run_dir": str(run_dir),
    }
    report = build_report(header, runs, predicted, results)
    if opts.run_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
        report["run_dir"] = None
    return report


@contextmanager
def _learning(
    opts: UpOptions,
    spec: Spec,
    runs: list[FeatureRun],
    packages: dict[str, ScenarioPackages],
    run_dir: Path,
    cont: _Continuum,
    sites: list[str],
    say: Callable[[str], None],
) -> Iterator[LearnerThread | None]:
    """The learner (up/learning.py) while the devices stream, with --learn; else nothing."""
    if not opts.learn:
        yield None
        return
    from tierwise.scenarios.build import default_sign_key

    targets, notes = loop_targets(spec, runs, packages, run_dir)
    for note in notes:
        say(note)
    wan = {site: opts.wan.conditions(spec.wan(spec.site(site))) for site in sites}
    learner = LearnerThread(
        cont.admin,
        targets,
        notes,
        run_dir / "learning",
        default_sign_key(opts.cache),
        wan,
        trainers=opts.trainers,
        on_event=lambda e: say(
            f"learning loop: {e.feature} {e.step} at {', '.join(e.sites)}: {e.detail}"
        ),
    )
    with learner:
        yield learner


def check_cloud_options(replicas: int, db_url: str | None) -> None:
    """Several replicas need one database they can all reach: PostgreSQL."""
    if replicas < 1:
        raise UsageError(f"--cloud-replicas {replicas}: at least 1")
    if replicas > 1 and not (db_url or "").startswith("postgresql"):
        raise UsageError(
            f"--cloud-replicas {replicas}: replicas share one PostgreSQL; give "
            "--db postgresql+psycopg://user@host:5432/db"
        )


def _start(
    sup: Supervisor,
    run_dir: Path,
    spec: Spec,
    runs: list[FeatureRun],
    sites: list[str],
    tokens: Tokens,
    public_key: Path,
    opts: UpOptions,
) -> _Continuum:
    replicas: list[Child] = []
    if opts.cloud_replicas > 1:
        assert opts.db_url is not None  # checked with the options
        replicas, cloud = start_cloud_replicas(
            sup, run_dir, tokens, public_key, opts.cloud_replicas, opts.db_url
        )
    else:
        db = ("--db", opts.db_url) if opts.db_url else ()
        cloud = components.start_cloud(sup, run_dir, tokens, public_key, *db)
    conditions = {site: opts.wan.conditions(spec.wan(spec.site(site))) for site in sites}
    wans = components.start_wans(sup, cloud, conditions, opts.seed)
    agents: dict[str, Child] = {}
    brokers: dict[str, SiteBroker] = {}
    if any(r.uses_agent for r in runs):
        clouds = {site: wans[site].url for site in sites}
        extra: dict[str, list[str]] = {}
        if opts.protocol == "mqtt":
            brokers, _children = start_brokers(sup, run_dir, sites, opts.mqtt_broker)
            extra = {site: broker.agent_args() for site, broker in brokers.items()}
        agents = components.start_agents(sup, run_dir, clouds, public_key, extra=extra)
    admin = CloudAdmin(cloud.url, tokens.admin)
    return _Continuum(cloud, wans, agents, admin, brokers, replicas)


def _calibrate(
    sup: Supervisor,
    run_dir: Path,
    runs: list[FeatureRun],
    cont: _Continuum,
    assignments: dict[str, Any],
    tokens: Tokens,
    data: dict[str, Path],
    public_key: Path,
) -> float | None:
    """Measured requests/s through the busiest path: a throwaway agent, or the cloud itself."""
    run = calibration_feature(runs)
    if run is None:
        return None
    if run.mode == "direct":
        headers = {"Authorization": f"Bearer {tokens.sites[run.sites[0].site]}"}
        url = f"{cont.cloud.url}/v1/infer/{run.name}"
        return measure_capacity(url, headers, request_bodies(data[run.scenario], None))
    cont.admin.assign(CALIBRATION_SITE, run.name, assignments[run.name])
    agents = components.start_agents(
        sup, run_dir, {CALIBRATION_SITE: cont.cloud.url}, public_key, prefix="calibrate"
    )
    agent = agents[CALIBRATION_SITE]
    try:
        wait_until_serving({CALIBRATION_SITE: agent.url}, {CALIBRATION_SITE: {run.name}})
        url = f"{agent.url}/v1/predict/{run.name}"
        return measure_capacity(url, {}, request_bodies(data[run.scenario], "calibration"))
    finally:
        sup.stop(agent)


def _device_config(
    site: str,
    runs: list[FeatureRun],
    scale: Scale,
    cont: _Continuum,
    tokens: Tokens,
    run_dir: Path,
    opts: UpOptions,
    data: dict[str, Path],
    packages: dict[str, ScenarioPackages],
) -> dict[str, Any]:
    features = []
    for run in runs:
        if site not in scale.rates[run.name]:
            continue
        role = run.local_role or run.cloud_role
        assert role is not None
        mode = {"device": "device", "direct": "direct"}.get(run.mode, "agent")
        features.append(
            {
                "name": run.name,
                "mode": mode,
                "rate": scale.rates[run.name][site],
                "deadline_s": run.feature.deadline,
                "percentile": run.feature.percentile,
                "data": str(data[run.scenario]),
                "classes": [
                    str(c) for c in manifest_of(packages, run.scenario, role).output.classes
                ],
                "package": str(package_dir(packages, run.scenario, role))
                if mode == "device"
                else None,
                "trust": str(packages[run.scenario].public_key) if mode == "device" else None,
                "variant": deployed_variant(run, manifest_of(packages, run.scenario, role))
                if mode == "device"
                else None,
                "shift": _shift_of(opts.shift, site, run.name),
                "held_out_labels": opts.learn and mode == "agent",
            }
        )
    return {
        "site": site,
        "agent_url": cont.agents[site].url if site in cont.agents else None,
        "mqtt": cont.brokers[site].device_config(site) if site in cont.brokers else None,
        "cloud_url": cont.wans[site].url,
        "token_file": str(Tokens.site_file(run_dir, site)),
        "duration_s": opts.duration,
        "warmup_s": WARMUP_S,
        "seed": opts.seed,
        "summary": str(run_dir / f"devices-{site}.summary.json"),
        "features": features,
    }


def _shift_of(shift: Shift | None, site: str, feature: str) -> dict[str, float] | None:
    if shift is None or (shift.site, shift.feature) != (site, feature):
        return None
    return {"at_s": shift.at_s, "gain": shift.gain, "offset": shift.offset, "noise": shift.noise}


def _finish(
    sup: Supervisor,
    run_dir: Path,
    sites: list[str],
    devices: dict[str, Child],
    cont: _Continuum,
) -> dict[str, SiteResult]:
    """Let the outboxes drain, stop agents (they flush), read what the cloud got, stop the WAN."""
    import json

    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while cont.agents and time.monotonic() < deadline:
        depths = [
            (agent_state(a.url).get("outbox") or {}).get("depth_events", 0)
            for a in cont.agents.values()
        ]
        if all(d == 0 for d in depths):
            break
        time.sleep(0.25)
    states = {site: agent_state(a.url) for site, a in cont.agents.items()}
    sup.stop(*cont.agents.values())  # each flushes what is left in its outbox
    results: dict[str, SiteResult] = {}
    for site in sites:
        summary = json.loads((run_dir / f"devices-{site}.summary.json").read_text("utf-8"))
        results[site] = SiteResult(summary, agent=states.get(site, {}))
        if site in cont.agents:
            results[site].delivered = cont.admin.streams(site)
    drift = cont.admin.drift()
    for site in sites:
        results[site].drift = [v for v in drift if v["site"] == site]
    sup.stop(*cont.wans.values())
    for site, wan in cont.wans.items():
        results[site].wan = components.wan_stats(wan)
    sup.stop(cont.cloud)
    sup.stop(*cont.replicas)
    return results


def _predict(
    spec: Spec, outcome: Outcome, opts: UpOptions, results: dict[str, SiteResult]
) -> Outcome:
    """The strategy's figures for what this run did: the same placement, under the WAN it
    injected, with the payload and result sizes its devices actually sent and received."""
    from tierwise.plan.evaluate import evaluate
    from tierwise.plan.views import enumerate_candidates

    run = run_spec(spec, opts.wan, opts.duration)
    features = []
    for feature in run.features:
        seen = [
            r.devices["features"][feature.name]
            for r in results.values()
            if feature.name in r.devices.get("features", {})
        ]
        sizes = {}
        for key, spec_key in (("payload_bytes", "payload"), ("result_bytes", "result")):
            values = [s[key] for s in seen if s.get(key) is not None]
            if values:
                sizes[spec_key] = sum(values) / len(values)
        features.append(feature.model_copy(update=sizes))
    run = run.model_copy(update={"features": features})
    candidates = enumerate_candidates(run)
    picked = [
        next(c for c in options if c.label == f.label)
        for options, f in zip(candidates, outcome.features, strict=True)
    ]
    return evaluate(run, outcome.name, picked)


def _conditions(schedule: WanSchedule, spec: Spec, site: str) -> dict[str, float]:
    c = schedule.conditions(spec.wan(spec.site(site)))
    return {"rtt_p50_ms": c.rtt_p50_s * 1000, "rtt_p99_ms": c.rtt_p99_s * 1000, "loss": c.loss}


def _test_data(scenario: str, cache: Path) -> Path:
    """The scenario's held-out test split as .npz (what the devices stream)."""
    from tierwise.package.evaldata import save_eval_data
    from tierwise.scenarios import get_scenario

    path = cache / scenario / "models" / f"{scenario}-test.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_eval_data(path, get_scenario(scenario).test_data())
    return path
