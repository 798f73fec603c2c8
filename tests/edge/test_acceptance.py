"""Issue 4's acceptance points for the edge, end to end over loopback with real processes.

The real cloud service, the real `tierwise edge` agent and the fault-injecting WAN proxy
(`python -m tierwise.wan`) each run as their own process; the test is the devices.

1. Loss: a 2-minute edge→cloud outage (its backlog in 15 s here, see OUTAGE_S), the agent
   SIGKILLed and restarted during it; every event acknowledged to a device ends up in the
   cloud exactly once, in per-stream order.
2. Deadlines: 150 ms budget, WAN p50 60 ms / p99 250 ms, 5% loss, a 30 s outage (8 s here,
   see DEADLINE_OUTAGE_S): every one of ≥ 5,000 answers arrives within budget, escalated ones
   included.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.package.support import Keys, make_keys

from tierwise.edge.device import DeviceConnection
from tierwise.spec.tiers import Placement
from tierwise.wire import CloudModelAssignment, FeatureAssignment

from .support import FEATURE, SITE, AgentProcess, CloudProcess, build_package, digits

EDGE, CLOUD = "digits-edge", "digits-cloud"
# The issue asked for a two-minute outage at 60 requests/s: ~7,200 events held in the outbox
# when the outage ends. An eighth of the time at eight times the rate holds the same backlog
# (what the test is about: ~3,600 events when the SIGKILL comes) and saves 105 s of every
# `make test`.
OUTAGE_S = 15.0
OUTAGE_RATE = 480.0
# The deadline test: the 30 s outage at 120 requests/s took 45 s to collect its 5,000
# answers, 14 s of them with the cloud reachable (the escalations answered by the cloud come
# from those). The same 14 s around an 8 s outage (the circuit breaker's cool-down doubles
# three times in it) at 250 requests/s collect them in 22 s.
DEADLINE_OUTAGE_S = 8.0
DEADLINE_RATE = 250.0
pytestmark = pytest.mark.slow


@dataclass
class Continuum:
    keys: Keys
    cloud: CloudProcess
    root: Path


@pytest.fixture
def continuum(tmp_path: Path) -> Iterator[Continuum]:
    keys = make_keys(tmp_path)
    edge_pkg = build_package(tmp_path / "edge-pkg", keys.private, EDGE, 1, max_iter=20)
    cloud_pkg = build_package(tmp_path / "cloud-pkg", keys.private, CLOUD, 1, max_iter=500)
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        for pkg in (edge_pkg, cloud_pkg):
            cloud.admin.upload_package(pkg)
        cloud.admin.set_cloud_model(FEATURE, CloudModelAssignment(package=CLOUD, version=1))
        yield Continuum(keys, cloud, tmp_path)


class WanProcess:
    """`python -m tierwise.wan` in front of the cloud; SIGUSR1/SIGUSR2 start/end an outage."""

    def __init__(self, target: str, *args: str) -> None:
        host_port = target.removeprefix("http://")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tierwise.wan", "--target", host_port, *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = line.split()[-1]

    def outage(self, down: bool) -> None:
        self.proc.send_signal(signal.SIGUSR1 if down else signal.SIGUSR2)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        return out.strip()


@dataclass
class Devices:
    """Devices posting rows to the agent; what was acknowledged, per stream, in order."""

    url: str
    streams: tuple[str, ...] = ("press-1", "press-2", "press-3")  # one device per stream
    acked: dict[str, list[int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    agent_ms: list[float] = field(default_factory=list)  # as the agent measured each answer
    slowest: list[tuple[float, float, float, str]] = field(default_factory=list)
    answered_by: dict[str, int] = field(default_factory=dict)
    degraded: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    failure_kinds: dict[str, int] = field(default_factory=dict)

    def failed(self, kind: str) -> None:
        self.failures += 1
        self.failure_kinds[kind] = self.failure_kinds.get(kind, 0) + 1

    async def run(self, stop: asyncio.Event, rate: float) -> None:
        """Each device (one per stream) sends one request at a time, `rate` per second in all.

        Devices keep a connection open (connected before the first request) and are not in
        lockstep: each starts at its own offset within the period, as a fleet would."""
        x, _ = digits()
        concurrency = len(self.streams)
        period = concurrency / rate

        async def device(i: int) -> None:
            stream = self.streams[i]
            connection = DeviceConnection(self.url)
            with contextlib.suppress(OSError):
                await connection.connect()
            await asyncio.sleep(period * i / concurrency)
            n = i
            while not stop.is_set():
                row = x[(n * 7919) % len(x)].tolist()
                n += concurrency
                body = json.dumps({"inputs": [row], "stream": stream}).encode()
                tick = time.perf_counter()
                try:
                    status, raw = await connection.post(f"/v1/predict/{FEATURE}", body)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    self.failed(type(exc).__name__)  # the agent is down: nothing acknowledged
                    await asyncio.sleep(0.05)
                    continue
                elapsed = (time.perf_counter() - tick) * 1000
                if status != 200:
                    self.failed(f"HTTP {status}")
                    continue
                answer = json.loads(raw)
                self.latencies_ms.append(elapsed)
                self.agent_ms.append(answer["latency_ms"])
                if elapsed > 100:  # (seconds into the run, device ms, agent ms, reason)
                    self.slowest.append((tick, elapsed, answer["latency_ms"], answer["reason"]))
                by = answer["answered_by"]
                self.answered_by[by] = self.answered_by.get(by, 0) + 1
                self.degraded += answer["degraded"]
                self.reasons[answer["reason"]] = self.reasons.get(answer["reason"], 0) + 1
                if answer["event_seq"] is not None:
                    self.acked.setdefault(answer["stream"], []).append(answer["event_seq"])
                await asyncio.sleep(max(period - (time.perf_counter() - tick), 0))
            connection.close()

        await asyncio.gather(*(device(i) for i in range(concurrency)))


def _cascade(deadline_ms: float) -> FeatureAssignment:
    """v1 of the edge package answers; below 90% confidence the cloud model does."""
    return FeatureAssignment(
        package=EDGE, version=1, placement=Placement.CASCADE, threshold=0.9, deadline_ms=deadline_ms
    )


def _cloud_duplicates(cloud: CloudProcess) -> int:
    text = httpx.get(cloud.url + "/metrics", timeout=10).text
    found = re.findall(
        r'^tierwise_cloud_telemetry_events_total\{[^}]*result="duplicate"[^}]*\}\s+([0-9.e+]+)',
        text,
        flags=re.M,
    )
    return int(sum(float(v) for v in found))


def test_outage_with_sigkill_loses_and_duplicates_nothing(continuum: Continuum) -> None:
    cloud, root = continuum.cloud, continuum.root
    cloud.admin.assign(SITE, FEATURE, _cascade(deadline_ms=150))
    wan = WanProcess(cloud.url, "--rtt", "40ms/120ms")
    agent_args = ("--poll-interval", "0.5", "--durability", "power")
    agent = AgentProcess(wan.url, root / "edge", continuum.keys.public, agent_args).start()
    agent.wait_for("its package", lambda s: s["features"].get(FEATURE, {}).get("version") == 1)
    devices = Devices(agent.url, streams=tuple(f"press-{i}" for i in range(6)))
    started = time.monotonic()

    async def scenario() -> None:
        stop = asyncio.Event()
        load = asyncio.create_task(devices.run(stop, rate=OUTAGE_RATE))
        await asyncio.sleep(2)
        wan.outage(True)
        outage_started = time.monotonic()
        await asyncio.sleep(OUTAGE_S / 2)
        depth_before_kill = (await asyncio.to_thread(agent.state))["outbox"]["depth_events"]
        agent.kill()  # SIGKILL: no drain, no flush
        killed = time.monotonic()
        await asyncio.to_thread(agent.start)  # same data dir; the cloud is still unreachable
        print(f"\nrestarted in {time.monotonic() - killed:.1f} s")
        await asyncio.sleep(max(OUTAGE_S - (time.monotonic() - outage_started), 0))
        wan.outage(False)
        print(f"\noutbox depth before the kill: {depth_before_kill}")
        await asyncio.sleep(3)
        stop.set()
        await load

    asyncio.run(scenario())
    state = agent.wait_for("an empty outbox", lambda s: s["outbox"]["depth_events"] == 0, 90)
    assert agent.terminate() in (0, -signal.SIGTERM)
    proxy_stats = wan.stop()

    acknowledged = sum(len(v) for v in devices.acked.values())
    delivered = lost = out_of_order = 0
    for stream, seqs in devices.acked.items():
        events = cloud.admin.events(SITE, stream)
        held = [e.seq for e in events]
        delivered += len(held)
        lost += len(set(seqs) - set(held))
        assert held == sorted(set(held)), f"{stream}: seqs not unique and ascending"
        stamps = [e.ts for e in events]  # one device per stream: seq order = request order
        out_of_order += sum(b < a for a, b in itertools.pairwise(stamps))
        assert seqs == sorted(seqs), f"{stream}: acknowledgements out of order"
    duplicates = _cloud_duplicates(cloud)
    print(
        f"acknowledged {acknowledged} / delivered {delivered} / duplicates-removed "
        f"{duplicates} / lost {lost}  (committed but unacknowledged: in flight at the kill "
        f"{delivered - acknowledged}; outage {OUTAGE_S:.0f} s, SIGKILL mid-outage, "
        f"{time.monotonic() - started:.0f} s in all; device failures while the agent was down "
        f"{devices.failure_kinds}; drops {state['outbox']['dropped_events']}; proxy {proxy_stats})"
    )
    assert acknowledged > 1000
    assert sum(devices.failure_kinds.values()) < 60 * 30  # devices found the restarted agent
    assert lost == 0
    assert out_of_order == 0
    # An answer committed when the SIGKILL came but never sent is delivered without having
    # been acknowledged: at most one per device (each has one request in flight).
    assert 0 <= delivered - acknowledged <= len(devices.streams)
    assert state["outbox"]["dropped_events"] == 0


@contextlib.contextmanager
def measuring_devices() -> Iterator[None]:
    """No garbage-collector pauses in this process while its devices time the agent.

    The devices run inside the test process, whose heap holds whatever the suite built so
    far: a full collection then pauses the devices for milliseconds, between the agent's
    answer and the device reading it, and a 150 ms deadline met by the agent with a 15 ms
    reserve is then missed on the device's clock. The agent is another process, unaffected.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def test_every_answer_meets_the_deadline_through_jitter_loss_and_an_outage(
    continuum: Continuum,
) -> None:
    cloud, root = continuum.cloud, continuum.root
    budget_ms = 150.0
    cloud.admin.assign(SITE, FEATURE, _cascade(deadline_ms=budget_ms))
    wan = WanProcess(cloud.url, "--rtt", "60ms/250ms", "--loss", "5%")
    agent = AgentProcess(wan.url, root / "edge", continuum.keys.public, ("--poll-interval", "1"))
    agent.start()
    agent.wait_for("its package", lambda s: s["features"].get(FEATURE, {}).get("version") == 1)
    devices = Devices(agent.url, streams=tuple(f"cam-{i}" for i in range(12)))

    async def scenario() -> None:
        stop = asyncio.Event()
        load = asyncio.create_task(devices.run(stop, rate=DEADLINE_RATE))
        await asyncio.sleep(6)
        wan.outage(True)
        await asyncio.sleep(DEADLINE_OUTAGE_S)
        wan.outage(False)
        await asyncio.sleep(8)
        deadline = time.monotonic() + 120
        while len(devices.latencies_ms) < 5_200 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        stop.set()
        await load

    with measuring_devices():
        asyncio.run(scenario())
    state = agent.state()
    agent.terminate()
    proxy_stats = wan.stop()
    lat = np.asarray(devices.latencies_ms)
    late = int(np.sum(lat > budget_ms))
    print(
        f"\nanswers {len(lat)}: p50 {np.percentile(lat, 50):.1f} ms, p99 "
        f"{np.percentile(lat, 99):.1f} ms, max {lat.max():.1f} ms, budget {budget_ms:.0f} ms, "
        f"late {late}; at the agent: max {max(devices.agent_ms):.1f} ms, over budget "
        f"{sum(a > budget_ms for a in devices.agent_ms)}; by {devices.answered_by}, "
        f"degraded {devices.degraded}, reasons {devices.reasons}, "
        f"failures {devices.failures}; edge rtt estimate {state['cloud']['rtt_estimate_ms']:.0f} "
        f"ms; agent event-loop lag {state['loop_lag']}; proxy {proxy_stats}"
    )
    first = min(t for t, *_ in devices.slowest) if devices.slowest else 0.0
    late_ones = [(round(t - first, 2), round(d), round(a), r) for t, d, a, r in devices.slowest]
    print("answers over 100 ms (s since the first, device ms, agent ms, reason):", late_ones[:60])
    assert len(lat) >= 5_000
    assert devices.failures == 0
    # Escalations happened and came back in time; others were cancelled at the deadline and
    # answered locally; the outage was answered locally without waiting.
    assert devices.answered_by.get("cloud", 0) >= 10
    assert devices.reasons.get("cloud late", 0) >= 1
    assert devices.reasons.get("cloud down", 0) >= 1
    lag = state["loop_lag"]["max_ms"]
    assert late == 0, (
        f"{late} answers over {budget_ms:.0f} ms; the agent's event loop once woke "
        f"{lag:.0f} ms late ({state['loop_lag']['over_50ms']} times over 50 ms): if that is "
        "near the misses, the machine did not schedule the agent (check the load average)"
    )
