"""What rules a candidate out on its own, as flags for the solver and as words for people.

The flags are computed for every candidate at once; the sentences only for candidates a
report shows (a rejected alternative, a feature nothing can run), in the order a reader
meets them: the rules of the feature (scope, privacy, offline, memory, accuracy), a link it
fills alone, then its load and deadline at each site, then a cascade's accuracy.
"""

from __future__ import annotations

import math
from enum import IntFlag

import numpy as np

from tierwise.plan.table import CASCADE, CLOUD, DEVICE, REACH_RANK, CandidateTable, Template
from tierwise.spec.model import Feature
from tierwise.spec.tiers import Reach
from tierwise.spec.units import fmt_bandwidth, fmt_duration, fmt_size


class Standalone(IntFlag):
    """Rules a candidate breaks whatever else is placed."""

    SCOPE = 1  # a global feature needs every site's data: only the cloud has it
    PRIVACY = 2  # raw data would travel further than allowed
    OFFLINE = 4  # must keep answering with the WAN down
    MEMORY = 8  # the variant does not fit its tier
    CLOUD_MEMORY = 16  # a cascade's cloud variant does not fit a cloud instance
    ACCURACY = 32  # below min_accuracy (a cascade's is checked after its deadlines)


LATE_CAPACITY, LATE_DEADLINE = 1, 2  # table.late_kind per pair


def check_standalone(table: CandidateTable) -> None:
    """Set `standalone` and `link_pair` of every candidate, and the first `violated`."""
    feats, f, place = table.features, table.feature, table.placement
    spec = table.spec
    limit = np.array([t.memory_limit for t in table.templates])[table.template]
    cloud_size = np.array(
        [t.cloud_variant.size if t.cloud_variant is not None else 0.0 for t in table.templates]
    )[table.template]
    accuracy = np.nan_to_num(table.accuracy, nan=0.0)
    required = feats.min_accuracy[f]
    rules = [
        (Standalone.SCOPE, feats.global_scope[f] & (place != CLOUD)),
        (Standalone.PRIVACY, REACH_RANK[place] > feats.reach[f]),
        (Standalone.OFFLINE, feats.offline[f] & (place == CLOUD)),
        (Standalone.MEMORY, table.memory > limit),
        (Standalone.CLOUD_MEMORY, (place == CASCADE) & (cloud_size > spec.tiers.cloud.memory)),
        (Standalone.ACCURACY, ~np.isnan(required) & (place != CASCADE) & (accuracy < required)),
    ]
    bits = np.zeros(table.n_candidates, dtype=np.int64)
    for flag, broken in rules:
        bits |= np.where(broken, int(flag), 0)
    table.standalone = bits
    # a candidate that alone fills a site's WAN uplink or LAN can never be picked
    s = table.site
    full = (table.wan_bps > table.sites.wan_usable[s]) | (table.lan_bps > table.sites.lan_usable[s])
    failing = np.flatnonzero(full)
    first_of, at = np.unique(table.cand[failing], return_index=True)
    table.link_pair = np.full(table.n_candidates, -1, dtype=np.int64)
    table.link_pair[first_of] = failing[at]
    table.violated = (bits != 0) | (table.link_pair >= 0)


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
            words = self.prefix[key] = _rules(feature, t.templates[shape], bits)
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


def _rules(feature: Feature, template: Template, bits: int) -> list[str]:
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
    if Standalone.ACCURACY in rules:
        assert feature.min_accuracy is not None
        acc = template.accuracy
        shown = "unknown" if acc is None else f"{acc:.1%}"
        out.append(f"accuracy {shown} < required {feature.min_accuracy:.1%}")
    return out


def violation_counts(table: CandidateTable, cands: np.ndarray) -> np.ndarray:
    """How many distinct rules each of some candidates breaks."""
    counts = np.zeros(len(cands), dtype=np.int64)
    broken = np.flatnonzero(table.violated[cands])
    table.describe(cands[broken])
    for i in broken.tolist():
        counts[i] = len(table.violations(int(cands[i])))
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
