"""`tierwise simulate SPEC`: replay a plan request by request on a virtual clock.

`simulate(spec)` plans the spec (or takes a `PlanResult`), draws the outages once, then
replays the plan — and, if asked, the cloud-only and edge-only strategies — through the
daily pattern, spikes, WAN jitter and outages. It returns a `SimResult`: per strategy a
`StrategyRun` with `FeatureStats` per feature, `SiteStats` per site and a `Series` over time.

    spec = load_spec("examples/factory.yaml")
    result, planned = simulate(spec, ["plan", "cloud-only"], duration=3600)
    result.runs["plan"].features[0].latency  # measured, next to planned.plan.features[0]
    result.to_dict()                         # what `tierwise simulate --json` writes
    images = write_plots(result, spec, folder)  # PNGs (matplotlib: tierwise[simulate])
    write_html(result, planned, images, path)

Modules, one idea each:

    run.py         simulate(): plan, outages, one replay per strategy
    streams.py     one stream of requests per (feature, site) of an assignment
    arrivals.py    Poisson arrivals shaped by the daily pattern and spikes
    outages.py     links that go down, at random and on schedule
    queues.py      FIFO queues with c servers (devices, gateways, uplinks)
    cloud.py       the autoscaled cloud pool
    telemetry.py   each site's outbox (rules.outbox) over the run
    engine.py      one strategy's replay, window by window, with numpy
    histogram.py   latency histograms
    tally.py       what a replay counted; summary.py turns it into result.py's figures
    report.py      the terminal tables; plots.py the PNGs; html.py the one-file report
    commands.py    `tierwise simulate` on the command line

The names load on first use: the planner needs scipy and the plots matplotlib.
docs/simulate.md explains the model and its limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tierwise.lazy import lazy_names

if TYPE_CHECKING:
    from tierwise.simulate.html import write_html
    from tierwise.simulate.plots import write_plots
    from tierwise.simulate.result import FeatureStats, Series, SimResult, SiteStats, StrategyRun
    from tierwise.simulate.run import STRATEGIES, simulate

__all__ = [
    "STRATEGIES",
    "FeatureStats",
    "Series",
    "SimResult",
    "SiteStats",
    "StrategyRun",
    "simulate",
    "write_html",
    "write_plots",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "STRATEGIES": "run",
        "FeatureStats": "result",
        "Series": "result",
        "SimResult": "result",
        "SiteStats": "result",
        "StrategyRun": "result",
        "simulate": "run",
        "write_html": "html",
        "write_plots": "plots",
    },
)
