"""Does the planner predict what the simulator measures? Every example, side by side.

For each example the plan is replayed for `--hours` of simulated time; for each feature
the plan's p-latency (at the feature's own percentile, worst site), escalation rate,
upstream bandwidth and cost are printed beside the simulated ones, with the gap. A gap
over 15% is marked and makes the script exit 1.

A feature too rare to measure in that time is replayed in a run of its own, long enough,
with only the features it shares a queue with (gateway, uplink, cloud pool) beside it;
features that share nothing with it cannot change its figures. Long enough means at least
`--min-requests` answered and, at its smallest site, `TAIL_SAMPLES` requests beyond its
percentile: the worst site's p99 from a dozen tail samples is noise, not a figure.

Small figures are compared with a floor, so $0.00 vs $0.001 a month is not a 100% miss:
cost $0.05/month, bandwidth 10 bit/s, escalation 0.5 points, latency 1 ms.

    .venv/bin/python benchmarks/fidelity.py [--hours 1] [examples/factory.yaml ...]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from tierwise.plan.candidates import Candidate
from tierwise.plan.planner import PlanResult, plan
from tierwise.simulate.result import FeatureStats
from tierwise.simulate.run import simulate
from tierwise.spec import Spec, load_spec
from tierwise.spec.tiers import Placement
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_money

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.15
FLOORS = {"latency": 1e-3, "escalation": 0.005, "upstream": 10.0, "cost": 0.05}
MAX_RARE_SECONDS = 20 * 365 * 86400.0
TAIL_SAMPLES = 60


def sharing(spec: Spec, choice: list[Candidate], feature: int) -> set[int]:
    """Features that share a queue with `feature`: its gateways, its uplinks, the cloud."""
    mine = choice[feature]
    sites = {u.site for u in mine.sites}
    local = mine.placement in (Placement.EDGE, Placement.CASCADE)
    remote = mine.placement in (Placement.CLOUD, Placement.CASCADE)
    out = {feature}
    for i, cand in enumerate(choice):
        their_sites = {u.site for u in cand.sites}
        their_local = cand.placement in (Placement.EDGE, Placement.CASCADE)
        their_remote = cand.placement in (Placement.CLOUD, Placement.CASCADE)
        if (local and their_local and sites & their_sites) or (remote and their_remote):
            out.add(i)
    return out


def gap(simulated: float, predicted: float, floor: float) -> float:
    if not (math.isfinite(simulated) and math.isfinite(predicted)):
        return 0.0 if simulated == predicted else math.inf
    return abs(simulated - predicted) / max(abs(predicted), floor)


def measure(
    spec: Spec, planned: PlanResult, hours: float, min_requests: int, seed: int
) -> tuple[list[tuple[FeatureStats, str]], float]:
    """Simulated figures per feature (and how they were measured), and the cost per month."""
    result, _ = simulate(spec, ["plan"], duration=hours * 3600, seed=seed, planned=planned)
    run = result.runs["plan"]
    out = []
    for i, stats in enumerate(run.features):
        devices = [u.devices for u in planned.choice[i].sites]
        smallest = min(devices, default=1) / max(sum(devices), 1)
        tail = 1 - spec.features[i].percentile / 100
        needed = max(min_requests, TAIL_SAMPLES / tail / smallest)
        if stats.answered >= needed:
            out.append((stats, f"{fmt_duration(hours * 3600)} run"))
            continue
        rate = spec.features[i].rate * sum(devices)
        seconds = min(1.25 * needed / max(rate, 1e-12), MAX_RARE_SECONDS)
        own = sharing(spec, planned.choice, i)
        alone, _ = simulate(spec, ["plan"], duration=seconds, seed=seed, planned=planned, only=own)
        out.append((alone.runs["plan"].features[i], f"own {fmt_duration(seconds)} run"))
    return out, run.cost_per_month


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="*", type=Path)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--min-requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    specs = args.specs or sorted((ROOT / "examples").glob("*.yaml"))
    worst = 0.0
    for path in specs:
        clock = time.perf_counter()
        spec = load_spec(path)
        planned = plan(spec)
        measured, cost = measure(spec, planned, args.hours, args.min_requests, args.seed)
        print(f"\n== {path.name} ({time.perf_counter() - clock:.0f} s)")
        print(
            f"{'feature':24} {'figure':12} {'plan':>12} {'simulated':>12} {'gap':>7}  measured in"
        )
        for (stats, how), predicted in zip(measured, planned.plan.features, strict=True):
            rows = [
                ("p-latency", predicted.latency, stats.latency, fmt_duration, "latency"),
                (
                    "escalation",
                    predicted.escalation_rate,
                    stats.escalation_rate,
                    _pct,
                    "escalation",
                ),
                ("upstream", predicted.upstream_bps, stats.upstream_bps, fmt_bandwidth, "upstream"),
                ("cost/month", predicted.cost, stats.cost_per_month, fmt_money, "cost"),
            ]
            for name, want, got, fmt, floor in rows:
                g = gap(got, want, FLOORS[floor])
                worst = max(worst, g)
                mark = "ok" if g <= TOLERANCE else "OVER"
                print(
                    f"{stats.feature[:24]:24} {name:12} {fmt(want):>12} {fmt(got):>12} "
                    f"{g:>6.1%} {mark:4} {how}"
                )
        g = gap(cost, planned.plan.cost, FLOORS["cost"])
        worst = max(worst, g)
        print(
            f"{'(total)':24} {'cost/month':12} {fmt_money(planned.plan.cost):>12} "
            f"{fmt_money(cost):>12} {g:>6.1%} {'ok' if g <= TOLERANCE else 'OVER'}"
        )
    print(f"\nworst gap {worst:.1%} (tolerance {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


def _pct(x: float) -> str:
    return f"{x:.2%}"


if __name__ == "__main__":
    sys.exit(main())
