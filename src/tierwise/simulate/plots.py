"""PNG plots of a simulation: latency CDFs, a bad hour through an outage, cost over spikes.

matplotlib is an optional extra (`tierwise[simulate]`); it is imported only here, only
when plots are asked for, with the non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tierwise.errors import MissingDependencyError
from tierwise.simulate.result import SimResult
from tierwise.spec.model import Spec

COLORS = {"plan": "#1b7837", "cloud-only": "#c51b7d", "edge-only": "#2166ac"}


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError("plots", "simulate") from None
    return plt


def write_plots(result: SimResult, spec: Spec, folder: Path) -> list[Path]:
    """Write every plot into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        latency_cdf(result, folder / f"{result.spec}-latency-cdf.png"),
        through_outage(result, spec, folder / f"{result.spec}-outage.png"),
        cost_over_time(result, spec, folder / f"{result.spec}-cost.png"),
    ]


def latency_cdf(result: SimResult, path: Path) -> Path:
    """One panel per feature: share of answers within each latency, one line per strategy."""
    plt = _pyplot()
    first = next(iter(result.runs.values()))
    names = [f.feature for f in first.features]
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, (i, name) in zip(axes[0], enumerate(names), strict=True):
        for strategy, run in result.runs.items():
            x, y = run.histograms[name].cdf()
            if len(x):
                ax.step(x, y, where="post", color=COLORS.get(strategy), label=strategy)
        deadline = first.features[i].deadline
        ax.axvline(deadline, color="black", linestyle="--", linewidth=1, label="deadline")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.01)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("latency (s)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("share answered within")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{result.spec}: latency CDF per strategy", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def through_outage(result: SimResult, spec: Spec, path: Path) -> Path:
    """The site with the most WAN downtime: p99 latency and outbox depth over time."""
    plt = _pyplot()
    run = result.runs.get("plan") or next(iter(result.runs.values()))
    series = run.series
    assert series is not None
    site = int(np.argmax(series.wan_down.sum(axis=1)))
    hours = series.edges / 3600
    mids = (hours[:-1] + hours[1:]) / 2
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.4), sharex=True)
    for f, feature in enumerate(spec.features):
        top.plot(mids, series.p99[f], label=f"{feature.name} p99", linewidth=1.2)
        top.axhline(feature.deadline, linestyle=":", linewidth=0.8, color="grey")
    top.set_yscale("log")
    top.set_ylabel("p99 latency (s)")
    top.legend(fontsize=8, loc="upper right")
    bottom.plot(mids, series.outbox[site] / 1e6, color="#762a83", linewidth=1.2)
    bottom.set_ylabel(f"outbox at {spec.sites[site].name} (MB)")
    bottom.set_xlabel("time (h)")
    for ax in (top, bottom):
        _shade(ax, hours, series.wan_down[site], "WAN down")
        ax.grid(alpha=0.3)
    top.set_title(
        f"{result.spec} ({run.strategy}): latency and outbox through outages", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cost_over_time(result: SimResult, spec: Spec, path: Path) -> Path:
    """Each strategy over the run: worst feature's p99 against its budget, and spend rate."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True)
    order = sorted(result.runs, key=lambda name: name == "plan")  # the plan drawn last, on top
    for strategy in order:
        run = result.runs[strategy]
        series = run.series
        assert series is not None
        hours = series.edges / 3600
        over = series.p99 / np.array([f.deadline for f in spec.features])[:, None]
        worst = np.nanmax(np.where(np.isnan(over), -np.inf, over), axis=0)
        worst[~np.isfinite(worst)] = np.nan
        style = {"linewidth": 2.4 if strategy == "plan" else 1.2, "color": COLORS.get(strategy)}
        top.step(hours[:-1], worst, where="post", label=strategy, **style)
        bottom.step(hours[:-1], series.cost / np.diff(hours), where="post", label=strategy, **style)
    top.axhline(1.0, color="black", linestyle="--", linewidth=1, label="budget")
    top.set_ylabel("p99 / budget (worst feature)")
    bottom.set_ylabel("spend ($/hour)")
    bottom.set_xlabel("time (h)")
    for ax in (top, bottom):
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if spec.traffic is not None:
            for spike in spec.traffic.spikes:
                ax.axvspan(
                    spike.start / 3600,
                    (spike.start + spike.duration) / 3600,
                    color="orange",
                    alpha=0.2,
                    label=f"spike x{spike.factor:g}" if ax is top else None,
                )
    top.legend(fontsize=8)
    top.set_title(f"{result.spec}: latency and cost over time, per strategy", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shade(ax: Any, hours: np.ndarray, down: np.ndarray, label: str) -> None:
    """Shade the bins where the WAN was down for more than half the bin."""
    first = True
    for k in np.flatnonzero(down > 0.5):
        ax.axvspan(
            hours[k], hours[k + 1], color="red", alpha=0.15, lw=0, label=label if first else None
        )
        first = False
