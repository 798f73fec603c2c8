"""Route one device request per the plan: answer locally, ask the cloud, or cascade — in time.

The decision to escalate is `tierwise.rules.escalation` (the rule the simulator replays):
a cascade escalates its hard rows only while the cloud looks up and the time left before the
deadline covers the round trip recently observed. Whatever the cloud does, the device gets
an answer by the deadline: when the time left runs out the local answer goes out instead, marked
`degraded`, and the cloud call is left to end in the background rather than cancelled on
the spot (cancelling an HTTP request tears its connection down, which took milliseconds
out of the very budget being kept). A `reserve` of the budget is kept for what happens
after the wait (recording the event, writing the response).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from tierwise.edge.cloud_health import CloudHealth
from tierwise.edge.link import CloudAuthError, CloudLink, CloudRefusedError
from tierwise.edge.local_batch import LocalBatcher
from tierwise.errors import LinkError, UnavailableError
from tierwise.rules.clock import Clock
from tierwise.rules.escalation import RoundTripTracker, escalate, is_hard, tie_draws
from tierwise.spec.tiers import EscalationRule, Placement
from tierwise.wire import InferResponse

if TYPE_CHECKING:
    from tierwise.package.manifest import DriftReference

# Of the deadline, kept for what follows the wait: recording the answer, writing the
# response, the LAN hop back to the device, and the scheduling jitter of a busy gateway.
# 10% left a 150 ms deadline missed by 1-4 ms about once in 5,000 answers on a loaded
# 2-core machine (tests/edge/test_acceptance.py); 15% did not.
DEFAULT_RESERVE_FRACTION = 0.15
MIN_RESERVE_S = 0.003
# Once the observed round trip exceeds the budget nothing escalates, so nothing new is
# observed and the estimate could stay stale forever. One request per interval escalates
# anyway (a probe); if it is late the device still gets the local answer by the deadline.
PROBE_INTERVAL_S = 1.0
# A cloud call still running at its deadline may go on this long in the background (its
# answer is no longer wanted, but its connection is kept); then it is cancelled.
LATE_CALL_CAP_S = 10.0

Floats2D = NDArray[np.float32]


class LocalModel(Protocol):
    """A loaded edge model: outputs and a confidence per input row."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def variant(self) -> str:
        """The package variant it runs (fp32, int8, distilled...)."""
        ...

    @property
    def input_width(self) -> int:
        """Values per input row."""
        ...

    @property
    def drift_reference(self) -> DriftReference | None:
        """The package's evaluation rows binned, for feedback (None: built without one)."""
        ...

    @property
    def row_independent(self) -> bool:
        """A row's outputs do not depend on the other rows of its call, so the rows of
        several requests may share one (edge/local_batch.py)."""
        ...

    def predict(
        self, inputs: Floats2D, rule: EscalationRule = EscalationRule.MAX_PROBABILITY
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(outputs, confidence): one output row per input row, and the escalation rule's
        score of it in [0, 1] (rules/routers; below a cascade's threshold escalates)."""
        ...


@dataclass(frozen=True)
class Route:
    """How one feature is answered, from the site's deployment."""

    placement: Placement
    deadline_s: float
    threshold: float | None = None
    rule: EscalationRule = EscalationRule.MAX_PROBABILITY
    tie_share: float = 0.0  # of rows scoring exactly the threshold, the share that is hard
    planned_escalated: float | None = None  # the plan's hard share, watched against the live one
    escalate_budget_s: float | None = None


@dataclass(frozen=True)
class Answer:
    """What the device gets back, and how it came about."""

    outputs: list[list[float]]
    answered_by: Literal["edge", "cloud"]
    model: str
    version: int
    degraded: bool  # the plan wanted the cloud for (part of) this answer and did not get it
    hard_rows: int  # rows the edge model was unsure of (cascade)
    cloud_rows: int  # rows the cloud answered
    escalated: bool  # a call to the cloud was made
    reason: str
    # What the edge model said and which rows it doubted (feedback counts them): None when
    # no local model ran
    edge_outputs: NDArray[np.float64] | None = None
    hard: NDArray[np.bool_] | None = None


class NoAnswerError(UnavailableError):
    """Neither the cloud nor a local model could answer (a cloud-placed feature, cloud away)."""


class Router:
    """Answers requests for every feature of a site; shares RTT and health across them."""

    def __init__(
        self,
        link: CloudLink,
        clock: Clock,
        tracker: RoundTripTracker,
        health: CloudHealth,
        reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
    ) -> None:
        self.link = link
        self.clock = clock
        self.tracker = tracker
        self.health = health
        self.reserve_fraction = reserve_fraction
        self._last_probe = float("-inf")
        self._late: set[asyncio.Future[InferResponse]] = set()
        self.local = LocalBatcher()  # the requests of one loop turn share a model call

    @property
    def late_calls(self) -> int:
        """Cloud calls past their deadline that are still running in the background."""
        return len(self._late)

    def close(self) -> None:
        """Cancel the cloud calls still running past their deadline (at shutdown)."""
        for call in list(self._late):
            call.cancel()

    def reserve(self, route: Route) -> float:
        return max(MIN_RESERVE_S, self.reserve_fraction * route.deadline_s)

    async def answer(
        self,
        feature: str,
        route: Route,
        model: LocalModel | None,
        inputs: Floats2D,
        started: float,
    ) -> Answer:
        """Answer `inputs` (rows) for `feature`; `started` is when the request arrived."""
        deadline = started + route.deadline_s - self.reserve(route)
        local = await self.local.predict(model, inputs, route.rule) if model is not None else None
        if route.placement is Placement.CLOUD:
            return await self._cloud_first(feature, model, local, inputs, deadline)
        if local is None or model is None:
            raise NoAnswerError(f"feature {feature!r} has no model installed at this site")
        outputs, confidence = local
        if route.placement is not Placement.CASCADE or route.threshold is None:
            return _local(model, outputs, "placed at the edge")
        draws = tie_draws(inputs) if route.tie_share > 0 else None
        hard = np.asarray(is_hard(confidence, route.threshold, route.tie_share, draws), dtype=bool)
        n_hard = int(hard.sum())
        if n_hard == 0:
            return _local(model, outputs, "confident", hard=hard)
        need = max(self.tracker.estimate(), route.escalate_budget_s or 0.0)
        remaining = self.clock.remaining(deadline)
        if not escalate(True, remaining, need, not self.health.down) and not self._probe(remaining):
            why = "cloud down" if self.health.down else "round trip over budget"
            return _local(model, outputs, why, degraded=True, hard=hard)
        if not self.health.allow():
            return _local(model, outputs, "cloud down", degraded=True, hard=hard)
        cloud = await self._ask_cloud(feature, inputs[hard], deadline)
        if isinstance(cloud, str):
            return _local(model, outputs, cloud, degraded=True, escalated=True, hard=hard)
        merged = [list(map(float, row)) for row in outputs]
        for i, row in zip(np.flatnonzero(hard), cloud[0], strict=True):
            merged[int(i)] = row
        return Answer(
            outputs=merged,
            answered_by="cloud",
            model=cloud[1],
            version=cloud[2],
            degraded=False,
            hard_rows=n_hard,
            cloud_rows=n_hard,
            escalated=True,
            reason="escalated",
            edge_outputs=outputs,
            hard=hard,
        )

    def _probe(self, remaining: float) -> bool:
        """Escalate despite the estimate, at most once per PROBE_INTERVAL_S, to re-measure."""
        now = self.clock.now()
        if self.health.down or remaining <= 0 or now - self._last_probe < PROBE_INTERVAL_S:
            return False
        self._last_probe = now
        return True

    async def _cloud_first(
        self,
        feature: str,
        model: LocalModel | None,
        local: tuple[NDArray[np.float64], NDArray[np.float64]] | None,
        inputs: Floats2D,
        deadline: float,
    ) -> Answer:
        n = len(inputs)
        remaining = self.clock.remaining(deadline)
        why = "cloud down"
        fits = escalate(True, remaining, self.tracker.estimate(), not self.health.down)
        if fits or self._probe(remaining):
            if self.health.allow():
                cloud = await self._ask_cloud(feature, inputs, deadline)
                if not isinstance(cloud, str):
                    outputs, name, version = cloud
                    mine = None if local is None else local[0]
                    return Answer(outputs, "cloud", name, version, False, 0, n, True, "cloud", mine)
                why = cloud
        else:
            why = "round trip over budget" if not self.health.down else why
        if local is None or model is None:
            raise NoAnswerError(f"feature {feature!r}: {why} and no local model to fall back on")
        return _local(model, local[0], why, degraded=True, escalated=why.startswith("cloud "))

    async def _ask_cloud(
        self, feature: str, rows: Floats2D, deadline: float
    ) -> tuple[list[list[float]], str, int] | str:
        """The cloud's (outputs, model, version), or why there is none by `deadline`."""
        sent = self.clock.now()
        call = asyncio.ensure_future(self.link.infer(feature, rows.tolist()))
        try:
            done, _ = await asyncio.wait({call}, timeout=max(self.clock.remaining(deadline), 0.0))
        except BaseException:
            call.cancel()
            self.health.failed()  # cancelled by the device going away: release the probe
            raise
        if not done:
            self.tracker.observe(self.clock.now() - sent)  # a lower bound of this round trip
            self.health.failed()
            self._let_finish(call)
            return "cloud late"
        try:
            response = call.result()
        except (LinkError, CloudRefusedError, CloudAuthError):
            self.health.failed()
            return "cloud unreachable"
        except BaseException:
            self.health.failed()
            raise
        self.tracker.observe(self.clock.now() - sent)
        self.health.succeeded()
        if len(response.outputs) != len(rows):
            return "cloud answered the wrong number of rows"
        return response.outputs, response.model, response.version

    def _let_finish(self, call: asyncio.Future[InferResponse]) -> None:
        """Keep a late call running in the background, up to LATE_CALL_CAP_S."""
        self._late.add(call)
        cap = asyncio.get_running_loop().call_later(LATE_CALL_CAP_S, call.cancel)

        def ended(done: asyncio.Future[InferResponse]) -> None:
            self._late.discard(done)
            cap.cancel()
            if not done.cancelled():
                done.exception()  # retrieved: a late failure is no news (already counted)

        call.add_done_callback(ended)


def _local(
    model: LocalModel,
    outputs: NDArray[np.float64],
    reason: str,
    degraded: bool = False,
    escalated: bool = False,
    hard: NDArray[np.bool_] | None = None,
) -> Answer:
    return Answer(
        outputs=np.asarray(outputs, dtype=np.float64).tolist(),
        answered_by="edge",
        model=model.name,
        version=model.version,
        degraded=degraded,
        hard_rows=0 if hard is None else int(hard.sum()),
        cloud_rows=0,
        escalated=escalated,
        reason=reason,
        edge_outputs=outputs,
        hard=hard,
    )
