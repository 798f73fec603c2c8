"""What runs where in a `tierwise up` run: per feature, its placement, packages and traffic.

The plan (or the cloud-only strategy, for comparisons) says where each feature answers and
with which spec variant; the model's scenario binding (`spec/scenario.py`) says which real
model plays that variant. From both this module derives, per feature:

- `device`: the devices run the package themselves (the device simulator loads it);
- `edge` / `cascade`: the site's edge agent runs the local package; a cascade escalates its
  least confident rows to the cloud package;
- `cloud`: the edge agent forwards to the cloud package and falls back to the scenario's
  edge model when the cloud is away (what the agent does for a cloud-placed feature);
- cloud-only strategy (`direct`): devices call the cloud themselves over the WAN — no gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tierwise.errors import UsageError
from tierwise.plan.evaluate import FeatureOutcome, Outcome
from tierwise.spec.from_package import REFERENCE
from tierwise.spec.model import Feature, Model, Spec
from tierwise.spec.scenario import Role
from tierwise.spec.tiers import EscalationRule

Mode = Literal["device", "edge", "cascade", "cloud", "direct"]
Strategy = Literal["plan", "cloud-only"]
STRATEGIES: tuple[Strategy, ...] = ("plan", "cloud-only")
Protocol = Literal["http", "mqtt"]  # how devices reach their site's agent
PROTOCOLS: tuple[Protocol, ...] = ("http", "mqtt")


@dataclass(frozen=True)
class SiteLoad:
    """One site's share of a feature: its devices and their mean request rate in all."""

    site: str
    devices: int
    rate: float  # requests/s, all devices of the site, before scaling


@dataclass(frozen=True)
class FeatureRun:
    """One feature as this run runs it."""

    feature: Feature
    outcome: FeatureOutcome  # the strategy's predicted figures (spec as written)
    mode: Mode
    scenario: str  # canonical scenario name (digits, vibration, ...)
    local_role: Role | None  # which scenario model answers at the device or edge
    cloud_role: Role | None  # which scenario model answers in the cloud
    escalated: float  # planned share of requests sent to the cloud
    sites: tuple[SiteLoad, ...]
    rule: EscalationRule | None = None  # a cascade's rule as the spec names it (else the best)
    # The package variant the plan chose for the local model (`package_variant`); the
    # deployment runs it if the scenario's package has it, else the package's smallest.
    variant: str | None = None

    @property
    def name(self) -> str:
        return self.feature.name

    @property
    def total_rate(self) -> float:
        return sum(s.rate for s in self.sites)

    @property
    def uses_agent(self) -> bool:
        return self.mode in ("edge", "cascade", "cloud")


def package_name(scenario: str, role: Role) -> str:
    """The package a scenario model is published as (see scenarios/build.py)."""
    return scenario if role == "edge" else f"{scenario}-cloud"


def layout(spec: Spec, outcome: Outcome, strategy: Strategy) -> list[FeatureRun]:
    """Every feature of `spec` as `strategy` (whose figures are `outcome`) places it."""
    from tierwise.scenarios import get_scenario

    runs = []
    for i, (feature, predicted) in enumerate(zip(spec.features, outcome.features, strict=True)):
        model = spec.model(feature.model)
        if model.scenario is None:
            raise UsageError(
                f"models[{spec.models.index(model)}] {model.name}: tierwise up needs to know "
                f"which real model plays it; add `scenario: NAME` (see `tierwise scenario "
                f"list`), used by features[{i}] {feature.name}"
            )
        try:
            scenario = get_scenario(model.scenario.name).name
        except UsageError as exc:
            raise UsageError(f"models[{spec.models.index(model)}].scenario: {exc}") from None
        runs.append(_feature_run(spec, model, feature, predicted, scenario, strategy))
    return runs


def _feature_run(
    spec: Spec,
    model: Model,
    feature: Feature,
    predicted: FeatureOutcome,
    scenario: str,
    strategy: Strategy,
) -> FeatureRun:
    assert model.scenario is not None
    role = model.scenario_role(predicted.variant)
    local: Role | None
    cloud: Role | None
    if strategy == "cloud-only":
        mode: Mode = "direct"
        local, cloud, escalated = None, role, 1.0
    elif predicted.placement == "cascade":
        assert model.cascade is not None
        mode, local, escalated = "cascade", role, predicted.escalation_rate
        cloud = model.scenario_role(model.cascade.cloud)
    elif predicted.placement == "cloud":
        # the agent falls back on the scenario's edge model when the cloud is away
        mode, local, cloud, escalated = "cloud", "edge", role, 1.0
    elif predicted.placement == "device":
        mode, local, cloud, escalated = "device", role, None, 0.0
    else:
        mode, local, cloud, escalated = "edge", role, None, 0.0
    loads = tuple(
        SiteLoad(site.name, n, feature.rate * n)
        for site in spec.feature_sites(feature)
        if (n := site.counts.get(feature.device_class, 0)) > 0
    )
    rule = model.cascade.rule if model.cascade is not None and mode == "cascade" else None
    # A cloud-placed feature's local model is only the fallback: no plan choice to carry.
    variant = package_variant(model, predicted.variant) if mode in PLANNED_LOCALLY else None
    return FeatureRun(
        feature, predicted, mode, scenario, local, cloud, escalated, loads, rule, variant
    )


PLANNED_LOCALLY: tuple[Mode, ...] = ("device", "edge", "cascade")


def package_variant(model: Model, spec_variant: str) -> str:
    """The package variant a spec variant stands for: the one its `package: PATH#name` picks,
    else the spec variant's own name (as `spec/from_package.py` reads it)."""
    for variant in model.variants:
        if variant.name == spec_variant and variant.package is not None:
            picked = variant.package.partition("#")[2]
            if picked and picked != REFERENCE:
                return picked
    return spec_variant


def scenarios_needed(runs: list[FeatureRun]) -> list[str]:
    return sorted({r.scenario for r in runs})


def site_names(spec: Spec, runs: list[FeatureRun]) -> list[str]:
    """Sites with at least one device of a feature, in spec order."""
    used = {load.site for r in runs for load in r.sites}
    return [s.name for s in spec.sites if s.name in used]
