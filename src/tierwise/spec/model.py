"""The spec: tiers, sites, links, models, features and training jobs, as validated pydantic models.

All quantities are stored in base units (seconds, bytes, bits/s, dollars, events/s, FLOP,
FLOP/s, fractions) whatever the YAML said; `units.py` does the parsing. Cross-references
(a feature's model, a cascade's variants, a site's device classes) are checked by
`load.py`, which knows the YAML line of every field.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tierwise.spec.federated import FederatedTraining
from tierwise.spec.scenario import Role, ScenarioBinding
from tierwise.spec.tiers import EscalationRule, Reach, Tier
from tierwise.spec.traffic import Traffic
from tierwise.spec.units import (
    Bandwidth,
    Compute,
    Duration,
    Flops,
    Fraction,
    PricePerCall,
    PricePerGB,
    PricePerHour,
    PricePerMonth,
    Rate,
    Size,
)

Name = str
DEFAULT_MAX_UTILIZATION = 0.7  # a common capacity-planning target: keeps queues short at peak
DEFAULT_LINK_UTILIZATION = 0.8


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HardwareProfile(_Strict):
    """How long this hardware takes per inference of a variant, from the variant's own figures.

    Per call: `call_overhead` + MACs × `latency_per_mac` (`int8_latency_per_mac` for an INT8
    variant, when given); for a variant without MACs (a tree), its batch-1 time on the
    machine that built its package ÷ `speed_vs_build`. A variant with neither figure falls
    back to FLOPs ÷ the tier's compute. docs/plan.md states the model and its limits.
    """

    latency_per_mac: Duration | None = Field(
        None, description="time per multiply-accumulate, e.g. 5ns (a 200 MHz MCU, 1 MAC/cycle)"
    )
    int8_latency_per_mac: Duration | None = Field(
        None, description="the same for INT8 kernels (e.g. CMSIS-NN's SIMD: 2-4x faster)"
    )
    call_overhead: Duration = Field(0.0, description="fixed time per call (runtime, I/O)")
    speed_vs_build: float | None = Field(
        None,
        gt=0,
        description="measured: how many times faster than the machine that built the "
        "packages it runs their batch-1 inference (0.05: twenty times slower)",
    )

    @model_validator(mode="after")
    def _has_a_model(self) -> HardwareProfile:
        if self.latency_per_mac is None and self.speed_vs_build is None:
            raise ValueError("give latency_per_mac (e.g. 5ns) or speed_vs_build (e.g. 0.05)")
        return self

    def service(self, variant: Variant) -> float | None:
        """Seconds per inference of `variant` here, or None if it lacks the figures."""
        if self.latency_per_mac is not None and variant.macs is not None:
            per_mac = self.latency_per_mac
            if variant.quantized and self.int8_latency_per_mac is not None:
                per_mac = self.int8_latency_per_mac
            return self.call_overhead + variant.macs * per_mac
        if self.speed_vs_build is not None and variant.build_latency is not None:
            return self.call_overhead + variant.build_latency / self.speed_vs_build
        return None


class DeviceTier(_Strict):
    """An end device (sensor, camera, wearable): one inference at a time."""

    compute: Compute = Field(description="sustained inference throughput, e.g. 2GFLOP/s")
    memory: Size = Field(description="memory available to models (a variant needs its size)")
    cost: PricePerMonth = Field(
        0.0, description="extra cost per device and month when any feature runs on it"
    )
    max_utilization: Fraction = DEFAULT_MAX_UTILIZATION
    profile: HardwareProfile | None = Field(
        None, description="time per inference from a variant's MACs or measured time"
    )


class EdgeTier(_Strict):
    """A gateway or on-site server; a site has `gateways` of them."""

    compute: Compute
    memory: Size
    workers: int = Field(2, ge=1, description="inferences a gateway runs in parallel")
    cost: PricePerMonth = Field(0.0, description="per gateway and month, paid at sites using it")
    max_utilization: Fraction = DEFAULT_MAX_UTILIZATION
    profile: HardwareProfile | None = Field(
        None,
        description="time per inference on one worker; with it, a package's measured time "
        "is scaled by the profile instead of taken as the gateway's",
    )


class CloudTier(_Strict):
    """Autoscaled cloud inference: priced per call, or per instance-hour."""

    compute: Compute = Field(description="per instance")
    memory: Size = Field(description="per instance")
    price_per_call: PricePerCall | None = None
    price_per_hour: PricePerHour | None = Field(
        None, description="per instance; autoscaling pays for busy time / max_utilization"
    )
    min_instances: int = Field(0, ge=0, description="instances kept running (hourly pricing)")
    max_utilization: Fraction = DEFAULT_MAX_UTILIZATION
    scale_up_delay: Duration = Field(60.0, description="time to add an instance (simulation)")

    @model_validator(mode="after")
    def _one_price(self) -> CloudTier:
        if self.price_per_call is None and self.price_per_hour is None:
            raise ValueError("give price_per_call (e.g. $0.20/1k) or price_per_hour (e.g. $0.50/h)")
        return self


class Tiers(_Strict):
    device: DeviceTier
    edge: EdgeTier
    cloud: CloudTier
    device_classes: dict[Name, DeviceTier] = Field(
        default_factory=dict, description="further device kinds; 'device' names the default one"
    )

    def device_class(self, name: str) -> DeviceTier:
        return self.device if name == "device" else self.device_classes[name]


class Link(_Strict):
    """A network hop: round-trip time distribution, bandwidth, outages and price."""

    rtt_p50: Duration
    rtt_p99: Duration
    bandwidth: Bandwidth = Field(description="speed of one link (uplink for edge_cloud)")
    per: Literal["site", "gateway"] = Field(
        "site", description="site: one link a site shares; gateway: each gateway has its own"
    )
    availability: Fraction = 1.0
    mean_outage: Duration = Field(0.0, description="mean length of an outage")
    loss: Fraction = Field(0.0, description="packet loss rate; a loss costs a TCP retransmit")
    egress: PricePerGB = Field(0.0, description="price per GB crossing the link, both ways")
    max_utilization: Fraction = DEFAULT_LINK_UTILIZATION

    @model_validator(mode="after")
    def _consistent(self) -> Link:
        if self.rtt_p99 < self.rtt_p50:
            raise ValueError("rtt_p99 must be at least rtt_p50")
        if self.rtt_p50 <= 0:
            raise ValueError("rtt_p50 must be positive")
        if self.bandwidth <= 0:
            raise ValueError("bandwidth must be positive")
        if self.availability < 1.0 and self.mean_outage <= 0:
            raise ValueError("availability below 100% needs mean_outage (e.g. 5min)")
        if self.availability <= 0:
            raise ValueError("availability must be above 0%")
        return self


class Links(_Strict):
    device_edge: Link
    edge_cloud: Link


class Site(_Strict):
    name: Name
    devices: int | dict[Name, int] = Field(
        description="device count, or counts per device class {camera: 40}"
    )
    gateways: int = Field(1, ge=1)
    edge_cloud: Link | None = Field(None, description="this site's own WAN, if not the default")

    @field_validator("devices")
    @classmethod
    def _non_negative(cls, v: int | dict[str, int]) -> int | dict[str, int]:
        counts = [v] if isinstance(v, int) else list(v.values())
        if any(c < 0 for c in counts):
            raise ValueError("device counts must be 0 or more")
        return v

    def device_counts(self) -> dict[str, int]:
        return dict(self.counts)

    @cached_property
    def counts(self) -> dict[str, int]:
        """Devices per class (read-only: use device_counts() for a copy)."""
        return {"device": self.devices} if isinstance(self.devices, int) else dict(self.devices)


class Variant(_Strict):
    """One build of a model: full precision, INT8, distilled..."""

    name: Name
    flops: Flops | None = Field(None, description="per inference; used where latency is not given")
    latency: dict[Tier, Duration] = Field(
        default_factory=dict, description="measured time per inference on a tier"
    )
    size: Size = 0.0
    accuracy: Fraction | None = None
    package: str | None = Field(
        None, description="path to a package manifest.json whose measured figures fill this in"
    )
    macs: float | None = Field(
        None, ge=0, description="multiply-accumulates per inference (hardware profiles scale it)"
    )
    quantized: bool = Field(False, description="INT8: a profile's int8_latency_per_mac applies")
    build_latency: Duration | None = Field(
        None,
        description="batch-1 time on the machine that built its package (a profile's "
        "speed_vs_build scales it)",
    )

    @model_validator(mode="after")
    def _has_cost(self) -> Variant:
        if (
            self.flops is None
            and not self.latency
            and self.package is None
            and self.macs is None
            and self.build_latency is None
        ):
            raise ValueError("give flops (e.g. 8.7GFLOP), macs or a latency per tier")
        return self


class CascadePoint(_Strict):
    escalated: Fraction
    accuracy: Fraction


class Cascade(_Strict):
    """Edge answers, hard cases escalate to the cloud: the curve of escalated share vs accuracy."""

    edge: Name = Field(description="variant answering at the edge")
    cloud: Name = Field(description="variant answering escalated cases in the cloud")
    rule: EscalationRule | None = Field(
        None,
        description="the escalation rule the curve is for (tierwise.rules.routers); with a "
        "package, which of its curves to take (default: the one it found best)",
    )
    max_escalated: Fraction | None = Field(
        None,
        description="escalation budget: the most the cascade may send to the cloud, as a share "
        "of requests (the plan keeps to curve points within it)",
    )
    max_escalation_rate: Rate | None = Field(
        None,
        description="escalation budget in requests/s the cloud can take, over every site of a "
        "feature using this cascade (e.g. 50/s)",
    )
    curve: list[CascadePoint] = Field(min_length=1)

    @field_validator("curve")
    @classmethod
    def _sorted(cls, v: list[CascadePoint]) -> list[CascadePoint]:
        return sorted(v, key=lambda p: p.escalated)


class Model(_Strict):
    name: Name
    variants: list[Variant] = Field(min_length=1)
    cascade: Cascade | None = None
    scenario: ScenarioBinding | None = Field(
        None, description="the scenario whose models `tierwise up` runs for it (spec/scenario.py)"
    )

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def scenario_role(self, variant: str) -> Role:
        """Whether `variant` is played by its scenario's edge or cloud model (spec/scenario.py).

        The scenario's `cloud:` list decides; without one, the cascade's cloud variant is
        played by the cloud model and every other variant by the edge model.
        """
        listed = self.scenario.cloud if self.scenario is not None else None
        if listed is not None:
            return "cloud" if variant in listed else "edge"
        if self.cascade is not None and variant == self.cascade.cloud:
            return "cloud"
        return "edge"


class Upstream(_Strict):
    """What a locally-run feature still sends to the cloud: events, summaries, clips."""

    rate: Rate = Field(description="per device")
    size: Size


class Feature(_Strict):
    """An AI feature: what runs, how often, how fast it must answer, where its data may go."""

    name: Name
    model: Name
    variants: list[Name] | None = Field(None, description="allowed variants (default: all)")
    rate: Rate = Field(description="requests per device")
    peak_factor: float = Field(1.0, ge=1.0, description="peak rate / mean rate")
    payload: Size = Field(description="input size per request")
    result: Size = Field(100.0, description="answer size per request")
    protocol: Literal["http", "mqtt"] = Field(
        "http",
        description="how devices send requests; mqtt adds its framing to the WAN bytes when "
        "the feature runs in the cloud (devices publish to a broker there)",
    )
    upstream: Upstream | None = Field(None, description="sent upstream when it runs locally")
    deadline: Duration
    percentile: float = Field(99.0, gt=0, lt=100, description="the deadline holds at this pct")
    raw_data_may_reach: Reach = Reach.CLOUD
    offline: bool = Field(False, description="must keep working while the WAN is down")
    min_accuracy: Fraction | None = None
    scope: Literal["site", "global"] = Field(
        "site", description="global: needs data from every site, so only the cloud can run it"
    )
    device_class: Name = "device"
    sites: list[Name] | None = Field(None, description="sites running it (default: all)")

    @field_validator("rate")
    @classmethod
    def _positive_rate(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("rate must be positive, like 20/s")
        return v

    @field_validator("deadline")
    @classmethod
    def _positive_deadline(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("deadline must be positive, like 20ms")
        return v


class Strategy(StrEnum):
    FEDAVG = "fedavg"
    FEDPROX = "fedprox"
    TRIMMED_MEAN = "trimmed_mean"
    MEDIAN = "median"
    KRUM = "krum"


class TrainingJob(_Strict):
    """Retraining a model from data that lives at the sites."""

    name: Name
    model: Name
    data_per_site: Size = Field(description="new training data per site per retrain")
    raw_data_may_reach: Reach = Reach.CLOUD
    cadence: Duration = Field(description="time between retrains, e.g. 7d")
    rounds: int = Field(50, ge=1, description="federated rounds per retrain")
    sites: list[Name] | None = None
    strategy: Strategy = Strategy.FEDAVG
    federated: FederatedTraining | None = Field(
        None, description="how `tierwise federate` runs it (data, privacy, compression)"
    )


class Spec(_Strict):
    """The whole continuum: what runs where is for `tierwise plan` to decide."""

    name: Name
    description: str = ""
    tiers: Tiers
    sites: list[Site] = Field(min_length=1)
    links: Links
    models: list[Model] = Field(min_length=1)
    features: list[Feature] = Field(default_factory=list)
    training: list[TrainingJob] = Field(default_factory=list)
    traffic: Traffic | None = Field(
        None, description="daily pattern, spikes and scheduled outages (simulate)"
    )

    @cached_property
    def _models_by_name(self) -> dict[str, Model]:
        return {m.name: m for m in self.models}

    @cached_property
    def site_index(self) -> dict[str, int]:
        """Position of each site by name (sites are referred to by index in plans)."""
        return {s.name: i for i, s in enumerate(self.sites)}

    def model(self, name: str) -> Model:
        return self._models_by_name[name]

    def site(self, name: str) -> Site:
        return self.sites[self.site_index[name]]

    def feature_sites(self, feature: Feature | TrainingJob) -> list[Site]:
        if feature.sites is None:
            return list(self.sites)
        return [self.site(n) for n in feature.sites]

    def wan(self, site: Site) -> Link:
        return site.edge_cloud or self.links.edge_cloud

    def capacity(self, link: Link, site: Site) -> float:
        """Bits per second a site can push over a link kind, all its gateways together."""
        return link.bandwidth * (site.gateways if link.per == "gateway" else 1)
