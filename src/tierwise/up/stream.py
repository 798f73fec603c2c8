"""While the devices stream: start them together, inject the WAN's outages, show the live view.

Every site's device process waits for SIGUSR1, so all start at one moment; after their
uncounted warm-up comes the zero of the `--wan` outage schedule. Outages are injected by
signalling every site's proxy (SIGUSR1 starts one, SIGUSR2 ends it) at the scheduled times,
and always ended on the way out. If the cloud, a proxy or an agent dies meanwhile, the run
stops with its log's tail.
"""

from __future__ import annotations

import signal
import time

from rich.console import Console
from rich.live import Live

from tierwise.errors import TierwiseError
from tierwise.up.layout import FeatureRun
from tierwise.up.live import (
    ReplicaFeed,
    SiteFeed,
    agent_state,
    console_is_live,
    log_lines,
    render,
    replicas_line,
)
from tierwise.up.processes import Child
from tierwise.up.wan_schedule import WanSchedule

VIEW_INTERVAL_S = 1.0
LOG_INTERVAL_S = 10.0


def stream(
    devices: dict[str, Child],
    services: list[Child],
    wans: dict[str, Child],
    agents: dict[str, str],
    runs: list[FeatureRun],
    duration: float,
    schedule: WanSchedule,
    console: Console,
    warmup: float = 0.0,
    replicas: dict[str, str] | None = None,
) -> None:
    """Run the devices to their end (they stop by themselves after warm-up and `duration`)."""
    for child in devices.values():
        child.signal(signal.SIGUSR1)
    start = time.monotonic() + warmup  # the outage schedule counts from the end of warm-up
    feeds = {site: SiteFeed(site, child.log) for site, child in devices.items()}
    replica_feed = ReplicaFeed(replicas or {})
    replica_feed.poll()  # the baseline the first look counts from
    last_look = time.monotonic()
    down = False
    live = Live(console=console, auto_refresh=False) if console_is_live(console) else None
    last_log = float("-inf")
    try:
        if live is not None:
            live.start()
        while any(c.alive() for c in devices.values()):
            t = time.monotonic() - start
            if schedule.down_at(t) != down:
                down = not down
                _set_down(wans, down)
                state = "DOWN (outage starts)" if down else "up again"
                console.print(f"t={t:5.1f}s WAN {state}")
            _check(services)
            lines = {site: feed.poll() for site, feed in feeds.items()}
            states = {site: agent_state(url) for site, url in agents.items()}
            clock = "warming up" if t < 0 else f"t={min(t, duration):4.0f}s / {duration:g}s"
            title = f"tierwise up — {clock}   WAN {'DOWN' if down else 'up'}"
            if replicas:
                now = time.monotonic()
                title += "   " + replicas_line(replica_feed.poll(), max(now - last_look, 1e-3))
                last_look = now
            if live is not None:
                live.update(render(title, runs, lines, states, VIEW_INTERVAL_S), refresh=True)
            elif t - last_log >= LOG_INTERVAL_S:
                last_log = t
                console.print(title)
                for text in log_lines(lines, states):
                    console.print(text, highlight=False)
            time.sleep(_pause(schedule, t))
    finally:
        if live is not None:
            live.stop()
        if down:
            _set_down(wans, False)
    for child in devices.values():
        if child.proc.returncode != 0:
            raise TierwiseError(f"{child.name} failed ({child.proc.returncode}): {child.tail()}")


def _set_down(wans: dict[str, Child], down: bool) -> None:
    for wan in wans.values():
        wan.signal(signal.SIGUSR1 if down else signal.SIGUSR2)


def _check(services: list[Child]) -> None:
    for child in services:
        if not child.alive():
            raise TierwiseError(
                f"{child.name} exited with code {child.proc.returncode}: {child.tail()} "
                f"(log: {child.log})"
            )


def _pause(schedule: WanSchedule, t: float) -> float:
    """How long to wait before the next look: a view interval, cut short by the next outage
    edge, or by the end of the warm-up (t < 0). Each look asks every agent for its state, on
    the same event loop that answers the devices: looking more often than the view needs
    would show up in the very latencies being measured."""
    pause = min(VIEW_INTERVAL_S, _next_change(schedule, max(t, 0.0)))
    if t < 0:
        pause = min(pause, max(-t, 0.05))
    return pause


def _next_change(schedule: WanSchedule, t: float) -> float:
    """Seconds until the schedule next starts or ends an outage (for timely injection)."""
    edges = [
        e - t for o in schedule.outages for e in (o.start_s, o.start_s + o.duration_s) if e > t
    ]
    return max(min(edges, default=VIEW_INTERVAL_S), 0.01)
