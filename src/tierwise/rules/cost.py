"""What running AI costs, by the spec's pricing: cloud calls, instance time, bytes, fixed fees.

Cloud inference is priced per call, or per instance-hour of an autoscaled fleet that keeps
its instances `max_utilization` busy: it pays for busy time / max_utilization (the spec's
documented pricing), plus `min_instances` kept running whatever the load. The planner's
monthly figures, the simulator's per-window bills and the cloud's own meter all come from
here, so they cannot disagree on a formula.

    pricing = CloudPricing(price_per_call=None, price_per_hour=0.714, max_utilization=0.7)
    pricing.compute(calls=n, busy_seconds=b, seconds=3600.0)   # $ for that hour
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tierwise.rules._types import Floats, scalar_or_array

SECONDS_PER_MONTH = 30.44 * 24 * 3600  # the mean Gregorian month, as the spec's units use


@dataclass(frozen=True)
class CloudPricing:
    """The cloud tier's prices: per call, or per instance-hour (one of them is set)."""

    price_per_call: float | None
    price_per_hour: float | None
    max_utilization: float = 0.7
    min_instances: int = 0

    @staticmethod
    def of(tier: Any) -> CloudPricing:
        """From anything with the spec's `CloudTier` fields."""
        return CloudPricing(
            price_per_call=tier.price_per_call,
            price_per_hour=tier.price_per_hour,
            max_utilization=tier.max_utilization,
            min_instances=tier.min_instances,
        )

    def usage(self, calls: Floats, busy_seconds: Floats) -> Any:
        """$ for `calls` answered using `busy_seconds` of instance time (no fixed part)."""
        if self.price_per_call is not None:
            return scalar_or_array(np.multiply(calls, self.price_per_call), calls)
        hours = np.divide(busy_seconds, self.max_utilization * 3600.0)
        return scalar_or_array(hours * (self.price_per_hour or 0.0), busy_seconds)

    def fixed(self, seconds: Floats) -> Any:
        """$ for the instances kept running over `seconds`, load or not."""
        rate = self.min_instances * (self.price_per_hour or 0.0) / 3600.0
        return scalar_or_array(np.multiply(seconds, rate), seconds)

    def compute(self, calls: Floats, busy_seconds: Floats, seconds: Floats) -> Any:
        """$ of cloud compute over a period of `seconds`: usage plus the fixed part."""
        return self.usage(calls, busy_seconds) + self.fixed(seconds)


def egress_cost(n_bytes: Floats, price_per_byte: Floats) -> Any:
    """$ for bytes crossing a priced link (the spec stores $/GB as $ per byte)."""
    return scalar_or_array(np.multiply(n_bytes, price_per_byte), n_bytes, price_per_byte)


def prorated(monthly: Floats, seconds: Floats) -> Any:
    """The share of a monthly fee (gateways, device upgrades) that `seconds` use up."""
    return scalar_or_array(np.multiply(monthly, np.divide(seconds, SECONDS_PER_MONTH)), monthly)
