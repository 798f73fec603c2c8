"""How a package's variants would fare on the hardware a spec describes: `package --profiles`.

For each device class and the gateway of a spec, every variant either fits the tier's
memory (a variant needs its file size) or does not, and takes the time the tier's hardware
profile gives it (spec HardwareProfile: MACs x time per MAC, or the build machine's time
scaled). The pick per tier is what the planner does among equally cheap variants that fit:
the most accurate. A feature's deadline and accuracy floor can rule out more: `tierwise
plan` on a spec naming the package decides for real (benchmarks/variants.py shows both).

Edge-friendly: pydantic models of the spec and the manifest only.
"""

from __future__ import annotations

from dataclasses import dataclass

from tierwise.package.manifest import Manifest, VariantEntry
from tierwise.spec.model import DeviceTier, EdgeTier, Spec, Variant
from tierwise.spec.units import fmt_duration, fmt_size


@dataclass(frozen=True)
class Fit:
    variant: str
    fits: bool
    service: float | None  # seconds per call by the tier's profile; None without one
    text: str  # for the table: "1.6ms", "fits", or "1.2MB > 256.0KB"


@dataclass(frozen=True)
class TierFits:
    tier: str  # "device", "device class sensor", "edge"
    fits: list[Fit]
    pick: str | None  # the most accurate variant that fits


def profile_fits(manifest: Manifest, spec: Spec) -> list[TierFits]:
    """Every variant on every device class and on the gateway of `spec`."""
    tiers: list[tuple[str, DeviceTier | EdgeTier]] = [("device", spec.tiers.device)]
    tiers += [(f"device class {n}", t) for n, t in spec.tiers.device_classes.items()]
    tiers.append(("edge", spec.tiers.edge))
    out = []
    for label, tier in tiers:
        fits = [_fit(v, tier) for v in manifest.variants]
        fitting = [v for v, f in zip(manifest.variants, fits, strict=True) if f.fits]
        pick = max(fitting, key=lambda v: v.accuracy).name if fitting else None
        out.append(TierFits(label, fits, pick))
    return out


def _fit(entry: VariantEntry, tier: DeviceTier | EdgeTier) -> Fit:
    if entry.size_bytes > tier.memory:
        too_big = f"{fmt_size(entry.size_bytes)} > {fmt_size(tier.memory)}"
        return Fit(entry.name, False, None, too_big)
    service = None if tier.profile is None else tier.profile.service(as_spec_variant(entry))
    return Fit(entry.name, True, service, "fits" if service is None else fmt_duration(service))


def as_spec_variant(entry: VariantEntry) -> Variant:
    """The figures a spec takes from a package variant (as spec/from_package.py fills them)."""
    timing = entry.latency_at(1)
    # already in base units (bytes, seconds): constructed, not parsed from human text
    return Variant.model_construct(
        name=entry.name,
        size=float(entry.size_bytes),
        accuracy=entry.accuracy,
        macs=None if entry.macs is None else float(entry.macs),
        quantized=entry.quantization != "none",
        build_latency=None if timing is None else timing.mean_ms / 1000,
    )
