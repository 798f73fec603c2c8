"""What a finished run counted, handed from the engine to the summary as one value.

The engine (`engine.py`) fills counters while it replays; `summary.py` turns a `Tally` into
the figures people read. Neither needs the other: the tally is all they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tierwise.plan.candidates import Candidate
from tierwise.rules import CloudPricing
from tierwise.rules._types import FloatArray
from tierwise.simulate.histogram import Histogram
from tierwise.simulate.outages import SiteOutages
from tierwise.simulate.streams import Stream
from tierwise.simulate.telemetry import Outboxes
from tierwise.spec.model import Spec


@dataclass
class StreamCounts:
    """Counts for one (feature, site) stream."""

    hist: Histogram = field(default_factory=Histogram)
    requests: int = 0
    answered: int = 0
    late: int = 0
    escalated: int = 0
    in_time: int = 0
    wan_bytes: float = 0.0
    telemetry_bytes: float = 0.0
    cloud_busy: float = 0.0
    cloud_calls: int = 0


@dataclass(frozen=True)
class Tally:
    """One strategy's run: what it replayed, and every counter it kept."""

    # the run
    spec: Spec
    name: str  # the strategy
    duration: float  # seconds simulated
    step: float  # seconds per control step
    streams: list[Stream]
    choice: list[Candidate]  # per feature
    outages: SiteOutages
    pricing: CloudPricing
    # per stream
    per_stream: list[StreamCounts]
    # per control step (and per site for egress)
    cloud_calls: FloatArray
    cloud_work: FloatArray  # busy cloud instance-seconds
    instances: FloatArray  # cloud instances running
    egress_bytes: FloatArray
    outboxes: Outboxes
    cloud_peak_instances: int
    cloud_instance_seconds: float
    # per feature and time bin (the series), and per feature (the whole run)
    series_requests: FloatArray
    series_misses: FloatArray
    series_hist: NDArray[np.int64]  # coarse latency histogram per (feature, bin)
    feature_hist: list[Histogram]

    @property
    def n_steps(self) -> int:
        return len(self.cloud_work)

    @property
    def bins(self) -> int:
        return int(self.series_requests.shape[1])
