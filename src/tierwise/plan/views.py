"""Candidates as objects: views of the table's rows, for reports, the simulator and tools.

The planner works on columns (`table.py`); a `Candidate` (candidates.py) is the object form
of one row, with its sites and, in words, the rules it breaks alone (`violations.py`).
Views are built only where someone reads them.
"""

from __future__ import annotations

import numpy as np

from tierwise.plan.candidates import Candidate, SiteUse
from tierwise.plan.table import CandidateTable, build_table
from tierwise.plan.violations import describe, violations_of
from tierwise.spec.model import Spec


def candidate_view(table: CandidateTable, c: int) -> Candidate:
    """The object view of candidate c, with its sites and violations."""
    t = table.templates[int(table.template[c])]
    start, stop = int(table.pair_start[c]), int(table.pair_start[c] + table.n_pairs[c])
    assessed = table.assessed
    uses = [
        SiteUse(
            site=int(table.site[p]),
            devices=int(table.devices[p]),
            requests_per_s=float(table.requests[p]),
            local_busy=float(table.local_busy[p]),
            lan_bps=float(table.lan_bps[p]),
            wan_bps=float(table.wan_bps[p]),
            wan_bytes_month=float(table.wan_bytes[p]),
            cloud_busy=float(table.cloud_busy[p]),
            rho_own=float(table.rho_own[p]) if assessed else 0.0,
            rho_star=float(table.rho_star[p]) if assessed else 1.0,
        )
        for p in range(start, stop)
    ]
    accuracy = float(table.accuracy[c])
    return Candidate(
        feature=int(table.feature[c]),
        placement=t.placement,
        variant=t.variant.name,
        cloud_variant=t.cloud_variant.name if t.cloud_variant is not None else None,
        escalated=t.escalated,
        accuracy=None if np.isnan(accuracy) else accuracy,
        service=t.service,
        cloud_service=t.cloud_service,
        memory=float(table.memory[c]),
        cost=float(table.cost[c]),
        sites=uses,
        violations=list(violations_of(table, c)),
    )


def candidate_views(table: CandidateTable) -> list[list[Candidate]]:
    """Every candidate of the table as an object, per feature in feature order."""
    first, count = table.per_feature()
    describe(table, np.arange(len(table.feature)))  # in words in one batch, not one at a time
    return [
        [candidate_view(table, c) for c in range(s, s + n)]
        for s, n in zip(first.tolist(), count.tolist(), strict=True)
    ]


def enumerate_candidates(spec: Spec) -> list[list[Candidate]]:
    """All candidates of every feature as objects, in feature order, not yet assessed.

    For tools and small specs; the planner works on `table.build_table` directly.
    """
    return candidate_views(build_table(spec))
