"""How fast `simulate` replays a large fleet, beside a plain SimPy model of the same thing.

Scenario: one site, 10,000 devices each sending 1 request/s to one edge gateway (16 workers,
1 ms per inference) running a cascade that escalates 5% of requests to the cloud over a WAN
with random outages plus one scheduled 10-minute outage, and a 5-minute spike to 1.3x.
tierwise simulates 1 hour (36 M requests); SimPy, one process per request, a shorter time.

    .venv/bin/python benchmarks/sim_scale.py [--hours 1] [--simpy-seconds 20]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

import yaml

from tierwise.simulate.run import simulate
from tierwise.spec import Spec, parse_spec

DEVICES = 10_000
WORKERS = 16
SERVICE = 1e-3  # s per edge inference (16 GFLOP/s per worker, 16 MFLOP model)
SHARE = 0.05
DEADLINE = 0.5

# Run as `python benchmarks/sim_scale.py`: the repository root, home of the tests' shared
# helpers, is not on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scenario() -> Spec:
    """The fleet as a spec: the tests' small spec (tests/small_specs.py), scaled up."""
    from tests.small_specs import MINIMAL, cascade_model, varied

    data = varied(
        MINIMAL,
        name="fleet",
        tiers={
            "device": {"compute": "0.1GFLOP/s", "memory": "1MB"},
            "edge": {"compute": f"{16 * WORKERS}GFLOP/s", "memory": "16GB", "workers": WORKERS},
            "cloud": {"compute": "1TFLOP/s", "memory": "64GB", "price_per_hour": "$1/h"},
        },
        sites=[{"name": "hall", "devices": DEVICES}],
        models=[
            cascade_model(
                "detector",
                {"name": "int8", "flops": "16MFLOP", "size": "10MB", "accuracy": "90%"},
                {"name": "full", "flops": "20GFLOP", "size": "20GB", "accuracy": "98%"},
                {"0%": "90%", f"{SHARE:.0%}": "96%"},
            )
        ],
        features=[
            {
                "name": "detect",
                "model": "detector",
                "rate": "1/s",
                "payload": "2KB",
                "result": "100B",
                "deadline": f"{DEADLINE * 1000:g}ms",
                "min_accuracy": "95%",
                "offline": True,
                "upstream": {"rate": "1/min", "size": "1KB"},
            }
        ],
        links__device_edge__bandwidth="10Gbps",
        links__edge_cloud__rtt_p50="30ms",
        links__edge_cloud__rtt_p99="150ms",
        links__edge_cloud__bandwidth="1Gbps",
        links__edge_cloud__mean_outage="5min",
        traffic={
            "spikes": [{"start": "20min", "duration": "5min", "factor": 1.3}],
            "outages": [{"start": "40min", "duration": "10min"}],
        },
    )
    return parse_spec(yaml.safe_dump(data))


def simpy_model(seconds: float, seed: int = 0) -> int:
    """The same gateway, one SimPy process per request; returns requests completed."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    gateway = simpy.Resource(env, capacity=WORKERS)
    rate = DEVICES * 1.0
    sigma_lan = math.log(5 / 1) / 2.326
    sigma_wan = math.log(150 / 30) / 2.326
    done = [0]
    wan_down_until = [0.0]

    def request(start: float) -> simpy.events.ProcessGenerator:
        with gateway.request() as slot:
            yield slot
            yield env.timeout(SERVICE)
        local = env.now - start + 1e-3 * math.exp(sigma_lan * rng.gauss(0, 1))
        if rng.random() < SHARE and env.now >= wan_down_until[0] and DEADLINE - local > 0.1:
            yield env.timeout(min(0.03 * math.exp(sigma_wan * rng.gauss(0, 1)) + 0.02, DEADLINE))
        done[0] += 1

    def arrivals() -> simpy.events.ProcessGenerator:
        while True:
            yield env.timeout(rng.expovariate(rate))
            env.process(request(env.now))

    def outages() -> simpy.events.ProcessGenerator:
        while True:
            yield env.timeout(rng.expovariate(1 / (300 * 0.995 / 0.005)))
            length = rng.expovariate(1 / 300)
            wan_down_until[0] = env.now + length
            yield env.timeout(length)

    env.process(arrivals())
    env.process(outages())
    env.run(until=seconds)
    return done[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--simpy-seconds", type=float, default=20.0)
    args = parser.parse_args()
    spec = scenario()
    clock = time.perf_counter()
    result, _ = simulate(spec, ["plan"], duration=args.hours * 3600, seed=1)
    ours = time.perf_counter() - clock
    run = result.runs["plan"]
    feature = run.features[0]
    clock = time.perf_counter()
    simpy_done = simpy_model(args.simpy_seconds)
    theirs = time.perf_counter() - clock
    ours_rate = run.requests / ours
    simpy_rate = simpy_done / theirs
    print(
        f"scenario: {DEVICES:,} devices x 1 req/s, {WORKERS} workers, cascade {SHARE:.0%}, "
        f"outages + spike x1.3 ({feature.label})"
    )
    print(f"{'':24}{'simulated':>12}{'requests':>14}{'wall s':>9}{'requests/s':>14}")
    print(
        f"{'tierwise simulate':24}{args.hours * 3600:>11.0f}s{run.requests:>14,}{ours:>9.1f}"
        f"{ours_rate:>14,.0f}"
    )
    print(
        f"{'SimPy, one process/req':24}{args.simpy_seconds:>11.0f}s{simpy_done:>14,}"
        f"{theirs:>9.1f}{simpy_rate:>14,.0f}"
    )
    print(
        f"ratio: {ours_rate / simpy_rate:.1f}x; target >= 2,000,000 requests/s: "
        f"{'met' if ours_rate >= 2e6 else 'NOT met'}"
    )
    print(
        f"check: p99 {feature.p99 * 1e3:.1f} ms, escalated {feature.escalation_rate:.2%}, "
        f"availability {feature.availability:.3%}, outbox peak "
        f"{run.sites[0].outbox_peak_bytes / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
