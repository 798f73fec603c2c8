"""The JSON bodies tierwise speaks over HTTP: edge agent ↔ cloud (`/v1`), and device → agent.

Both sides import these models, so a field renamed here is renamed on both ends at once.
This module depends on pydantic and `spec/tiers.py` (Placement) only: the edge agent
(`tierwise[edge]`) imports it on a gateway. docs/api.md describes every endpoint that
carries these bodies.

Limits (`MAX_*`) are part of the contract: the cloud answers 422 to a body beyond them, so
the edge sizes its batches below them. A refused request is answered `{"detail": ...}` on
both sides (`tierwise.http_refusals`); `refusal_detail` is how a client reads it.
"""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from tierwise.spec.tiers import EscalationRule, Placement, Reach

API_PREFIX = "/v1"
ARCHIVE_MEDIA_TYPE = "application/gzip"  # a package travels as tar.gz, to and from the cloud

MAX_TELEMETRY_BATCH = 10_000  # events per POST; an edge flushing a long outage sends several
FEEDBACK_KIND = "feedback.summary"  # a site's feedback event (edge/feedback.py, cloud/drift.py)
MAX_INFER_BATCH = 1_024  # input rows per cloud inference call
MAX_INPUT_WIDTH = 65_536  # floats per input row (a 256x256 image)
MAX_SEQ = 2**63 - 1  # seq is stored as a signed 64-bit integer
MAX_VERSION = 2**31 - 1  # package versions are stored as signed 32-bit integers
QUOTED_CHARS = 300  # of a refusal quoted in an error message: the reason, not a whole page

# Names of sites, features, streams and packages: short, printable, safe in a URL path.
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Version = Annotated[int, Field(ge=1, le=MAX_VERSION)]
# What happened, as a dotted identifier: "answer", "agent.started", "package.rolled_back".
Kind = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")]


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here keeps both databases alike.
    if "\x00" in text:
        raise ValueError("must not contain NUL (\\x00) characters")
    return text


Text = Annotated[str, AfterValidator(_no_nul)]


def _strict_json(value: Any) -> Any:
    """Refuse what JSON cannot carry (NaN, Infinity: Python's json lets them in) and NUL."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must not contain NaN or Infinity")
        if isinstance(item, str):
            _no_nul(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_strict_json)]


class _Wire(BaseModel):
    """Strict on input: an unknown field is a client bug worth a 422, not silence."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def refusal_detail(body: str) -> str:
    """Why the other side refused a request: its answer's `detail`, else the answer's start.

    `body` is the text of a 4xx or 5xx answer; a proxy in between may have answered HTML or
    plain text instead of JSON, so anything is accepted and at most a few lines are kept.
    """
    try:
        answer = json.loads(body)
    except ValueError:
        return body[:QUOTED_CHARS]
    if isinstance(answer, dict) and "detail" in answer:
        return str(answer["detail"])[:QUOTED_CHARS]
    return body[:QUOTED_CHARS]


# --- telemetry ------------------------------------------------------------------------------


class TelemetryEvent(_Wire):
    """One event from a site: its place in a stream (`seq`), when it happened and what."""

    stream: Name
    seq: Count = Field(description="position in the stream; (site, stream, seq) is unique")
    ts: float = Field(description="Unix time (seconds) when the event happened at the edge")
    kind: Kind
    body: JsonObject = Field(default_factory=dict)


class TelemetryBatch(_Wire):
    """What an edge uploads in one POST; retrying the same batch is safe."""

    events: list[TelemetryEvent] = Field(max_length=MAX_TELEMETRY_BATCH)


class TelemetryAck(_Wire):
    """How many events were new, how many the cloud already had, and the top seq per stream."""

    accepted: int
    duplicates: int
    high_water: dict[str, int] = Field(
        description="highest seq the cloud holds for each stream named in the batch"
    )


class TelemetryPage(_Wire):
    """Events of one stream in seq order; ask again with after=next_after for more."""

    site: str
    stream: str
    events: list[TelemetryEvent]
    next_after: int | None = Field(description="seq to pass as `after` for the next page")


# --- inference ------------------------------------------------------------------------------


class InferRequest(_Wire):
    """A batch of input rows for a feature's model (each row a flat list of floats)."""

    inputs: list[Annotated[list[float], Field(min_length=1, max_length=MAX_INPUT_WIDTH)]] = Field(
        min_length=1, max_length=MAX_INFER_BATCH
    )


class InferResponse(_Wire):
    """One output row per input row, and which model (package name and version) answered."""

    outputs: list[list[float]]
    model: str
    version: int


# --- the device API (devices → edge agent) --------------------------------------------------


class PredictRequest(InferRequest):
    """Rows to answer; optional labels (feedback for accuracy) and a stream (e.g. a device)."""

    labels: list[int] | None = Field(None, description="true class per row, when known")
    stream: Name | None = Field(None, description="telemetry stream (default: the feature)")


class PredictResponse(BaseModel):
    """The answer, who gave it, and where it is recorded."""

    # A plain BaseModel, not _Wire: the agent builds it and never parses one, and a model's
    # non-finite output is sent as null rather than failing the answer.
    outputs: list[list[float]]
    answered_by: Literal["edge", "cloud"]
    model: str
    version: int
    degraded: bool
    latency_ms: float
    event_seq: int | None = Field(description="seq in the outbox stream; null if the cap refused")
    stream: str
    reason: str


# --- deployments ----------------------------------------------------------------------------


class FeatureDeployment(_Wire):
    """What one site runs for one feature: the package to fetch and how to route requests."""

    package: Name
    version: Version
    sha256: Sha256 = Field(description="sha256 of the package archive the edge downloads")
    variant: Name | None = Field(
        None, description="the package variant to run (default: its smallest file)"
    )
    placement: Placement
    threshold: float | None = Field(
        None, description="cascade: escalate when the escalation rule's score is below this"
    )
    rule: EscalationRule = Field(
        EscalationRule.MAX_PROBABILITY, description="cascade: the rule the threshold applies to"
    )
    tie_share: float = Field(
        0.0, description="cascade: of the rows scoring exactly the threshold, the share escalated"
    )
    planned_escalated: float | None = Field(
        None, description="cascade: the share of rows the plan expects to be hard (watched)"
    )
    deadline_ms: float = Field(gt=0)
    escalate_budget_ms: float | None = Field(
        None, ge=0, description="cascade: escalate only if this much of the deadline is left"
    )
    raw_data_may_reach: Reach = Field(
        Reach.SITE,
        description="how far the feature's raw inputs may travel (the spec's): only `cloud` "
        "lets the site's feedback carry raw hard examples (edge/feedback.py)",
    )

    # No return annotation on purpose: pydantic then documents the model's own fields as the
    # serialized schema (with `-> Any` the OpenAPI schema of a deployment would be empty).
    @model_serializer(mode="wrap")
    def _without_default_variant(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # Left out when unset: a deployment without variants (or raw feedback) reads, and
        # hashes to an etag, exactly as before those existed, so agents that forbid unknown
        # fields still parse it.
        data = handler(self)
        if isinstance(data, dict):
            if self.variant is None:
                data.pop("variant", None)
            if self.raw_data_may_reach is Reach.SITE:
                data.pop("raw_data_may_reach", None)
        return data


class Deployment(_Wire):
    """Everything one site should run; `etag` changes whenever any of it changes."""

    site: str
    features: dict[str, FeatureDeployment]
    etag: str


class FeatureAssignment(_Wire):
    """Admin: run this package version for a feature at a site, routed this way."""

    package: Name
    version: Version
    variant: Name | None = Field(
        None, description="a variant of the package's manifest (default: its smallest file)"
    )
    placement: Placement
    threshold: float | None = Field(None, ge=0, le=1)
    rule: EscalationRule = EscalationRule.MAX_PROBABILITY
    tie_share: float = Field(0.0, ge=0, lt=1)
    planned_escalated: float | None = Field(None, ge=0, le=1)
    deadline_ms: float = Field(gt=0)
    escalate_budget_ms: float | None = Field(None, ge=0)
    raw_data_may_reach: Reach = Field(
        Reach.SITE,
        description="how far the feature's raw inputs may travel (the spec's): only `cloud` "
        "lets the site's feedback carry raw hard examples (edge/feedback.py)",
    )


class CloudModelAssignment(_Wire):
    """Admin: the package version that answers `/v1/infer/{feature}` in the cloud."""

    package: Name
    version: Version


# --- site status ----------------------------------------------------------------------------


class FeatureCounters(_Wire):
    """Counts for one feature and version at one site, cumulative since `since`."""

    requests: Count = 0
    errors: Count = 0
    escalations: Count = 0
    p50_ms: NonNegative | None = None
    p99_ms: NonNegative | None = None
    feedback_correct: Count = Field(0, description="labelled requests the answer got right")
    feedback_total: Count = Field(0, description="requests that came with a label")


class FeatureStatus(_Wire):
    """What a site runs for a feature, whether it passed its health probe, and how it does.

    Counters are cumulative from `since` (when the agent started counting for this version,
    e.g. its start time). The cloud keeps the latest report per (site, feature, version,
    since), so resending a report is harmless and a restarted agent adds a new period.
    """

    feature: Name
    package: Name
    version: Version
    healthy: bool = Field(description="the package loaded and passed its health probe")
    detail: Annotated[Text, Field(max_length=1_000)] = ""
    since: float = Field(description="Unix time the counters started from")
    counters: FeatureCounters = Field(default_factory=FeatureCounters)


class SiteStatus(_Wire):
    """A site's periodic report: one entry per feature and installed (or failed) version."""

    features: list[FeatureStatus] = Field(max_length=1_000)


class StatusAck(_Wire):
    """The deployment etag the cloud now wants; a different one means pull again."""

    etag: str


# --- registry and rollouts (operator side) --------------------------------------------------


class PackageInfo(_Wire):
    """A package held by the registry."""

    name: str
    version: int
    sha256: str
    size: int
    uploaded_at: float


class RolloutThresholds(_Wire):
    """When a canary counts as regressed; a threshold left out is not checked."""

    max_error_rate: float | None = Field(None, ge=0, le=1)
    min_accuracy: float | None = Field(None, ge=0, le=1, description="on labelled feedback")
    max_p99_ms: float | None = Field(None, gt=0)


class RolloutRequest(_Wire):
    """Admin: roll `package` out at `version`, canary sites first, the rest once they bake."""

    package: Name
    version: Version
    canary_sites: list[Name] = Field(min_length=1, max_length=1_000)
    sites: list[Name] | None = Field(
        None,
        max_length=100_000,
        description="the sites the rollout is for (canaries included); default: every site "
        "running the package. A model retrained for drifted sites goes to those alone.",
    )
    features: list[Name] | None = Field(
        None,
        max_length=10_000,
        description="the features the rollout changes; default: every feature running the "
        "package (a model retrained for one feature leaves the others on their version)",
    )
    thresholds: RolloutThresholds = Field(default_factory=RolloutThresholds)
    min_canary_requests: int = Field(
        100, ge=0, le=10**9, description="requests the canaries must serve before promotion"
    )
    min_canary_feedback: int = Field(
        20, ge=0, le=10**9, description="labelled answers needed to judge min_accuracy"
    )
    bake_seconds: float = Field(
        60.0, ge=0, le=30 * 86_400, description="time the canaries must run before promotion"
    )


class RolloutState(StrEnum):
    """canary → promoting → done, or canary → rolled_back."""

    CANARY = "canary"
    PROMOTING = "promoting"
    DONE = "done"
    ROLLED_BACK = "rolled_back"


class Rollout(_Wire):
    """A rollout as the cloud sees it now, with the reason for its last state change."""

    id: int
    package: str
    version: int
    canary_sites: list[str]
    other_sites: list[str]
    thresholds: RolloutThresholds
    min_canary_requests: int
    min_canary_feedback: int
    bake_seconds: float
    state: RolloutState
    reason: str
    created_at: float
    updated_at: float
