"""`--wan SCHEDULE`: the WAN conditions `tierwise up` puts between every edge site and the cloud.

A schedule is a comma-separated list of terms, applied left to right on top of each site's
own WAN link from the spec (its RTT p50/p99 and loss):

    spec                   the spec's link as it is (the default when --wan is not given)
    none                   a perfect wire: no added delay, no loss
    rtt=60ms/250ms         round trip p50/p99 (rtt=40ms: p99 = p50)
    loss=1%                share of exchanges meeting a lost segment (TCP retransmit)
    outage=20s@30s         an outage of 20 s starting 30 s after the devices start (repeatable)

e.g. `--wan "spec,outage=20s@20s"` or `--wan "rtt=60ms/250ms,loss=5%,outage=30s@10s"`.
Outages are timed from the moment device traffic starts and injected by the supervisor
(SIGUSR1/SIGUSR2 to the proxy), so start-up time never eats into them.

`run_spec` rewrites the spec's WAN links to what the run will inject — RTT, loss, and an
availability of (1 - outage share of the run) in outages of the scheduled mean length — so
that the plan's placement can be re-evaluated for the very conditions the run measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tierwise.errors import UsageError
from tierwise.spec.model import Link, Spec
from tierwise.wan.conditions import Outage, WanConditions, parse_outages, parse_seconds


@dataclass(frozen=True)
class WanSchedule:
    """Overrides of the spec's WAN and the outages, timed from the start of device traffic."""

    perfect: bool = False
    rtt: tuple[float, float] | None = None
    loss: float | None = None
    outages: tuple[Outage, ...] = ()
    text: str = "spec"

    def conditions(self, link: Link) -> WanConditions:
        """The proxy's conditions for a site whose WAN the spec describes as `link`.

        Outages are left out: the supervisor injects them on its own clock.
        """
        base = WanConditions() if self.perfect else WanConditions.from_link(link)
        if self.rtt is not None:
            base = replace(base, rtt_p50_s=self.rtt[0], rtt_p99_s=self.rtt[1])
        if self.loss is not None:
            base = replace(base, loss=self.loss)
        return base

    def down_at(self, t: float) -> bool:
        """Whether the schedule has the WAN down `t` seconds after traffic started."""
        return any(o.covers(t) for o in self.outages)

    def downtime(self, duration: float) -> float:
        """Seconds of outage within the first `duration` seconds (overlaps counted once)."""
        total, covered_to = 0.0, 0.0
        for o in self.outages:  # sorted by start
            start = max(o.start_s, covered_to)
            end = min(o.start_s + o.duration_s, duration)
            if end > start:
                total += end - start
            covered_to = max(covered_to, min(o.start_s + o.duration_s, duration))
        return total


def parse_wan(text: str | None) -> WanSchedule:
    """Parse `--wan`; UsageError naming the bad term."""
    if text is None or not text.strip():
        return WanSchedule()
    schedule = WanSchedule(text=text.strip())
    outages: list[Outage] = []
    for raw in text.split(","):
        term = raw.strip()
        key, _, value = term.partition("=")
        key = key.strip().lower()
        try:
            if key == "spec" and not value:
                schedule = replace(schedule, perfect=False, rtt=None, loss=None)
            elif key in ("none", "perfect") and not value:
                schedule = replace(schedule, perfect=True, rtt=None, loss=None)
            elif key == "rtt":
                p50, _, p99 = value.partition("/")
                rtt = parse_seconds(p50), parse_seconds(p99 or p50)
                if rtt[1] < rtt[0]:
                    raise ValueError("the p99 must be at least the p50")
                schedule = replace(schedule, rtt=rtt)
            elif key == "loss":
                schedule = replace(schedule, loss=_fraction(value))
            elif key == "outage":
                outages.extend(parse_outages(value))
            else:
                raise ValueError("expected spec, none, rtt=P50/P99, loss=N% or outage=DUR@START")
        except ValueError as exc:
            raise UsageError(f"--wan {term!r}: {exc}") from None
    return replace(schedule, outages=tuple(sorted(outages, key=lambda o: o.start_s)))


def run_spec(spec: Spec, schedule: WanSchedule, duration: float) -> Spec:
    """The spec with every WAN link replaced by what this run injects (for the prediction)."""

    def rewrite(link: Link) -> Link:
        cond = schedule.conditions(link)
        down = schedule.downtime(duration)
        p50 = cond.rtt_p50_s or 1e-4  # a spec link needs a positive round trip
        mean_outage = down / len(schedule.outages) if schedule.outages and down > 0 else 0.0
        availability = max(1.0 - down / duration, 1e-3) if duration > 0 else 1.0
        return link.model_copy(
            update={
                "rtt_p50": p50,
                "rtt_p99": max(cond.rtt_p99_s, p50),
                "loss": cond.loss,
                "availability": availability if mean_outage > 0 else 1.0,
                "mean_outage": mean_outage,
            }
        )

    links = spec.links.model_copy(update={"edge_cloud": rewrite(spec.links.edge_cloud)})
    sites = [
        s.model_copy(update={"edge_cloud": rewrite(s.edge_cloud)}) if s.edge_cloud else s
        for s in spec.sites
    ]
    return spec.model_copy(update={"links": links, "sites": sites})


def _fraction(text: str) -> float:
    text = text.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"expected a loss like 5% or 0.05, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise ValueError(f"loss must be in [0%, 100%), got {text!r}")
    return value
