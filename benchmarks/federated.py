"""Federated learning on Flower, side by side: accuracy, bytes and seconds per round.

One table for scikit-learn's digits split over 10 sites with Dirichlet(alpha=0.5) label
skew, all runs on this machine with real processes (a SuperLink, and per site a SuperNode
and a ClientApp process):

- centralized: the same MLP trained on the pooled rows of every site (what federated
  learning gives up by not pooling), evaluated on the same held-out rows;
- FedAvg and FedProx after N rounds; FedAvg with 8-bit update compression;
- plain Flower with default settings on the same task (stock SuperNodes starting a
  ClientApp process per message, Flower's own `Strategy.start`), a few rounds.

Targets (issue 5): best federated within 1.5 points of centralized; compressed updates at
most 0.3x the bytes at most 0.5 points cost; tierwise rounds at least 10x faster than plain.

    .venv/bin/python benchmarks/federated.py [--rounds 30] [--plain-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tierwise.federate import mlp
from tierwise.federate.runner import RunOptions, RunResult, run_federated
from tierwise.federate.sitedata import load_shard, provision_sites
from tierwise.spec.federated import FederatedTraining

# Run as `python benchmarks/federated.py`: the repository root, home of the tests' shared
# helpers, is not on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--plain-rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-federated"))
    args = parser.parse_args()
    sites = [f"site-{i:02d}" for i in range(args.sites)]
    fed = FederatedTraining(
        dirichlet_alpha=args.alpha,
        hidden_units=128,
        local_epochs=10,
        learning_rate=0.1,
        round_timeout="120s",
        min_sites=args.sites,
    )
    runs: dict[str, RunResult] = {}
    central = centralized(args.out / "centralized", sites, fed, args.rounds)
    print(f"centralized: accuracy {central:.4f}", flush=True)
    for name, strategy, extra in (
        ("FedAvg", "fedavg", {}),
        ("FedProx (mu=0.1)", "fedprox", {}),
        ("FedAvg + 8-bit updates", "fedavg", {"compression_bits": 8}),
    ):
        runs[name] = run(args.out / slug(name), sites, fed, strategy, args.rounds, extra)
    runs["plain Flower, defaults"] = run(
        args.out / "plain-flower",
        sites,
        fed,
        "fedavg",
        args.plain_rounds,
        {"round_timeout": "600s"},
        mode="plain",
    )
    rows = table(central, runs)
    verdicts = targets(central, runs)
    (args.out / "results.json").write_text(
        json.dumps({"centralized": central, "runs": rows, "targets": verdicts}, indent=2) + "\n"
    )
    print_table(args, central, rows, verdicts)
    return 0 if all(v["met"] for v in verdicts) else 1


def centralized(out: Path, sites: list[str], fed: FederatedTraining, rounds: int) -> float:
    """The same model on the pooled rows; as many passes over each row as federated gets."""
    dirs, features, classes = provision_sites(
        out / "sites", sites, fed.dataset, fed.dirichlet_alpha, fed.seed
    )
    shards = [load_shard(d) for d in dirs.values()]
    x = np.concatenate([s.x_train for s in shards])
    y = np.concatenate([s.y_train for s in shards])
    params = mlp.init_params(mlp.MlpShape(features, fed.hidden_units, classes), fed.seed)
    params, _ = mlp.train(
        params,
        x,
        y,
        epochs=rounds * fed.local_epochs // 2,
        learning_rate=fed.learning_rate,
        batch_size=fed.batch_size,
        seed=fed.seed,
    )
    x_test = np.concatenate([s.x_test for s in shards])
    y_test = np.concatenate([s.y_test for s in shards])
    return mlp.evaluate(params, x_test, y_test).accuracy


def run(
    out: Path,
    sites: list[str],
    fed: FederatedTraining,
    strategy: str,
    rounds: int,
    extra: dict[str, Any],
    mode: str = "tierwise",
) -> RunResult:
    from tests.federate.support import digits_job

    job = digits_job(
        fed.model_copy(update=_parsed(extra)), rounds, strategy, name="digits-benchmark"
    )

    def show(event: dict[str, Any]) -> None:
        if event["event"] == "round":
            acc = (event.get("global") or {}).get("eval_acc")
            tail = f" acc {acc:.4f}" if acc is not None else ""
            print(f"  {out.name} round {event['round']}: {event['seconds']:.2f}s{tail}", flush=True)

    print(f"{out.name}: {len(sites)} sites, {rounds} rounds", flush=True)
    result = run_federated(job, sites, RunOptions(run_dir=out, mode=mode, on_event=show))  # type: ignore[arg-type]
    if not result.ok:
        print(f"  {out.name} FAILED: {result.reason}", file=sys.stderr)
    return result


def _parsed(extra: dict[str, Any]) -> dict[str, Any]:
    """Spec-style values (e.g. "600s") through the spec's own validation."""
    if not extra:
        return {}
    checked = FederatedTraining(**extra)
    return {k: getattr(checked, k) for k in extra}


def table(central: float, runs: dict[str, RunResult]) -> list[dict[str, Any]]:
    rows = []
    for name, result in runs.items():
        rounds = result.rounds
        seconds = [r["seconds"] for r in rounds]
        acc = result.final_accuracy
        rows.append(
            {
                "run": name,
                "ok": result.ok,
                "rounds": len(rounds),
                "accuracy": acc,
                "points_below_centralized": None if acc is None else 100 * (central - acc),
                "bytes_up_per_round": _per_round(rounds, "bytes_up"),
                "bytes_down_per_round": _per_round(rounds, "bytes_down"),
                "seconds_per_round": statistics.median(seconds) if seconds else None,
                "run_dir": str(result.run_dir),
            }
        )
    return rows


def _per_round(rounds: list[dict[str, Any]], key: str) -> float | None:
    # the last round also carries the final evaluation exchange; leave it out
    values = [r.get(key) for r in rounds[:-1]] or [r.get(key) for r in rounds]
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def targets(central: float, runs: dict[str, RunResult]) -> list[dict[str, Any]]:
    rows = {r["run"]: r for r in table(central, runs)}
    fedavg, fedprox = rows["FedAvg"], rows["FedProx (mu=0.1)"]
    packed, plain = rows["FedAvg + 8-bit updates"], rows["plain Flower, defaults"]
    best = min(
        (r["points_below_centralized"] for r in (fedavg, fedprox) if r["accuracy"] is not None),
        default=float("inf"),
    )
    ratio = _ratio(packed["bytes_up_per_round"], fedavg["bytes_up_per_round"])
    cost = (
        100 * (fedavg["accuracy"] - packed["accuracy"])
        if fedavg["accuracy"] is not None and packed["accuracy"] is not None
        else float("inf")
    )
    speedup = _ratio(plain["seconds_per_round"], fedavg["seconds_per_round"])
    return [
        {"target": "best federated within 1.5 points of centralized", "value": best,
         "met": best <= 1.5},
        {"target": "compressed updates <= 0.3x the bytes", "value": ratio, "met": ratio <= 0.3},
        {"target": "compression costs <= 0.5 points", "value": cost, "met": cost <= 0.5},
        {"target": "tierwise rounds >= 10x faster than plain Flower", "value": speedup,
         "met": speedup >= 10},
    ]  # fmt: skip


def _ratio(num: float | None, den: float | None) -> float:
    return float("inf") if not num or not den else num / den


def print_table(
    args: argparse.Namespace,
    central: float,
    rows: list[dict[str, Any]],
    verdicts: list[dict[str, Any]],
) -> None:
    print()
    print(
        f"digits, {args.sites} sites, Dirichlet alpha={args.alpha}, {args.rounds} rounds "
        f"(plain Flower: {args.plain_rounds}); accuracy on the sites' held-out rows"
    )
    head = f"{'run':<26}{'accuracy':>9}{'vs central':>12}{'up/round':>12}{'down/round':>12}"
    print(head + f"{'s/round':>10}")
    print(f"{'centralized (pooled data)':<26}{central:>9.4f}{'':>12}{'-':>12}{'-':>12}{'-':>10}")
    for r in rows:
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
        gap = (
            "-"
            if r["points_below_centralized"] is None
            else f"{-r['points_below_centralized']:+.2f} pt"
        )
        up = _kb(r["bytes_up_per_round"])
        down = _kb(r["bytes_down_per_round"])
        secs = "-" if r["seconds_per_round"] is None else f"{r['seconds_per_round']:.2f}"
        print(f"{r['run']:<26}{acc:>9}{gap:>12}{up:>12}{down:>12}{secs:>10}")
    print()
    for v in verdicts:
        mark = "MET " if v["met"] else "MISS"
        print(f"[{mark}] {v['target']}: {v['value']:.3g}")


def _kb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e3:.1f} kB"


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


if __name__ == "__main__":
    sys.exit(main())
