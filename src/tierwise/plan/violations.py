"""What rules a candidate out on its own, in words for people.

The flags are the table's (`table.Standalone`, `late_kind`), computed for every candidate at
once; the sentences only for candidates a report shows (a rejected alternative, a feature
nothing can run), in the order a reader meets them: the rules of the feature (scope,
privacy, offline, memory, accuracy), a link it fills alone, then its load and deadline at
each site, then a cascade's accuracy. They are kept on the table (`texts`) once made.
"""

from __future__ import annotations

import math

import numpy as np

from tierwise.plan.columns import Index
from tierwise.plan.table import DEVICE, LATE_CAPACITY, CandidateTable, Standalone, Template
from tierwise.spec.model import Cascade, Feature
from tierwise.spec.tiers import Reach
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_size


def violations_of(table: CandidateTable, c: int) -> list[str]:
    """The hard constraints candidate c breaks alone, in words (cached on the table)."""
    texts = table.texts.get(c)
    if texts is None:
        describe(table, np.array([c]))
        texts = table.texts[c]
    return texts


def describe(table: CandidateTable, cands: Index) -> None:
    """Put the violations of many candidates in words at once (see `violations_of`)."""
    todo = [c for c in cands.tolist() if c not in table.texts]
    table.texts.update(zip(todo, violation_texts(table, todo), strict=True))


def violation_texts(table: CandidateTable, cands: list[int]) -> list[list[str]]:
    """The violated rules of each candidate, one sentence each, without repeats.

    Batched: what repeats across candidates (a feature's percentile and budget, the rules
    of a candidate shape) is formatted once; per pair only the flagged ones are.
    """
    index = np.asarray(cands, dtype=np.int64)
    words = _Words(table)
    texts = [words.rules(c) for c in cands]
    for k, p in enumerate(table.link_pair[index].tolist()):
        if p >= 0:
            texts[k].append(_link_text(table, p))
    if not table.assessed:
        return texts
    pairs, which = table.pairs_of(index)
    flagged = pairs[table.late_kind[pairs] > 0]
    owner = which[table.late_kind[pairs] > 0].tolist()
    feature = table.feature[table.cand[flagged]].tolist()
    kinds = table.late_kind[flagged].tolist()
    latency, miss = table.latency_own[flagged].tolist(), table.miss_own[flagged].tolist()
    for k, p, f, late, lat, missed in zip(
        owner, flagged.tolist(), feature, kinds, latency, miss, strict=True
    ):
        text = words.capacity(p) if late == LATE_CAPACITY else words.deadline(f, lat, missed)
        if text not in texts[k]:
            texts[k].append(text)
    for k in np.flatnonzero(table.accuracy_short[index]).tolist():
        c = cands[k]
        required = float(table.features.min_accuracy[table.feature[c]])
        text = (
            f"accuracy {float(table.accuracy[c]):.1%} < required {required:.1%} "
            f"({float(table.in_time[c]):.0%} of escalations answered in time)"
        )
        if text not in texts[k]:
            texts[k].append(text)
    return texts


class _Words:
    """Sentences for one table's rules, with what repeats formatted once."""

    def __init__(self, table: CandidateTable) -> None:
        self.table = table
        self.features = table.spec.features
        self.prefix: dict[tuple[int, int, Reach, float | None], list[str]] = {}
        self.per_feature: dict[int, tuple[str, str, str]] = {}

    def rules(self, c: int) -> list[str]:
        """The standalone rules candidate c breaks (a fresh list)."""
        t = self.table
        bits = int(t.standalone[c])
        if not bits:
            return []
        f, shape = int(t.feature[c]), int(t.template[c])
        # the words depend on the feature only through its reach and minimum accuracy
        feature = self.features[f]
        key = (bits, shape, feature.raw_data_may_reach, feature.min_accuracy)
        words = self.prefix.get(key)
        if words is None:
            cascade = t.spec.model(feature.model).cascade
            words = self.prefix[key] = _rules(feature, t.templates[shape], bits, cascade)
        return list(words)

    def capacity(self, p: int) -> str:
        t = self.table
        rho, cap = float(t.rho_own[p]), float(t.cap[p])
        if t.placement[t.cand[p]] == DEVICE:
            where = "a device"
        else:
            where = f"the edge at {t.sites.names[int(t.site[p])]}"
        return f"{where} would be {rho:.0%} busy > {cap:.0%} cap"

    def deadline(self, f: int, latency: float, miss: float) -> str:
        fixed = self.per_feature.get(f)
        if fixed is None:
            feature = self.features[f]
            fixed = self.per_feature[f] = (
                f"p{feature.percentile:g}",
                fmt_duration(feature.deadline),
                f"{1 - feature.percentile / 100:.2%}",
            )
        pct, budget, allowed = fixed
        if math.isfinite(latency) and latency > self.features[f].deadline:
            return f"{pct} {fmt_duration(latency)} > budget {budget}"
        return f"misses {miss:.2%} of deadlines (outages included) > {allowed} allowed at {pct}"


def _rules(feature: Feature, template: Template, bits: int, cascade: Cascade | None) -> list[str]:
    rules = Standalone(bits)
    out = []
    if Standalone.SCOPE in rules:
        out.append("needs every site's data (scope: global)")
    if Standalone.PRIVACY in rules:
        out.append(f"raw data may not leave the {feature.raw_data_may_reach.value}")
    if Standalone.OFFLINE in rules:
        out.append("must work offline")
    if Standalone.MEMORY in rules:
        tier = template.placement.local_tier
        out.append(
            f"{template.variant.name} needs {fmt_size(template.variant.size)} > "
            f"{fmt_size(template.memory_limit)} {tier.value} memory"
        )
    if Standalone.CLOUD_MEMORY in rules:
        assert template.cloud_variant is not None
        out.append(f"{template.cloud_variant.name} does not fit a cloud instance's memory")
    if Standalone.ESCALATION_BUDGET in rules:
        assert cascade is not None
        out.append(_over_budget(cascade, template))
    if Standalone.ACCURACY in rules:
        assert feature.min_accuracy is not None
        acc = template.accuracy
        shown = "unknown" if acc is None else f"{acc:.1%}"
        out.append(f"accuracy {shown} < required {feature.min_accuracy:.1%}")
    return out


def _over_budget(cascade: Cascade, template: Template) -> str:
    """The cascade budget a candidate breaks: a share, or fleet-wide escalations/s."""
    if cascade.max_escalated is not None and template.escalated > cascade.max_escalated + 1e-12:
        return f"escalates {template.escalated:.1%} > budget {cascade.max_escalated:.1%}"
    return (
        f"escalating {template.escalated:.1%} of requests exceeds the cloud's budget of "
        f"{cascade.max_escalation_rate:g} escalations/s"
    )


def violation_counts(table: CandidateTable, cands: np.ndarray) -> np.ndarray:
    """How many distinct rules each of some candidates breaks."""
    counts = np.zeros(len(cands), dtype=np.int64)
    broken = np.flatnonzero(table.violated[cands])
    describe(table, cands[broken])
    for i in broken.tolist():
        counts[i] = len(violations_of(table, int(cands[i])))
    return counts


def _link_text(table: CandidateTable, p: int) -> str:
    s = int(table.site[p])
    name, sites = table.sites.names[s], table.sites
    if table.wan_bps[p] > sites.wan_usable[s]:
        return (
            f"WAN at {name}: needs {fmt_bandwidth(float(table.wan_bps[p]))} > "
            f"{fmt_bandwidth(float(sites.wan_usable[s]))} usable"
        )
    return (
        f"LAN at {name}: needs {fmt_bandwidth(float(table.lan_bps[p]))} > "
        f"{fmt_bandwidth(float(sites.lan_usable[s]))} usable"
    )
