"""The edge agent: serves devices, follows the cloud's deployment, keeps every answer on record.

One object owns the pieces and their lifecycle (STARTING → SERVING → DRAINING → STOPPED):

- `Deployer` installs what the cloud deploys (verified, swapped atomically, rolled back
  when it fails its probe) and restores it from disk after a restart, cloud or no cloud;
- `Router` answers each request locally, in the cloud or as a cascade, by its deadline;
- `Outbox` records every answer durably before the device hears it, and `Uploader` moves
  the records to the cloud in batches when the WAN allows;
- `Metrics` counts per feature and version, reported to the cloud and at /metrics;
- `FeedbackBook` summarizes each feature's stream for the cloud (through the outbox),
  `UpstreamBytes` counts what that costs, and `FieldSample` keeps the newest labelled rows
  on the site's disk for a retraining here (never uploaded).

A graceful stop refuses new requests, lets those in flight finish, flushes the outbox for
up to `drain_timeout_s`, sends a last status report and closes the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import numpy as np

from tierwise.edge.cloud_health import CloudHealth
from tierwise.edge.deploy import Deployer, PackageOps, Served
from tierwise.edge.feedback import FeedbackBook, policy_for
from tierwise.edge.field_sample import FieldSample, write_field_sample
from tierwise.edge.lifecycle import AgentState, Lifecycle
from tierwise.edge.link import CloudLink
from tierwise.edge.metrics import Metrics
from tierwise.edge.outbox import Durability, Outbox, encode_body
from tierwise.edge.router import NoAnswerError, Router
from tierwise.edge.settings import EdgeSettings
from tierwise.edge.uploader import Uploader, UploadPolicy
from tierwise.edge.upstream_bytes import FeatureBytes, UpstreamBytes
from tierwise.errors import (
    LinkError,
    NotFoundError,
    TierwiseError,
    UnavailableError,
    UnprocessableError,
    UsageError,
)
from tierwise.rules.clock import Clock, RealClock, WallClock
from tierwise.rules.escalation import RoundTripTracker
from tierwise.rules.escalation_watch import EscalationCheck
from tierwise.spec.tiers import Reach
from tierwise.wire import (
    FEEDBACK_KIND,
    FeatureStatus,
    PredictRequest,
    PredictResponse,
    SiteStatus,
)

log = logging.getLogger(__name__)

AGENT_STREAM = "agent"  # lifecycle and package events; predictions go to their feature's stream
METRICS_STREAM = "metrics"  # periodic snapshots of the counters, so they survive outages too


class EdgeAgent:
    """One site's agent. `start()` and `stop()` bracket its life; `predict()` serves devices."""

    def __init__(
        self,
        settings: EdgeSettings,
        link: CloudLink,
        ops: PackageOps,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.link = link
        self.clock = clock or RealClock()  # deadlines, backoff, the cloud-health window
        self.wall_clock = wall_clock or WallClock()  # event times the cloud stores and compares
        self.lifecycle = Lifecycle()
        self.metrics = Metrics(self.wall_clock)
        self.feedback = FeedbackBook(every_s=settings.feedback_interval_s)
        self.upstream = UpstreamBytes()
        self.field = FieldSample(
            settings.field_dir, settings.field_rows, settings.field_save_interval_s
        )
        # One writer thread: writes of the field sample happen in the order they were asked
        # for, even when the loop that asked was cancelled (stop) while one was under way.
        self._field_writer = ThreadPoolExecutor(1, thread_name_prefix="field-sample")
        self.health = CloudHealth(self.clock)
        self.tracker = RoundTripTracker(prior=settings.rtt_prior_s)
        self.router = Router(link, self.clock, self.tracker, self.health, settings.reserve_fraction)
        self.outbox: Outbox | None = None
        self.uploader: Uploader | None = None
        self.deployer = Deployer(settings.site, link, ops, settings.packages_dir, self.record)
        self.started_at = self.wall_clock.now()
        self.last_status_error = ""
        self.loop_lag_max_ms = 0.0
        self.loop_lag_over_50ms = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # What each device-facing adapter beyond HTTP shows in /v1/state (e.g. "mqtt").
        self.adapter_views: dict[str, Callable[[], dict[str, Any]]] = {}

    @property
    def serving(self) -> bool:
        return self.lifecycle.serving

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the outbox, restore the installed packages, start syncing; then serve."""
        s = self.settings
        self.outbox = await asyncio.to_thread(
            Outbox, s.outbox_path, s.outbox_cap_bytes, s.drop_policy, s.durability
        )
        policy = UploadPolicy(interval_s=s.upload_interval_s)
        self.uploader = Uploader(self.outbox, self.link, s.site, self.clock, policy)
        await asyncio.to_thread(self.field.load)
        await self.deployer.restore()
        await self.record("agent.started", {"features": sorted(self.deployer.served)})
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="deployment-sync"),
            asyncio.create_task(self.uploader.run(self._stop), name="uploader"),
            asyncio.create_task(self._status_loop(), name="status"),
            asyncio.create_task(self._watch_loop_lag(), name="loop-lag"),
            asyncio.create_task(self.link.warm(), name="warm-link"),
        ]
        self.lifecycle.move(AgentState.SERVING)
        gc.freeze()  # what start-up made lives forever: keep it out of every later GC pass
        log.info("edge agent %s serving %s", s.site, sorted(self.deployer.served))

    async def stop(self) -> None:
        """Drain: refuse new requests, finish those in flight, flush what the WAN allows."""
        if self.lifecycle.state is AgentState.STOPPED:
            return
        if self.lifecycle.state is not AgentState.DRAINING:
            self.lifecycle.move(AgentState.DRAINING)
        deadline = self.clock.deadline(self.settings.drain_timeout_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), max(self.clock.remaining(deadline), 0.01))
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.save_field_sample(final=True)
        self._field_writer.shutdown(wait=False)  # nothing left in it: the save above waited
        if self.outbox is not None and self.uploader is not None:
            await self.record_metrics(final=True)
            await self.record("agent.stopping", {"outbox": asdict(self.outbox.counts())})
            flushed = await self.uploader.flush(deadline)
            log.info(
                "edge agent %s: outbox %s at stop",
                self.settings.site,
                "flushed" if flushed else f"kept {self.outbox.counts().depth_events} events",
            )
            with contextlib.suppress(TierwiseError, TimeoutError):
                await asyncio.wait_for(self._report_status(), 2.0)
            await asyncio.to_thread(self.outbox.close)
        self.router.close()
        await self.link.close()
        self.lifecycle.move(AgentState.STOPPED)

    # --- serving --------------------------------------------------------------------------

    async def predict(
        self, feature: str, request: PredictRequest, arrived: float | None = None
    ) -> PredictResponse:
        """Answer a device; the answer's record is committed before this returns. The deadline
        counts from `arrived` (clock time the request reached the app) when given."""
        if not self.serving:
            self.metrics.refused_draining += 1
            raise UnavailableError(f"edge agent is {self.lifecycle.state.value}")
        served = self.deployer.served.get(feature)
        if served is None:
            self.metrics.unknown_feature += 1
            raise NotFoundError(f"feature {feature!r} is not deployed at {self.settings.site}")
        started = arrived if arrived is not None else self.clock.now()
        wall = self.wall_clock.now()
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._predict(feature, served, request, started, wall)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    def deadline_ms(self, feature: str) -> float | None:
        """The deployed deadline of `feature` (None when it is not deployed here)."""
        served = self.deployer.served.get(feature)
        return None if served is None else served.route.deadline_s * 1000

    async def _predict(
        self, feature: str, served: Served, request: PredictRequest, started: float, wall: float
    ) -> PredictResponse:
        widths = {len(row) for row in request.inputs}
        if len(widths) != 1:
            raise UnprocessableError("inputs: every row must have the same length")
        with np.errstate(over="ignore"):  # beyond float32 becomes inf: refused below as 422
            rows = np.asarray(request.inputs, dtype=np.float32)
        labels = None
        if request.labels is not None:
            if len(request.labels) != len(rows):
                raise UnprocessableError(
                    f"labels: {len(request.labels)} labels for {len(rows)} rows"
                )
            try:
                labels = np.asarray(request.labels, dtype=np.int64)
            except OverflowError:
                raise UnprocessableError("labels: a label beyond a 64-bit integer") from None
        local = served.model
        package = served.spec.package if local is None else local.name
        version = served.spec.version if local is None else local.version
        counters = self.metrics.of(feature, package, version)
        route = served.route
        counters.watch_against(route.planned_escalated if route.threshold is not None else None)
        try:
            answer = await self.router.answer(feature, route, local, rows, started)
        except NoAnswerError:  # a 503 for the device
            counters.errors += 1
            raise
        except (UsageError, ValueError, RuntimeError) as exc:  # inputs that do not fit the model
            counters.errors += 1
            raise UnprocessableError(f"inputs do not fit {package} v{version}: {exc}") from None
        if local is not None and answer.edge_outputs is not None:
            self.feedback.count(
                feature,
                local,
                policy_for(served.spec.raw_data_may_reach is Reach.CLOUD),
                rows,
                answer.edge_outputs,
                answer.hard,
                answer.outputs if answer.cloud_rows else None,
                request.labels,
            )
        if answer.cloud_rows:  # what uploading these raw inputs would cost (upstream_bytes.py)
            self.upstream.escalated(feature, rows if answer.hard is None else rows[answer.hard])
        correct = labelled = 0
        if labels is not None:
            outputs = np.asarray(answer.outputs)
            correct = int(np.sum(np.argmax(outputs, axis=1) == labels))
            labelled = len(labels)
            self.field.add(feature, rows, labels, wall, outputs.shape[1])
        stream = request.stream or feature
        body = {
            "feature": feature,
            "answered_by": answer.answered_by,
            "model": answer.model,
            "version": answer.version,
            "degraded": answer.degraded,
            "reason": answer.reason,
            "rows": len(rows),
            "hard_rows": answer.hard_rows,
            "cloud_rows": answer.cloud_rows,
            "escalated": answer.escalated,
            "correct": correct,
            "labelled": labelled,
        }
        body["latency_ms"] = (self.clock.now() - started) * 1000
        seq = await self.record_prediction(stream, body, wall)
        latency_ms = (self.clock.now() - started) * 1000
        counters.record(
            latency_ms,
            len(rows),
            answer.escalated,
            answer.answered_by == "cloud",
            answer.degraded,
            correct,
            labelled,
            answer.hard_rows,
            missed_deadline=latency_ms > route.deadline_s * 1000,
        )
        return PredictResponse(
            outputs=answer.outputs,
            answered_by=answer.answered_by,
            model=answer.model,
            version=answer.version,
            degraded=answer.degraded,
            latency_ms=latency_ms,
            event_seq=seq,
            stream=stream,
            reason=answer.reason,
        )

    async def record_prediction(self, stream: str, body: dict[str, Any], wall: float) -> int | None:
        assert self.outbox is not None
        assert self.uploader is not None
        seq = await self.outbox.append_async(stream, "prediction", body, wall)
        self.uploader.nudge()
        return seq

    async def record(self, kind: str, body: dict[str, Any]) -> None:
        """An agent event (package installed or refused, start, stop) into the outbox."""
        if self.outbox is not None:
            await self.outbox.append_async(AGENT_STREAM, kind, body, self.wall_clock.now())

    # --- background loops -----------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while not self._stop.is_set():
            held = False
            try:
                if await self.deployer.poll(self.settings.deployment_wait_s):
                    await self._report_status()
                self.health.succeeded()
                # A long-polling cloud paced this poll itself: ask again at once. Not while
                # a download is still to retry (no etag): that answer comes back at once.
                held = self.link.long_polls and self.deployer.etag is not None
            except LinkError as exc:
                self.health.failed()
                log.debug("deployment poll failed: %s", exc)
            except TierwiseError as exc:
                log.warning("deployment poll refused: %s", exc)
            if not held:
                await _sleep_unless(self._stop, self.settings.poll_interval_s)

    async def _watch_loop_lag(self) -> None:
        """How late the event loop wakes up: the time no request can make progress. A deadline
        can only be kept to within this, so it is measured and shown (`loop_lag_ms`)."""
        period = 0.01
        while not self._stop.is_set():
            before = self.clock.now()
            await asyncio.sleep(period)
            lag = (self.clock.now() - before - period) * 1000
            self.loop_lag_max_ms = max(self.loop_lag_max_ms, lag)
            self.loop_lag_over_50ms += lag > 50

    async def _status_loop(self) -> None:
        # A report can hang for a whole timeout when the WAN drops packets; the snapshot must
        # not wait for it: it is what tells the cloud, later, how the outage went.
        reporting: asyncio.Task[None] | None = None
        try:
            while not self._stop.is_set():
                await _sleep_unless(self._stop, self.settings.status_interval_s)
                await self.record_metrics()
                await self.save_field_sample()
                if reporting is None or reporting.done():
                    reporting = asyncio.create_task(self._report_status_quietly())
        finally:
            if reporting is not None:
                reporting.cancel()
                await asyncio.gather(reporting, return_exceptions=True)

    async def _report_status_quietly(self) -> None:
        try:
            await self._report_status()
        except TierwiseError as exc:
            self.last_status_error = str(exc)

    async def record_metrics(self, final: bool = False) -> None:
        """A snapshot of every counter (escalations, degraded, latency, outbox drops) into the
        outbox: unlike a status report, it reaches the cloud even across an outage. With it,
        the feedback summaries when due (edge/feedback.py), or all that is left when `final`."""
        if self.outbox is None:
            return
        await self._check_escalation_drift()
        body = {
            "versions": [
                {
                    "feature": m.feature,
                    "package": m.package,
                    "version": m.version,
                    "requests": m.requests,
                    "rows": m.rows,
                    "errors": m.errors,
                    "escalations": m.escalations,
                    "hard_rows": m.hard_rows,
                    "escalation_check": _check_view(m.escalation_check()),
                    "cloud_answers": m.cloud_answers,
                    "degraded": m.degraded,
                    "deadline_misses": m.deadline_misses,
                    "p50_ms": m.percentile_ms(50),
                    "p99_ms": m.percentile_ms(99),
                    "feedback_correct": m.feedback_correct,
                    "feedback_total": m.feedback_total,
                }
                for m in self.metrics.by_version.values()
            ],
            "outbox": asdict(self.outbox.counts()),
            "outbox_oldest_ts": await self.outbox.oldest_ts_async(),
            "rtt_estimate_ms": self.tracker.estimate() * 1000,
            "cloud_down": self.health.down,
            "learning": self.learning_view(),
        }
        await self.outbox.append_async(
            METRICS_STREAM, "metrics.snapshot", body, self.wall_clock.now()
        )
        for report in self.feedback.reports(self.clock.now(), final):
            seq = await self.outbox.append_async(
                METRICS_STREAM, FEEDBACK_KIND, report, self.wall_clock.now()
            )
            if seq is not None:  # enqueued (not refused by a full drop-newest outbox)
                whole = len(encode_body(report))
                # the examples' share: the body's bytes with them, less without them
                summary = (
                    len(encode_body(_without_examples(report))) if "examples" in report else whole
                )
                self.upstream.feedback(report["feature"], whole, whole - summary)

    async def save_field_sample(self, final: bool = False) -> None:
        """Write the field sample's changed rings (at most every `field_save_interval_s`; all
        of them at stop), each atomically, on the writer thread. A failed write is logged and
        retried later."""
        fsync = self.settings.durability is Durability.POWER
        loop = asyncio.get_running_loop()
        for write in self.field.due(self.clock.now(), final):
            try:
                await loop.run_in_executor(
                    self._field_writer, write_field_sample, write.path, write.rows, fsync
                )
            except OSError as exc:
                log.warning("field sample: cannot write %s: %s", write.path, exc)
            else:
                self.field.saved(write)

    async def _check_escalation_drift(self) -> None:
        """Say when a cascade's hard share moves away from the plan's, and when it is back:
        a warning in the log and an `escalation.drift` event into the outbox."""
        for m in self.metrics.by_version.values():
            check = m.escalation_check()
            if check is None or check.drifted == m.drifted:
                continue
            m.drifted = check.drifted
            verdict = "drifted from" if check.drifted else "is back to"
            log.warning(
                "%s %s v%d: hard share %.1f%% of the last %d rows %s the planned %.1f%% (p=%.2g)",
                m.feature, m.package, m.version, check.observed * 100, check.rows, verdict,
                check.planned * 100, check.p_value,
            )  # fmt: skip
            body = {"feature": m.feature, "package": m.package, "version": m.version}
            await self.record("escalation.drift", body | _check_view(check))

    async def _report_status(self) -> None:
        await self.link.status(self.settings.site, self.site_status())

    def site_status(self) -> SiteStatus:
        """Installed (and refused) versions with their health and counters."""
        entries: list[FeatureStatus] = []
        for name, served in self.deployer.served.items():
            model = served.model
            package = served.spec.package if model is None else model.name
            version = served.spec.version if model is None else model.version
            counters = self.metrics.of(name, package, version)
            entries.append(
                FeatureStatus(
                    feature=name,
                    package=package,
                    version=version,
                    healthy=model is not None,
                    detail="" if model is not None else "no working package installed",
                    since=counters.since,
                    counters=counters.counters(),
                )
            )
        for name, refusal in self.deployer.refused.items():
            entries.append(
                FeatureStatus(
                    feature=name,
                    package=refusal.package,
                    version=refusal.version,
                    healthy=False,
                    detail=refusal.reason[:1000],
                    since=self.started_at,
                )
            )
        return SiteStatus(features=entries)

    # --- views ----------------------------------------------------------------------------

    def state_view(self) -> dict[str, Any]:
        outbox = asdict(self.outbox.counts()) if self.outbox is not None else None
        uploads = asdict(self.uploader.stats) if self.uploader is not None else None
        return {
            "site": self.settings.site,
            "state": self.lifecycle.state.value,
            "features": {
                name: {
                    "package": s.spec.package,
                    "version": s.model.version if s.model is not None else None,
                    "deployed_version": s.spec.version,
                    "variant": s.model.variant if s.model is not None else None,
                    "deployed_variant": s.spec.variant,
                    "placement": s.spec.placement.value,
                    "deadline_ms": s.spec.deadline_ms,
                    "threshold": s.spec.threshold,
                    "rule": s.spec.rule.value,
                    "planned_escalated": s.spec.planned_escalated,
                }
                for name, s in self.deployer.served.items()
            },
            "refused": {name: asdict(r) for name, r in self.deployer.refused.items()},
            "outbox": outbox,
            "uploads": uploads,
            "cloud": {
                "down": self.health.down,
                "consecutive_failures": self.health.consecutive_failures,
                "rtt_estimate_ms": self.tracker.estimate() * 1000,
                "rtt_samples": self.tracker.seen,
            },
            "in_flight": self._in_flight,
            "loop_lag": {"max_ms": self.loop_lag_max_ms, "over_50ms": self.loop_lag_over_50ms},
            "deployment_etag": self.deployer.etag,
            "adapters": {name: view() for name, view in self.adapter_views.items()},
            "learning": self.learning_view(),
        }

    def learning_view(self) -> dict[str, Any]:
        """Per feature: the feedback path's upstream bytes beside what uploading every
        escalated input would have cost (edge/upstream_bytes.py), totals since `since`, and
        the labelled rows the field sample keeps on this site's disk."""
        rows = self.field.counts()
        features = sorted(set(self.upstream.features) | set(rows))
        return {
            "since": self.started_at,
            "at": self.wall_clock.now(),  # the counters' end: a rate is theirs over at - since
            "field_rows_max": self.field.capacity,
            "features": {
                name: asdict(self.upstream.features.get(name) or FeatureBytes())
                | {"field_rows": rows.get(name, 0)}
                for name in features
            },
        }

    def prometheus(self) -> str:
        gauges: dict[str, float] = {
            "cloud_down": float(self.health.down),
            "rtt_estimate_seconds": self.tracker.estimate(),
            "serving": float(self.serving),
            "loop_lag_max_ms": self.loop_lag_max_ms,
        }
        if self.outbox is not None:
            c = self.outbox.counts()
            gauges |= {
                "outbox_depth_events": c.depth_events,
                "outbox_depth_bytes": c.depth_bytes,
                "outbox_dropped_events_total": c.dropped_events,
                "outbox_dropped_bytes_total": c.dropped_bytes,
                "outbox_uploaded_events_total": c.uploaded_events,
            }
        return (
            self.metrics.prometheus(gauges)
            + self._variant_info()
            + self.upstream.prometheus()
            + self._field_rows_info()
        )

    def _field_rows_info(self) -> str:
        lines = [
            "# HELP tierwise_edge_field_rows labelled rows the field sample keeps per feature",
            "# TYPE tierwise_edge_field_rows gauge",
        ]
        for name, n in sorted(self.field.counts().items()):
            lines.append(f'tierwise_edge_field_rows{{feature="{name}"}} {n}')
        return "\n".join(lines) + "\n"

    def _variant_info(self) -> str:
        """Which package variant answers each feature: an info metric (always 1), so the
        counters keep their labels and a dashboard joins on feature, package and version."""
        lines = [
            "# HELP tierwise_edge_variant_info the package variant each feature runs",
            "# TYPE tierwise_edge_variant_info gauge",
        ]
        for name, s in sorted(self.deployer.served.items()):
            if s.model is not None:
                labels = (
                    f'feature="{name}",package="{s.model.name}",version="{s.model.version}",'
                    f'variant="{s.model.variant}"'
                )
                lines.append(f"tierwise_edge_variant_info{{{labels}}} 1")
        return "\n".join(lines) + "\n"


def _check_view(check: EscalationCheck | None) -> dict[str, Any]:
    return {} if check is None else asdict(check)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _without_examples(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "examples"}
