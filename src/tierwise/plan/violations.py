"""What rules a candidate out on its own, as flags for the solver and as words for people.

The flags are computed for every candidate at once; the sentences only for candidates a
report shows (a rejected alternative, a feature nothing can run), in the order a reader
meets them: the rules of the feature (scope, privacy, offline, memory, accuracy), a link it
fills alone, then its load and deadline at each site, then a cascade's accuracy.
"""

from __future__ import annotations

from enum import IntFlag

import numpy as np

from tierwise.plan.table import CASCADE, CLOUD, DEVICE, REACH_RANK, CandidateTable
from tierwise.spec.model import Feature
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


def violation_texts(table: CandidateTable, c: int) -> list[str]:
    """The violated rules of candidate c, one sentence each, without repeats."""
    spec = table.spec
    feature = spec.features[int(table.feature[c])]
    template = table.templates[int(table.template[c])]
    bits = Standalone(int(table.standalone[c]))
    out: list[str] = []
    if Standalone.SCOPE in bits:
        out.append("needs every site's data (scope: global)")
    if Standalone.PRIVACY in bits:
        out.append(f"raw data may not leave the {feature.raw_data_may_reach.value}")
    if Standalone.OFFLINE in bits:
        out.append("must work offline")
    if Standalone.MEMORY in bits:
        tier = template.placement.local_tier
        out.append(
            f"{template.variant.name} needs {fmt_size(template.variant.size)} > "
            f"{fmt_size(template.memory_limit)} {tier.value} memory"
        )
    if Standalone.CLOUD_MEMORY in bits:
        assert template.cloud_variant is not None
        out.append(f"{template.cloud_variant.name} does not fit a cloud instance's memory")
    if Standalone.ACCURACY in bits:
        assert feature.min_accuracy is not None
        acc = template.accuracy
        shown = "unknown" if acc is None else f"{acc:.1%}"
        out.append(f"accuracy {shown} < required {feature.min_accuracy:.1%}")
    p = int(table.link_pair[c])
    if p >= 0:
        out.append(_link_text(table, p))
    if not table.assessed:
        return out
    start = int(table.pair_start[c])
    for p in range(start, start + int(table.n_pairs[c])):
        kind = int(table.late_kind[p])
        if kind == LATE_CAPACITY:
            rho, cap = float(table.rho_own[p]), float(table.cap[p])
            where = (
                "a device"
                if table.placement[c] == DEVICE
                else f"the edge at {table.sites.names[int(table.site[p])]}"
            )
            text = f"{where} would be {rho:.0%} busy > {cap:.0%} cap"
        elif kind == LATE_DEADLINE:
            text = deadline_text(feature, float(table.latency_own[p]), float(table.miss_own[p]))
        else:
            continue
        if text not in out:
            out.append(text)
    if table.accuracy_short[c]:
        assert feature.min_accuracy is not None
        text = (
            f"accuracy {float(table.accuracy[c]):.1%} < required {feature.min_accuracy:.1%} "
            f"({float(table.in_time[c]):.0%} of escalations answered in time)"
        )
        if text not in out:
            out.append(text)
    return out


def violation_counts(table: CandidateTable, cands: np.ndarray) -> np.ndarray:
    """How many distinct rules each of some candidates breaks (0 without building text)."""
    counts = np.zeros(len(cands), dtype=np.int64)
    for i in np.flatnonzero(table.violated[cands]):
        counts[i] = len(table.violations(int(cands[i])))
    return counts


def deadline_text(feature: Feature, latency: float, p_miss: float) -> str:
    pct = f"p{feature.percentile:g}"
    if np.isfinite(latency) and latency > feature.deadline:
        return f"{pct} {fmt_duration(latency)} > budget {fmt_duration(feature.deadline)}"
    return (
        f"misses {p_miss:.2%} of deadlines (outages included) > "
        f"{1 - feature.percentile / 100:.2%} allowed at {pct}"
    )


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
