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
    Reach,
    Site,
    Spec,
    Tier,
    Tiers,
    TrainingJob,
    Upstream,
    Variant,
)

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
