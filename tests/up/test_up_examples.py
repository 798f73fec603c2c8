"""`tierwise up` runs every example for real, briefly, and writes a sane run.json.

Each run starts the real cloud, a WAN proxy and an edge agent per site and a device process
per site, as separate processes, for a few seconds at a small scale; the scenario packages
are built once for the whole module. What must hold: every feature got requests and
answers, every measured figure sits next to the plan's prediction for it, every event the
devices were acknowledged reached the cloud, and no process outlives the run.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.cloud.conftest import postgres_schema
from tests.up.test_balancer import require_haproxy

from tierwise.spec import load_spec

if TYPE_CHECKING:
    from tierwise.scenarios.build import ScenarioPackages

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(scenario_cache: Path) -> Path:
    """The session's package cache: packages the other tests built are reused, not rebuilt."""
    return scenario_cache


def _up_command(spec: Path, out: Path, run_dir: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tierwise", "up", str(spec),
        "--cache", str(cache), "--out", str(out), "--run-dir", str(run_dir), *extra,
    ]  # fmt: skip


def _up(
    spec: Path,
    out: Path,
    run_dir: Path,
    cache: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = _up_command(spec, out, run_dir, cache, *extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)


def _orphans(marker: str) -> list[str]:
    """Command lines of live processes that mention `marker` (the run's directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(cmdline)
    return found


def _check_report(report: dict[str, Any], spec_path: Path, duration: float) -> None:
    spec = load_spec(spec_path)
    assert report["spec"] == spec.name
    assert report["duration_s"] == duration
    assert 0 < report["scale"]["factor"] <= 1
    assert [f["feature"] for f in report["features"]] == [f.name for f in spec.features]
    for f in report["features"]:
        name = f["feature"]
        assert f["requests"] > 0, name
        assert f["answered"] > 0, name
        assert f["placement"] in {"device", "edge", "cascade", "cloud"}
        lat = f["latency_ms"]
        assert lat["plan"] is not None, name
        assert lat["plan"] > 0, name
        assert 0 < lat["measured"] < 60_000, name
        esc = f["escalation_rate"]
        assert 0 <= esc["plan"] <= 1
        assert 0 <= esc["measured"] <= 1
        assert esc["sent_to_cloud"] <= esc["measured"] + 1e-9
        if f["placement"] in ("edge", "device"):
            assert esc["measured"] == 0, name
        if f["placement"] == "cloud":
            assert esc["measured"] == 1, name
        miss = f["deadline_misses"]
        assert miss["plan"] is not None
        assert math.isfinite(miss["plan"])
        assert 0 <= miss["measured"] <= f["requests"]
        acc = f["accuracy"]
        assert acc["labelled"] > 0, name
        assert 0.3 < acc["measured"] <= 1, name
    # what each agent served at the end (benchmarks/learning_loop.py reads the variant here)
    served = [(name, f) for site in report["sites"].values() for name, f in site["served"].items()]
    if any(f["placement"] in ("edge", "cascade") for f in report["features"]):
        assert served
    for name, model in served:
        assert model["version"] >= 1, name
        assert model["variant"], name
        assert model["package"], name
    totals = report["totals"]
    assert totals["upstream_bytes"]["measured"] > 0
    assert totals["upstream_bytes"]["plan"] > 0
    # store and forward: every event acknowledged to a device reached the cloud
    assert totals["acked_events"] > 0
    assert totals["lost_events"] == 0
    assert totals["delivered_events"] == totals["acked_events"]


# factory runs below with an outage and camera over MQTT (the same checks): each example once.
BRIEF = [p for p in EXAMPLES if p.stem not in ("factory", "camera")]


@pytest.fixture(scope="module")
def brief_runs(
    tmp_path_factory: pytest.TempPathFactory, cache: Path
) -> dict[str, tuple[subprocess.CompletedProcess[str], Path, Path]]:
    """Each brief example's `tierwise up`, all started at once: at this scale a run mostly
    waits (start, warm-up, the run, the drain), so they overlap well. Each example plays a
    scenario of its own, so no two build the same packages into the cache at once.
    example -> (the finished command, its run.json, its run directory)."""
    scenarios = [
        {m.scenario.name for m in load_spec(p).models if m.scenario is not None} for p in BRIEF
    ]
    assert all(a.isdisjoint(b) for i, a in enumerate(scenarios) for b in scenarios[i + 1 :])
    started = {}
    for spec in BRIEF:
        where = tmp_path_factory.mktemp(spec.stem)
        out, run_dir = where / "run.json", where / "run"
        cmd = _up_command(spec, out, run_dir, cache, "--duration", "3s", "--scale", "0.002")
        with (where / "stdout").open("w") as stdout, (where / "stderr").open("w") as stderr:
            proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True)
        started[spec.stem] = (cmd, proc, where, out, run_dir)
    runs = {}
    try:
        for stem, (cmd, proc, where, out, run_dir) in started.items():
            code = proc.wait(timeout=300)
            output = [(where / name).read_text() for name in ("stdout", "stderr")]
            runs[stem] = (subprocess.CompletedProcess(cmd, code, *output), out, run_dir)
    finally:
        for _cmd, proc, *_ in started.values():
            if proc.poll() is None:  # another run timed out: stop this one too
                proc.kill()
                proc.wait()
    return runs


@pytest.mark.parametrize("spec", BRIEF, ids=lambda p: p.stem)
def test_up_runs_the_example_briefly(
    spec: Path, brief_runs: dict[str, tuple[subprocess.CompletedProcess[str], Path, Path]]
) -> None:
    done, out, run_dir = brief_runs[spec.stem]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "plan vs measured" in done.stdout
    _check_report(json.loads(out.read_text()), spec, 3.0)
    assert _orphans(str(run_dir)) == []


def test_factory_with_auto_scale_an_outage_and_a_shift(
    tmp_path: Path, cache: Path, vibration_packages: ScenarioPackages
) -> None:
    """The `make demo` run in small: measured scale, an outage in the middle, nothing lost;
    and one site's vibration sensors change gain, which the cloud finds from the feedback
    summaries alone, and nothing else is found drifted. The packages come from the session's
    cache (`up` building its own is what the brief runs above do)."""
    spec = ROOT / "examples" / "factory.yaml"
    out, run_dir = tmp_path / "run.json", tmp_path / "run"
    shift = "plant-north:safety-stop@1s,gain=1.3"
    args = ("--duration", "6s", "--wan", "spec,outage=2s@2s", "--shift", shift)
    done = _up(spec, out, run_dir, cache, *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "scale " in done.stdout
    assert "(auto)" in done.stdout
    assert "WAN DOWN" in done.stdout
    assert "WAN up again" in done.stdout
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/dashboard", done.stderr)  # say()
    assert (run_dir / "admin.token").read_text().strip() not in done.stdout + done.stderr
    report = json.loads(out.read_text())
    _check_report(report, spec, 6.0)
    assert report["scale"]["auto"] is True
    assert report["scale"]["measured_capacity_per_s"] > 0
    assert report["wan"]["outages"] == [{"start_s": 2.0, "duration_s": 2.0}]
    held = sum(site["wan"]["held"] for site in report["sites"].values())
    assert held > 0, "the outage held back bytes at some site's WAN"
    shifted = report["shift"]
    assert (shifted["site"], shifted["feature"], shifted["gain"]) == (
        "plant-north",
        "safety-stop",
        1.3,
    )
    assert shifted["after"]["answered"] > 0
    assert shifted["drift"]["drifted"] is True, shifted["drift"]
    assert shifted["detected_after_s"] is not None
    assert shifted["false_alarms"] == []
    assert "shift — plant-north/safety-stop from 1s: x1.3" in done.stdout
    assert _orphans(str(run_dir)) == []


def test_bad_wan_is_one_line_and_exit_2(tmp_path: Path, cache: Path) -> None:
    spec = ROOT / "examples" / "factory.yaml"
    done = _up(spec, tmp_path / "r.json", tmp_path / "run", cache, "--wan", "storm")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --wan 'storm': expected spec, none")
    assert len(done.stderr.strip().splitlines()) == 1


def test_up_over_mqtt_runs_a_broker_per_site_and_loses_nothing(tmp_path: Path, cache: Path) -> None:
    """Devices publish to their site's Mosquitto (the config tierwise writes: no anonymous
    clients), the agents answer there; the same table and store-and-forward as over HTTP."""
    spec = ROOT / "examples" / "camera.yaml"
    out, run_dir = tmp_path / "run.json", tmp_path / "run"
    done = _up(
        spec, out, run_dir, cache, "--duration", "3s", "--scale", "0.002", "--protocol", "mqtt"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sites = [s.name for s in load_spec(spec).sites]
    # the console says how devices reach their agents, at the start and in the table's title
    assert f"{len(sites)} Mosquitto brokers (devices over MQTT)" in done.stderr  # progress
    assert "devices over MQTT" in done.stdout.split("plan vs measured", 1)[1].splitlines()[0]
    report = json.loads(out.read_text())
    _check_report(report, spec, 3.0)
    assert report["protocol"] == "mqtt"
    for site in sites:
        log = (run_dir / "logs" / f"edge-{site}.log").read_text()
        assert f"edge agent {site} answering MQTT on mqtt://127.0.0.1:" in log
        conf = (run_dir / f"broker-{site}" / "mosquitto.conf").read_text()
        assert "allow_anonymous false" in conf
    assert _orphans(str(run_dir)) == []


def test_up_with_cloud_replicas_behind_haproxy_loses_nothing(tmp_path: Path, cache: Path) -> None:
    """`--cloud-replicas 2 --db postgresql://`: two clouds on one PostgreSQL schema behind
    HAProxy; every acknowledged event still reaches the cloud, the live view names the
    replicas, and the balancer stops with the run."""
    require_haproxy()
    spec = ROOT / "examples" / "camera.yaml"
    out, run_dir = tmp_path / "run.json", tmp_path / "run"
    with postgres_schema() as target:
        env = dict(os.environ, TIERWISE_CLOUD_DB_SCHEMA=str(target.schema))
        done = _up(
            spec, out, run_dir, cache, "--duration", "3s", "--scale", "0.002",
            "--cloud-replicas", "2", "--db", target.url, env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cloud replicas: cloud-1 " in done.stdout
    report = json.loads(out.read_text())
    _check_report(report, spec, 3.0)
    assert report["cloud"] == {"replicas": 2, "database": "postgresql"}
    for name in ("cloud-1", "cloud-2", "balancer"):
        assert (run_dir / "logs" / f"{name}.log").exists()
    assert _orphans(str(run_dir)) == []


def test_several_cloud_replicas_need_postgresql(tmp_path: Path, cache: Path) -> None:
    spec = ROOT / "examples" / "camera.yaml"
    done = _up(spec, tmp_path / "o.json", tmp_path / "run", cache, "--cloud-replicas", "2")
    assert done.returncode == 2
    assert "--cloud-replicas 2: replicas share one PostgreSQL" in done.stderr
