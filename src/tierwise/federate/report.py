"""A run's metrics as JSON and as a chart: accuracy, loss, bytes and seconds per round.

`metrics.json` holds every round's global and per-site loss/accuracy, bytes up and down,
seconds and (with DP) epsilon; `metrics.png` draws them, one panel per question a reader
asks: is it learning, is every site learning, what does it cost on the wire, how long.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tierwise.errors import MissingDependencyError
from tierwise.federate.runner import RunResult

METRICS_JSON = "metrics.json"
METRICS_PNG = "metrics.png"


def summarize(result: RunResult) -> dict[str, Any]:
    """The run in one JSON-able dict (what `metrics.json` holds)."""
    s = result.settings
    rounds = result.rounds
    initial = next((e for e in result.events if e["event"] == "initial"), None)
    last = rounds[-1] if rounds else None
    privacy = (
        {"epsilon": last["epsilon"], "delta": last["delta"]}
        if last is not None and "epsilon" in last
        else None
    )
    return {
        "job": s.job,
        "status": "done" if result.ok else "failed",
        "reason": None if result.ok else result.reason,
        "strategy": s.strategy,
        "sites": s.sites,
        "rounds_planned": s.rounds,
        "rounds_done": len(rounds),
        "min_sites": s.min_sites,
        "secagg": s.secagg,
        "dp": privacy,
        "compression_bits": s.compression_bits,
        "initial_accuracy": None if initial is None else initial["global"]["eval_acc"],
        "final_accuracy": result.final_accuracy,
        "bytes_up": sum(r["bytes_up"] for r in rounds),
        "bytes_down": sum(r["bytes_down"] for r in rounds),
        "seconds_per_round": (sum(r["seconds"] for r in rounds) / len(rounds)) if rounds else None,
        "wall_seconds": result.seconds,
        "rounds": rounds,
    }


def write_report(result: RunResult) -> tuple[Path, Path]:
    """Write metrics.json and metrics.png into the run directory; returns both paths."""
    summary = summarize(result)
    json_path = result.run_dir / METRICS_JSON
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    png_path = result.run_dir / METRICS_PNG
    draw_chart(summary, png_path)
    return json_path, png_path


def draw_chart(summary: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise MissingDependencyError("the federated metrics chart", "federate") from None
    rounds = summary["rounds"]
    xs = [r["round"] for r in rounds]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    acc, loss, wire, time_ax = axes[0][0], axes[0][1], axes[1][0], axes[1][1]
    for site in summary["sites"]:
        ys = [r["sites"].get(site, {}).get("eval_acc") for r in rounds]
        acc.plot(xs, [_nan(y) for y in ys], lw=0.8, alpha=0.5, label=site)
    acc.plot(xs, [_nan(r["global"]["eval_acc"]) for r in rounds], "k-", lw=2.2, label="global")
    acc.set(title="accuracy on held-out rows", xlabel="round", ylim=(0, 1))
    acc.legend(fontsize=7, ncol=2)
    loss.plot(xs, [_nan(r["global"]["eval_loss"]) for r in rounds], "k-", lw=2, label="eval")
    loss.plot(xs, [_nan(r["global"]["train_loss"]) for r in rounds], "C1--", label="train")
    loss.set(title="global loss", xlabel="round")
    loss.legend()
    wire.plot(xs, [r["bytes_up"] / 1e3 for r in rounds], "C2-", label="up (sites -> cloud)")
    wire.plot(xs, [r["bytes_down"] / 1e3 for r in rounds], "C3-", label="down (cloud -> sites)")
    wire.set(title="payload per round", xlabel="round", ylabel="kB")
    wire.legend()
    time_ax.bar(xs, [r["seconds"] for r in rounds], color="C0")
    time_ax.set(title="seconds per round", xlabel="round", ylabel="s")
    if summary["dp"] is not None:
        eps = time_ax.twinx()
        eps.plot(xs, [r.get("epsilon") for r in rounds], "C3o-", ms=3)
        eps.set_ylabel(f"epsilon at delta={summary['dp']['delta']:g}", color="C3")
    title = f"{summary['job']}: {summary['strategy']}, {len(summary['sites'])} sites"
    fig.suptitle(f"{title} — {summary['status']}")
    for ax in (acc, loss, wire, time_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)
