"""Fill spec variants with figures measured by `tierwise package` instead of hand-typed ones.

A variant may say `package: path/to/manifest.json` (relative to the spec file; a package
directory works too), optionally with `#variant` to pick one of the package's variants
(default: the spec variant's own name) or `#reference` for the cloud model the package's
cascade was calibrated against. From the manifest it then takes:

- `size`: the variant file's size on disk;
- `accuracy`: measured on the package's held-out evaluation data;
- `latency.edge`: ONNX Runtime mean time per call at batch 1, one thread, on the machine that
  built the package (build it on, or like, your gateway) — unless the gateway has a hardware
  `profile`, which then times every variant;
- `build_latency` (that same figure), `macs` and `quantized`: what a hardware profile of a
  device class or gateway scales (spec/model.py `HardwareProfile`);
- the model's `cascade.curve`, when the cascade's edge variant comes from a package with a
  calibration curve: (escalated, joint accuracy) points.

`#reference` gives accuracy (and size) only: the cloud model's speed on the cloud is not
measured by a package, so such a variant still needs `flops` or a cloud `latency`.

A figure the package provides may not also be typed by hand (one source of truth). This
works on the YAML data before validation and reads manifests with json + pydantic only:
the spec does not depend on `tierwise.package`, nor check signatures (planning only reads
numbers; `tierwise verify` is for trusting them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tierwise.spec.refs import Loc
from tierwise.spec.tiers import no_curve_message

MANIFEST = "manifest.json"
REFERENCE = "reference"
LATENCY_BATCH = 1


class _View(BaseModel):
    """The part of a manifest the spec reads; anything else in it is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class _Latency(_View):
    batch: int
    mean_ms: float


class _Variant(_View):
    name: str
    size_bytes: int
    accuracy: float
    latency: list[_Latency] = []
    quantization: str = "none"
    macs: int | None = None


class _Point(_View):
    escalated: float
    accuracy: float


class _Reference(_View):
    accuracy: float
    size_bytes: int


class _RuleCurve(_View):
    curve: list[_Point]


class _Cascade(_View):
    reference: _Reference
    rules: dict[str, dict[str, _RuleCurve]]
    best_rule: dict[str, str]


@dataclass(frozen=True)
class _Curves:
    """A variant's cascade curve per escalation rule, and the rule its package found best."""

    by_rule: dict[str, list[_Point]]
    best: str


class _Manifest(_View):
    name: str
    version: int
    variants: list[_Variant]
    cascade: _Cascade | None = None


def fill_from_packages(data: Any, base_dir: Path) -> list[tuple[Loc, str]]:
    """Fill, in place, every variant of `data` (parsed YAML) that names a package.

    Returns the problems as (location, message) pairs, like `check_refs`; nothing is raised.
    """
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        return []
    tiers = data.get("tiers")
    edge = tiers.get("edge") if isinstance(tiers, dict) else None
    # a gateway with a hardware profile times variants by it, not by the build machine
    edge_profiled = isinstance(edge, dict) and edge.get("profile") is not None
    problems: list[tuple[Loc, str]] = []
    for i, model in enumerate(data["models"]):
        if isinstance(model, dict) and isinstance(model.get("variants"), list):
            problems.extend(_fill_model(model, ("models", i), base_dir, edge_profiled))
    return problems


def _fill_model(
    model: dict[str, Any], loc: Loc, base_dir: Path, edge_profiled: bool
) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    curves: dict[str, _Curves] = {}
    for j, variant in enumerate(model["variants"]):
        if not isinstance(variant, dict) or "package" not in variant:
            continue
        where: Loc = (*loc, "variants", j)
        found = _fill_variant(variant, where, base_dir, problems, edge_profiled)
        if found is not None:
            curves[str(variant.get("name"))] = found
    cascade = model.get("cascade")
    if isinstance(cascade, dict) and cascade.get("edge") in curves:
        edge = cascade["edge"]
        if "curve" in cascade:
            problems.append(
                ((*loc, "cascade", "curve"), f"comes from the package of variant {edge}; remove it")
            )
        else:
            rule = cascade.get("rule") or curves[edge].best
            if rule not in curves[edge].by_rule:
                message = no_curve_message(rule, curves[edge].by_rule)
                problems.append(((*loc, "cascade", "rule"), message))
                return problems
            cascade["rule"] = rule
            cascade["curve"] = [
                {"escalated": p.escalated, "accuracy": p.accuracy}
                for p in curves[edge].by_rule[rule]
            ]
    return problems


def _fill_variant(
    variant: dict[str, Any],
    loc: Loc,
    base_dir: Path,
    problems: list[tuple[Loc, str]],
    edge_profiled: bool = False,
) -> _Curves | None:
    """Fill one variant; return its cascade curves if the package has them for it."""
    ref = variant["package"]
    if not isinstance(ref, str) or not ref.strip():
        problems.append(((*loc, "package"), "expected a path to a package's manifest.json"))
        return None
    path_text, _, wanted = ref.partition("#")
    manifest = _read(base_dir / path_text, (*loc, "package"), problems)
    if manifest is None:
        return None
    wanted = wanted or str(variant.get("name"))
    if wanted == REFERENCE:
        _fill_reference(variant, manifest, loc, problems)
        return None
    entry = next((v for v in manifest.variants if v.name == wanted), None)
    if entry is None:
        known = ", ".join(
            [v.name for v in manifest.variants] + ([REFERENCE] if manifest.cascade else [])
        )
        problems.append(
            (
                (*loc, "package"),
                f'{manifest.name} v{manifest.version} has no variant "{wanted}"; '
                f"it has {known} (pick one with #name)",
            )
        )
        return None
    measured = ("size", "accuracy", "macs", "quantized", "build_latency")
    if not _no_hand_figures(variant, loc, problems, measured, edge_latency=True):
        return None
    variant["size"] = f"{entry.size_bytes}B"
    variant["accuracy"] = entry.accuracy
    variant["quantized"] = entry.quantization != "none"
    if entry.macs is not None:
        variant["macs"] = entry.macs
    timing = next((s for s in entry.latency if s.batch == LATENCY_BATCH), None)
    if timing is not None:
        variant["build_latency"] = f"{timing.mean_ms!r}ms"
    if timing is not None and not edge_profiled:
        latency = variant.get("latency")
        variant["latency"] = {
            **(latency if isinstance(latency, dict) else {}),
            "edge": f"{timing.mean_ms!r}ms",
        }
    elif timing is None and variant.get("flops") is None and not variant.get("latency"):
        problems.append(((*loc, "package"), "the package has no batch-1 latency; give flops"))
    if manifest.cascade is not None and wanted in manifest.cascade.rules:
        by_rule = {rule: entry.curve for rule, entry in manifest.cascade.rules[wanted].items()}
        return _Curves(by_rule, manifest.cascade.best_rule[wanted])
    return None


def _fill_reference(
    variant: dict[str, Any], manifest: _Manifest, loc: Loc, problems: list[tuple[Loc, str]]
) -> None:
    if manifest.cascade is None:
        problems.append(
            (
                (*loc, "package"),
                f"{manifest.name} v{manifest.version} has no cascade reference "
                "(it was built without --cloud-model)",
            )
        )
        return
    if not _no_hand_figures(variant, loc, problems, ("size", "accuracy"), edge_latency=False):
        return
    variant["size"] = f"{manifest.cascade.reference.size_bytes}B"
    variant["accuracy"] = manifest.cascade.reference.accuracy
    if variant.get("flops") is None and not variant.get("latency"):
        problems.append(
            (
                (*loc, "package"),
                "a package does not measure its reference model's speed in the "
                "cloud: give flops or latency: {cloud: ...} beside it",
            )
        )


def _no_hand_figures(
    variant: dict[str, Any],
    loc: Loc,
    problems: list[tuple[Loc, str]],
    fields: tuple[str, ...],
    edge_latency: bool,
) -> bool:
    before = len(problems)
    for field in fields:
        if field in variant:
            problems.append(((*loc, field), "comes from the package; remove it"))
    latency = variant.get("latency")
    if edge_latency and isinstance(latency, dict) and "edge" in latency:
        problems.append(((*loc, "latency", "edge"), "comes from the package; remove it"))
    return len(problems) == before


def _read(path: Path, loc: Loc, problems: list[tuple[Loc, str]]) -> _Manifest | None:
    if path.is_dir():
        path = path / MANIFEST
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problems.append(
            (
                loc,
                f"cannot read {path}: {exc.strerror or exc} (build it with tierwise package; "
                "see docs/package.md)",
            )
        )
        return None
    try:
        return _Manifest.model_validate(json.loads(raw))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "(root)"
        problems.append((loc, f"{path} is not a package manifest: {field}: {err['msg']}"))
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        problems.append((loc, f"{path} is not a package manifest: not JSON ({exc})"))
    return None
