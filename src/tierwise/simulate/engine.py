"""Replay one assignment request by request, window by window, with numpy.

Each window (a few seconds to an hour of simulated time, sized to ~2 M requests) goes:

1. arrivals of every (feature, site) stream (`arrivals.py`);
2. device queues (one server per device) and edge gateways (c workers, shared by every
   feature placed there) solved in bulk (`queues.py`);
3. cascades decide which hard requests go to the cloud with the shared rule
   (`rules.escalation`), from the time left and the round trips observed so far;
4. each site's WAN uplink is a FIFO queue of request bytes, the cloud an autoscaled pool
   (`cloud.py`); outages (`outages.py`) make requests fail or answer locally;
5. telemetry goes through each site's outbox (`rules.outbox`), using whatever uplink the
   requests leave, nothing while the WAN is down;
6. latencies land in histograms, counts and costs (`rules.cost`) in per-step arrays.

Network round trips on the device-edge LAN are added after the gateway queue rather than
before: the gateway sees requests in the order devices send them (a Poisson stream, as the
planner assumes), which keeps every queue sorted without a sort.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tierwise.plan.candidates import Candidate
from tierwise.rules import CloudPricing, DropPolicy, RoundTripTracker
from tierwise.rules._types import BoolArray, FloatArray
from tierwise.rules.escalation import cascade_answer, escalate, is_hard
from tierwise.simulate.arrivals import poisson_times
from tierwise.simulate.cloud import CloudPool, wait_times
from tierwise.simulate.histogram import COARSE_SHIFT, N_BINS, N_COARSE, Histogram, bin_of
from tierwise.simulate.outages import SiteOutages
from tierwise.simulate.queues import FifoServers
from tierwise.simulate.result import StrategyRun
from tierwise.simulate.streams import Hop, Stream, build_streams
from tierwise.simulate.summary import summarize
from tierwise.simulate.tally import StreamCounts, Tally
from tierwise.simulate.telemetry import Outboxes
from tierwise.spec.model import Spec
from tierwise.spec.tiers import Placement
from tierwise.spec.traffic import OutboxSettings

IntArray = NDArray[np.intp]
REQUESTS_PER_WINDOW = 2_000_000
MAX_STEPS = 200_000  # per-step arrays (outbox, cloud, cost) over the whole run
SERIES_BINS = 720


@dataclass
class _Pending:
    """Requests of one stream in flight through the window's stages."""

    stream: int
    arrive: FloatArray
    lan_extra: FloatArray  # LAN round trip + loss penalty + transfers (s)
    answered: BoolArray
    local: FloatArray | None = None  # latency of the local answer
    edge_time: FloatArray | None = None  # when the edge has its local answer
    sent: BoolArray | None = None  # went to the cloud
    back: FloatArray | None = None  # when the cloud's answer is back at the edge (sent ones)
    back_idx: IntArray | None = None  # which requests `back` is for


def step_for(duration: float) -> float:
    """Length of a control step (autoscaler, outbox): 1 s, coarser for very long runs."""
    return max(1.0, math.ceil(duration / MAX_STEPS))


class Simulation:
    """One assignment over one run; `run()` returns its `StrategyRun`."""

    def __init__(
        self,
        spec: Spec,
        name: str,
        choice: list[Candidate],
        duration: float,
        outages: SiteOutages,
        seed: int,
        only: set[int] | None = None,
    ) -> None:
        self.spec, self.name, self.duration, self.outages = spec, name, duration, outages
        streams = build_streams(spec, choice, duration)
        self.streams = [s for s in streams if only is None or s.feature in only]
        self.choice = choice
        self.rng = np.random.default_rng([seed, 7])
        self.step = step_for(duration)
        self.n_steps = math.ceil(duration / self.step)
        n_sites = len(spec.sites)
        edge = spec.tiers.edge
        self.gateways = {
            s.site: FifoServers(spec.sites[s.site].gateways * edge.workers)
            for s in self.streams
            if s.placement in (Placement.EDGE, Placement.CASCADE)
        }
        self.uplinks = {i: FifoServers(1) for i in range(n_sites)}
        self.device_free = {
            i: np.full(s.devices, -np.inf)
            for i, s in enumerate(self.streams)
            if s.placement is Placement.DEVICE
        }
        self.trackers = {
            i: RoundTripTracker(prior=_planned_round_trip(s))
            for i, s in enumerate(self.streams)
            if s.placement is Placement.CASCADE
        }
        self.pool = CloudPool(spec.tiers.cloud, self.step)
        self.pool.warm(sum(_cloud_load(s) for s in self.streams))  # no cold start at t=0
        self.pricing = CloudPricing.of(spec.tiers.cloud)
        self.acc = [StreamCounts() for _ in self.streams]
        # per control step, per site
        shape = (n_sites, self.n_steps)
        self.up_bytes = np.zeros(shape)  # request bytes on the uplink
        self.tele_in = np.zeros(shape)
        self.egress_bytes = np.zeros(shape)
        outbox = spec.traffic.outbox if spec.traffic else OutboxSettings()
        self.outboxes = Outboxes(
            n_sites, self.n_steps, self.step, outbox.cap, DropPolicy(outbox.policy)
        )
        self.cloud_work = np.zeros(self.n_steps)
        self.cloud_calls = np.zeros(self.n_steps)
        self.instances = np.zeros(self.n_steps)
        n_features = len(spec.features)
        self.bins = min(SERIES_BINS, self.n_steps)
        self.s_requests = np.zeros((n_features, self.bins))
        self.s_misses = np.zeros((n_features, self.bins))
        self.s_hist = np.zeros((n_features, self.bins, N_COARSE), dtype=np.int64)
        self.f_hist = [Histogram() for _ in range(n_features)]

    # ---- the loop ---------------------------------------------------------------------

    def run(self, progress: Callable[[float], None] | None = None) -> StrategyRun:
        rate = sum(s.rate * s.devices * s.profile.levels.max() for s in self.streams)
        steps_per_window = int(max(1, min(REQUESTS_PER_WINDOW / max(rate, 1e-9) / self.step, 3600)))
        b = 0
        while b < self.n_steps:
            e = min(b + steps_per_window, self.n_steps)
            self._window(b, e)
            b = e
            if progress is not None:
                progress(min(b * self.step, self.duration) / self.duration)
        return self._finish()

    def _window(self, b0: int, b1: int) -> None:
        t0, t1 = b0 * self.step, min(b1 * self.step, self.duration)
        pending: list[_Pending] = []
        gateway_in: dict[int, list[tuple[_Pending, FloatArray]]] = {}
        for i, s in enumerate(self.streams):
            if s.placement is Placement.DEVICE:
                self._devices(i, s, t0, t1)
                continue
            arrive = poisson_times(s.rate * s.devices, s.profile, t0, t1, self.rng)[0]
            arrive = arrive[np.isfinite(arrive)]
            n = len(arrive)
            lan_extra = (
                _round_trips(s.lan, n, self.rng) + 8 * (s.payload + s.result) / s.lan.bandwidth
            )
            answered = ~self.outages.lan[s.site].down(arrive)
            p = _Pending(i, arrive, lan_extra, answered)
            pending.append(p)
            if s.placement is Placement.CLOUD:
                answered &= ~self.outages.wan[s.site].down(arrive)
                p.sent = answered.copy()
                p.edge_time = arrive + 8 * s.payload / s.lan.bandwidth
            else:
                gateway_in.setdefault(s.site, []).append(
                    (p, arrive + 8 * s.payload / s.lan.bandwidth)
                )
        for site, items in gateway_in.items():
            self._gateway(site, items)
        for p in pending:
            if self.streams[p.stream].placement is Placement.CASCADE:
                self._decide(p)
        self._wan_and_cloud(pending, t0, b0, b1)
        for p in pending:
            self._record(p)
        self._telemetry(t0, b0, b1)

    # ---- local tiers ------------------------------------------------------------------

    def _devices(self, i: int, s: Stream, t0: float, t1: float) -> None:
        """Each device is its own one-server queue: Lindley along each row at once."""
        times = poisson_times(s.rate, s.profile, t0, t1, self.rng, rows=s.devices)
        if times.shape[1] == 0:
            return
        ahead = np.arange(times.shape[1]) * s.service
        x = times - ahead
        x[:, 0] = np.maximum(x[:, 0], self.device_free[i])
        starts = np.maximum.accumulate(x, axis=1) + ahead
        count = np.isfinite(times).sum(axis=1)
        rows = np.flatnonzero(count)
        self.device_free[i][rows] = starts[rows, count[rows] - 1] + s.service
        ok = np.isfinite(times)
        arrive = times[ok]
        latency = starts[ok] + s.service - arrive
        self._account(i, arrive, latency, np.ones(len(arrive), dtype=bool))

    def _gateway(self, site: int, items: list[tuple[_Pending, FloatArray]]) -> None:
        """Every edge feature of a site shares its gateways' workers: one FIFO queue."""
        if len(items) == 1:
            p, at = items[0]
            svc: FloatArray | float = self.streams[p.stream].service
            order = None
            merged = at
        else:
            merged_all = np.concatenate([at for _, at in items])
            svc_all = np.concatenate(
                [np.full(len(at), self.streams[p.stream].service) for p, at in items]
            )
            order = np.argsort(merged_all, kind="stable")
            merged, svc = merged_all[order], svc_all[order]
        starts = self.gateways[site].serve(merged, svc)
        if order is not None:
            unsorted = np.empty_like(starts)
            unsorted[order] = starts
            starts = unsorted
        offset = 0
        for p, at in items:
            s = self.streams[p.stream]
            mine = starts[offset : offset + len(at)]
            offset += len(at)
            p.edge_time = mine + s.service
            p.local = p.edge_time - p.arrive + (p.lan_extra - 8 * s.payload / s.lan.bandwidth)

    def _decide(self, p: _Pending) -> None:
        """The cascade rule: hard, WAN up, and time left for the observed round trip."""
        s = self.streams[p.stream]
        assert p.local is not None
        assert p.edge_time is not None
        hard = is_hard(self.rng.random(len(p.arrive)), s.share)
        up = ~self.outages.wan[s.site].down(p.edge_time)
        remaining = s.deadline - p.local
        p.sent = np.asarray(
            escalate(hard, remaining, self.trackers[p.stream].estimate(), up) & p.answered,
            dtype=bool,
        )

    # ---- WAN and cloud ----------------------------------------------------------------

    def _wan_and_cloud(self, pending: list[_Pending], t0: float, b0: int, b1: int) -> None:
        """Uplink queues per site, then the cloud pool; sets `back` on every sent request."""
        to_cloud: list[tuple[_Pending, IntArray, FloatArray]] = []  # (p, idx, at the cloud)
        by_site: dict[int, list[tuple[_Pending, IntArray, FloatArray]]] = {}
        for p in pending:
            if p.sent is not None and p.edge_time is not None and p.sent.any():
                idx = np.flatnonzero(p.sent)
                site = self.streams[p.stream].site
                by_site.setdefault(site, []).append((p, idx, p.edge_time[idx]))
        wan_rtt: dict[int, FloatArray] = {}
        n_steps = b1 - b0
        for site, items in by_site.items():
            times = np.concatenate([at for _, _, at in items])
            svc = np.concatenate([np.full(len(idx), self._upload(p)) for p, idx, _ in items])
            order = np.argsort(times, kind="stable")
            starts = np.empty_like(times)
            starts[order] = self.uplinks[site].serve(times[order], svc[order])
            offset = 0
            for p, idx, at in items:
                s = self.streams[p.stream]
                n = len(idx)
                rtt = _round_trips(s.wan, n, self.rng)
                wan_rtt[id(p)] = rtt
                departed = starts[offset : offset + n] + svc[offset : offset + n]
                offset += n
                to_cloud.append((p, idx, departed + rtt / 2))
                k = np.clip(((at - t0) / self.step).astype(np.int64), 0, n_steps - 1)
                per_step = np.bincount(k, minlength=n_steps).astype(np.float64)
                self.up_bytes[site, b0:b1] += per_step * s.payload
                self.egress_bytes[site, b0:b1] += per_step * (s.payload + s.result)
        self._cloud(to_cloud, wan_rtt, t0, b0, b1)

    def _upload(self, p: _Pending) -> float:
        """Seconds one request's payload holds the site's uplink."""
        s = self.streams[p.stream]
        return 8 * s.payload / s.wan.bandwidth

    def _cloud(
        self,
        to_cloud: list[tuple[_Pending, IntArray, FloatArray]],
        wan_rtt: dict[int, FloatArray],
        t0: float,
        b0: int,
        b1: int,
    ) -> None:
        n_steps = b1 - b0
        work = np.zeros(n_steps)
        calls = np.zeros(n_steps)
        for p, _, at in to_cloud:
            s = self.streams[p.stream]
            k = np.clip(((at - t0) / self.step).astype(np.int64), 0, n_steps - 1)
            service = s.service if s.placement is Placement.CLOUD else s.cloud_service
            work += np.bincount(k, minlength=n_steps) * service
            calls += np.bincount(k, minlength=n_steps)
        backlog, cap, instances = self.pool.run(t0, work)
        self.cloud_work[b0:b1] += work
        self.cloud_calls[b0:b1] += calls
        self.instances[b0:b1] = instances
        if np.isfinite(cap[-1]):
            ready = max(self.pool.ready, 1) * self.step
            extra = int(backlog.max(initial=self.pool.backlog) / ready) + 2
            extra += int(self.spec.tiers.cloud.scale_up_delay / self.step) + 2
            cap = self.pool.projected_edges(cap, extra)
            backlog = np.concatenate([backlog, np.full(extra, 0.0)])
        for p, idx, at in to_cloud:
            s = self.streams[p.stream]
            service = s.service if s.placement is Placement.CLOUD else s.cloud_service
            wait = wait_times(at, t0, self.step, backlog, cap)
            back = at + wait + service + wan_rtt[id(p)] / 2 + 8 * s.result / s.wan.bandwidth
            p.back, p.back_idx = back, idx
            acc = self.acc[p.stream]
            acc.cloud_busy += service * len(idx)
            acc.cloud_calls += len(idx)
            acc.wan_bytes += len(idx) * (s.payload + s.result)

    # ---- outcomes ---------------------------------------------------------------------

    def _record(self, p: _Pending) -> None:
        s = self.streams[p.stream]
        idx = p.back_idx if p.back_idx is not None else np.zeros(0, dtype=np.intp)
        back = p.back if p.back is not None else np.zeros(0)
        if s.placement is Placement.CLOUD:
            latency = np.full(len(p.arrive), np.inf)  # unanswered ones are not counted
            up = 8 * s.payload / s.lan.bandwidth
            latency[idx] = back - p.arrive[idx] + (p.lan_extra[idx] - up)
            self.acc[p.stream].escalated += int(p.answered.sum())
        elif s.placement is Placement.CASCADE:
            assert p.local is not None
            assert p.edge_time is not None
            latency = p.local
            acc = self.acc[p.stream]
            acc.escalated += len(idx)
            if len(idx):
                # the shared rule, on the escalated requests only (the others answer locally)
                local = p.local[idx]
                round_trip = back - p.edge_time[idx]  # edge → cloud → edge
                answer, from_cloud = cascade_answer(
                    local, local + round_trip, s.deadline, np.ones(len(idx), dtype=bool)
                )
                latency = p.local.copy()
                latency[idx] = answer
                acc.in_time += int(np.count_nonzero(from_cloud))
                self.trackers[p.stream].observe(np.minimum(round_trip, s.deadline - local))
        else:
            assert p.local is not None
            latency = p.local
        self._account(p.stream, p.arrive, latency, p.answered)

    def _account(
        self, i: int, arrive: FloatArray, latency: FloatArray, answered: BoolArray
    ) -> None:
        s = self.streams[i]
        acc = self.acc[i]
        everyone = bool(answered.all())
        ok_latency = latency if everyone else latency[answered]
        bins = bin_of(ok_latency)
        counts = np.bincount(bins, minlength=N_BINS)
        acc.hist.counts += counts
        self.f_hist[s.feature].counts += counts
        acc.requests += len(arrive)
        acc.answered += int(answered.sum())
        late = ok_latency > s.deadline
        acc.late += int(late.sum())
        where = np.minimum((arrive / self.duration * self.bins).astype(np.int64), self.bins - 1)
        self.s_requests[s.feature] += np.bincount(where, minlength=self.bins)
        missed = ~answered
        missed[answered] = late
        self.s_misses[s.feature] += np.bincount(where[missed], minlength=self.bins)
        coarse = (where if everyone else where[answered]) * N_COARSE + (bins >> COARSE_SHIFT)
        self.s_hist[s.feature] += np.bincount(coarse, minlength=self.bins * N_COARSE).reshape(
            self.bins, N_COARSE
        )

    # ---- telemetry and the outbox -----------------------------------------------------

    def _telemetry(self, t0: float, b0: int, b1: int) -> None:
        """Telemetry through each site's outbox, step by step, all sites at once."""
        spec = self.spec
        n = b1 - b0
        mids = t0 + (np.arange(n) + 0.5) * self.step
        incoming = np.zeros((len(spec.sites), n))
        for i, s in enumerate(self.streams):
            if s.telemetry <= 0:
                continue
            expected = s.telemetry * s.devices * s.profile.at(mids) * self.step
            incoming[s.site] += expected
            self.acc[i].telemetry_bytes += float(expected.sum())
        edges = t0 + np.arange(n + 1) * self.step
        up_share = np.zeros((len(spec.sites), n))
        for site in range(len(spec.sites)):
            down = np.diff(self.outages.wan[site].downtime_until(edges))
            up_share[site] = 1 - down / self.step
        bandwidth = np.array(
            [spec.wan(site).bandwidth * spec.wan(site).max_utilization for site in spec.sites]
        )
        capacity = up_share * (bandwidth[:, None] / 8 * self.step) - self.up_bytes[:, b0:b1]
        self.outboxes.advance(b0, incoming, capacity)
        self.tele_in[:, b0:b1] = incoming
        self.egress_bytes[:, b0:b1] += self.outboxes.sent[:, b0:b1]

    def _finish(self) -> StrategyRun:
        return summarize(
            Tally(
                spec=self.spec,
                name=self.name,
                duration=self.duration,
                step=self.step,
                streams=self.streams,
                choice=self.choice,
                outages=self.outages,
                pricing=self.pricing,
                per_stream=self.acc,
                cloud_calls=self.cloud_calls,
                cloud_work=self.cloud_work,
                instances=self.instances,
                egress_bytes=self.egress_bytes,
                outboxes=self.outboxes,
                cloud_peak_instances=self.pool.peak,
                cloud_instance_seconds=self.pool.instance_seconds,
                series_requests=self.s_requests,
                series_misses=self.s_misses,
                series_hist=self.s_hist,
                feature_hist=self.f_hist,
            )
        )


def _round_trips(hop: Hop, n: int, rng: np.random.Generator) -> FloatArray:
    """Round trips on a hop: log-normal, plus a retransmission timeout where a segment is lost."""
    # float32 draws: half the time of float64, and 1e-7 relative is far below any RTT jitter
    z = rng.standard_normal(n, dtype=np.float32)
    z *= np.float32(hop.sigma)
    rtt = hop.rtt_p50 * np.exp(z).astype(np.float64)
    if hop.p_retransmit > 0:
        rtt += (rng.random(n) < hop.p_retransmit) * hop.rto
    return rtt


def _cloud_load(s: Stream) -> float:
    """Busy cloud instance-seconds per second a stream brings at the start of the run."""
    sent = 1.0 if s.placement is Placement.CLOUD else s.share
    service = s.service if s.placement is Placement.CLOUD else s.cloud_service
    return s.rate * s.devices * float(s.profile.levels[0]) * sent * service


def _planned_round_trip(s: Stream) -> float:
    """The escalation round trip to budget before any is observed: the WAN's p90 and transfers."""
    z90 = 1.2815515655446004
    return (
        s.wan.rtt_p50 * math.exp(s.wan.sigma * z90)
        + 8 * (s.payload + s.result) / s.wan.bandwidth
        + s.cloud_service
    )
