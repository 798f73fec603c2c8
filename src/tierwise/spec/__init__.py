"""The spec: one YAML file describing tiers, sites, links, models, features and training jobs."""

from tierwise.spec.load import load_spec, parse_spec
from tierwise.spec.model import (
    Cascade,
    CascadePoint,
    CloudTier,
    DeviceTier,
    EdgeTier,
    Feature,
    Link,
    Links,
    Model,
    Site,
    Spec,
    Tiers,
    TrainingJob,
    Upstream,
    Variant,
)
from tierwise.spec.tiers import Placement, Reach, Tier

__all__ = [
    "Cascade",
    "CascadePoint",
    "CloudTier",
    "DeviceTier",
    "EdgeTier",
    "Feature",
    "Link",
    "Links",
    "Model",
    "Placement",
    "Reach",
    "Site",
    "Spec",
    "Tier",
    "Tiers",
    "TrainingJob",
    "Upstream",
    "Variant",
    "load_spec",
    "parse_spec",
]
