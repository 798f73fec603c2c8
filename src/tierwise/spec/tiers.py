"""Where things run: the tiers of the continuum, how far raw data reaches, a feature's placement,
and the rule by which a cascade sends an answer up a tier.

The one vocabulary every part shares: the spec names tiers and reaches, the planner and the
simulator place features, the edge agent and the cloud exchange placements over the wire.
This module imports nothing but the standard library, so the edge imports it cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Tier(StrEnum):
    """A level of the continuum a model can run on."""

    DEVICE = "device"
    EDGE = "edge"
    CLOUD = "cloud"


class Reach(StrEnum):
    """How far raw inputs may travel: the device itself, the site (edge), or the cloud."""

    DEVICE = "device"
    SITE = "site"
    CLOUD = "cloud"

    @property
    def rank(self) -> int:
        return {Reach.DEVICE: 0, Reach.SITE: 1, Reach.CLOUD: 2}[self]


class Placement(StrEnum):
    """Where a feature answers: on the device, at the edge, in the cloud, or edge-then-cloud."""

    DEVICE = "device"
    EDGE = "edge"
    CLOUD = "cloud"
    CASCADE = "cascade"  # answer at the edge, escalate hard cases to the cloud

    @property
    def local_tier(self) -> Tier:
        """The tier that answers first (the cloud for CLOUD)."""
        return _LOCAL_TIER[self]

    @property
    def works_offline(self) -> bool:
        """Keeps answering while the WAN is down (a cascade answers locally, degraded)."""
        return self is not Placement.CLOUD

    @property
    def raw_data_reaches(self) -> Reach:
        return _REACHES[self]


_LOCAL_TIER = {
    Placement.DEVICE: Tier.DEVICE,
    Placement.EDGE: Tier.EDGE,
    Placement.CLOUD: Tier.CLOUD,
    Placement.CASCADE: Tier.EDGE,
}
_REACHES = {
    Placement.DEVICE: Reach.DEVICE,
    Placement.EDGE: Reach.SITE,
    Placement.CLOUD: Reach.CLOUD,
    Placement.CASCADE: Reach.CLOUD,
}


class EscalationRule(StrEnum):
    """How a cascade decides an edge answer is too unsure to keep (tierwise.rules.routers)."""

    MAX_PROBABILITY = "max_probability"
    MARGIN = "margin"
    ENTROPY = "entropy"
    TEMPERATURE = "temperature"
    LEARNED = "learned"
    PROTOTYPES = "prototypes"


# Why a package built from valid data may lack a rule: the fitted ones need more of it.
_WHY_ABSENT = {
    EscalationRule.LEARNED: "a learned router needs enough wrong edge answers in the build's data",
    EscalationRule.PROTOTYPES: "the prototypes rule needs the router rows' inputs (router_x) "
    "in the build's data",
}


def no_curve_message(rule: str, known: Iterable[str]) -> str:
    """What to say when a spec names a rule its package has no curve for."""
    why = next((f" ({text})" for name, text in _WHY_ABSENT.items() if name.value == rule), "")
    return f"the package has no {rule} curve{why}; it has {', '.join(known)}"
