"""Cross-references pydantic cannot see: names that must exist, names that must be unique.

Each problem is a (location, message) pair; `load.py` turns the location into the YAML line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tierwise.spec.model import Spec
from tierwise.spec.traffic import ScheduledOutage, Spike

Loc = tuple[str | int, ...]  # where in the YAML: keys and list indexes from the root


def check_refs(spec: Spec) -> Iterable[tuple[Loc, str]]:
    """Every cross-reference problem of a spec pydantic has validated."""
    yield from _unique("sites", [s.name for s in spec.sites])
    yield from _unique("models", [m.name for m in spec.models])
    yield from _unique("features", [f.name for f in spec.features])
    yield from _unique("training", [t.name for t in spec.training])
    yield from _traffic_refs(spec)
    yield from _scenario_refs(spec)
    models = {m.name: m for m in spec.models}
    sites = {s.name for s in spec.sites}
    classes = {"device", *spec.tiers.device_classes}
    for i, m in enumerate(spec.models):
        yield from _unique(f"models[{i}].variants", [v.name for v in m.variants])
        names = {v.name for v in m.variants}
        if m.cascade:
            for key in ("edge", "cloud"):
                name = getattr(m.cascade, key)
                if name not in names:
                    yield (("models", i, "cascade", key), _unknown("variant", name, names))
    for i, s in enumerate(spec.sites):
        for cls in s.device_counts():
            if cls not in classes:
                yield (("sites", i, "devices", cls), _unknown("device class", cls, classes))
    for i, f in enumerate(spec.features):
        if f.model not in models:
            yield (("features", i, "model"), _unknown("model", f.model, models))
            continue
        names = {v.name for v in models[f.model].variants}
        for j, v in enumerate(f.variants or []):
            if v not in names:
                yield (("features", i, "variants", j), _unknown("variant", v, names))
        if f.device_class not in classes:
            yield (
                ("features", i, "device_class"),
                _unknown("device class", f.device_class, classes),
            )
        for j, site in enumerate(f.sites or []):
            if site not in sites:
                yield (("features", i, "sites", j), _unknown("site", site, sites))
    for i, t in enumerate(spec.training):
        if t.model not in models:
            yield (("training", i, "model"), _unknown("model", t.model, models))
        for j, site in enumerate(t.sites or []):
            if site not in sites:
                yield (("training", i, "sites", j), _unknown("site", site, sites))


def _unique(field: str, names: list[str]) -> Iterable[tuple[Loc, str]]:
    seen: set[str] = set()
    base: Loc = _parse_dotted(field)
    for i, name in enumerate(names):
        if name in seen:
            yield ((*base, i, "name"), f'duplicate name "{name}"')
        seen.add(name)


def _parse_dotted(field: str) -> Loc:
    out: list[str | int] = []
    for part in field.replace("]", "").split("."):
        head, *idx = part.split("[")
        out.append(head)
        out.extend(int(i) for i in idx)
    return tuple(out)


def _unknown(what: str, name: str, known: Iterable[str]) -> str:
    listed = ", ".join(sorted(known)) or "none"
    return f'unknown {what} "{name}"; known: {listed}'


def _traffic_refs(spec: Spec) -> Iterable[tuple[Loc, str]]:
    """Names in the traffic section that must exist: features and sites."""
    if spec.traffic is None:
        return
    features = {f.name for f in spec.features}
    sites = {s.name for s in spec.sites}
    groups: list[tuple[str, Sequence[Spike | ScheduledOutage]]] = [
        ("spikes", spec.traffic.spikes),
        ("outages", spec.traffic.outages),
    ]
    for field, items in groups:
        for i, item in enumerate(items):
            for j, name in enumerate(getattr(item, "features", None) or []):
                if name not in features:
                    where = ("traffic", field, i, "features", j)
                    yield (where, _unknown("feature", name, features))
            for j, name in enumerate(item.sites or []):
                if name not in sites:
                    yield (("traffic", field, i, "sites", j), _unknown("site", name, sites))


def _scenario_refs(spec: Spec) -> Iterable[tuple[Loc, str]]:
    """Variant names under `scenario.cloud` must be variants of that model."""
    for i, model in enumerate(spec.models):
        binding = model.scenario
        if binding is None or binding.cloud is None:
            continue
        names = {v.name for v in model.variants}
        for j, name in enumerate(binding.cloud):
            if name not in names:
                yield (("models", i, "scenario", "cloud", j), _unknown("variant", name, names))
