"""Drop candidates that can never be needed, and win back accuracy after the solve.

Candidate B is *dominated* by A (same feature) when A runs on the same tier — so it needs the
same gateways or device upgrades — costs no more, needs no more memory, compute, LAN or WAN
at any site, and tolerates at least as much load on its tier (`rho_star`). Any plan using B
stays feasible and no dearer with A instead, so B can go. On a fleet this halves the MILP and
lets HiGHS's presolve finish the rest: 10,000 features over 100 sites solve in about a second.

Pruning keeps the cheapest plan but may drop a more accurate variant of equal cost (INT8
dominates full precision on the same tier). `upgrade_accuracy` takes those back where the
capacity left over allows.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from tierwise.plan.columns import Index, Mask, segments
from tierwise.plan.table import CandidateTable

EPS = 1e-12


def prune(table: CandidateTable, feasible: Mask) -> Mask:
    """The feasible candidates no other one dominates (of two equal ones, the first stays)."""
    cands = np.flatnonzero(feasible)
    group = table.feature[cands] * 4 + table.placement[cands]  # same feature, same tier
    firsts, seconds = [], []
    for step in range(1, len(cands)):
        same = np.flatnonzero(group[:-step] == group[step:])
        if not same.size:
            break  # a feature's candidates of one tier are contiguous
        firsts.append(cands[same])
        seconds.append(cands[same + step])
    if not firsts:
        return feasible.copy()
    a, b = np.concatenate(firsts), np.concatenate(seconds)  # a < b
    a_beats_b = _dominates(table, a, b)
    b_beats_a = _dominates(table, b, a)
    beaten = np.zeros(table.n_candidates, dtype=bool)
    beaten[b[a_beats_b]] = True  # a comes first: it stays even when they are equal
    beaten[a[b_beats_a & ~a_beats_b]] = True
    return feasible & ~beaten


def _dominates(table: CandidateTable, a: Index, b: Index) -> Mask:
    """A is at least as good as B on every count the solver sees (same feature and tier)."""
    ok = (table.cost[a] <= table.cost[b] + EPS) & (table.memory[a] <= table.memory[b] + EPS)
    # candidates of one feature have the same sites, in the same order
    pa, which = segments(table.pair_start[a], table.n_pairs[a])
    pb = pa - table.pair_start[a][which] + table.pair_start[b][which]
    fine = (
        (table.local_busy[pa] <= table.local_busy[pb] + EPS)
        & (table.wan_bps[pa] <= table.wan_bps[pb] + EPS)
        & (table.lan_bps[pa] <= table.lan_bps[pb] + EPS)
        & (table.rho_star[pa] >= table.rho_star[pb] - EPS)
    )
    broken = np.bincount(which, weights=~fine, minlength=len(a))
    dominated: Mask = ok & (broken == 0)
    return dominated


def upgrade_accuracy(table: CandidateTable, choice: Index, feasible: Mask) -> Index:
    """Swap a chosen candidate for a more accurate one of equal cost on the same tier, where
    every shared capacity it touches still holds. Greedy, feature by feature."""
    current = choice[table.feature]  # per candidate: its feature's choice
    accuracy = np.nan_to_num(table.accuracy, nan=0.0)
    cost = table.cost
    better = (
        feasible
        & (table.placement == table.placement[current])
        & (np.abs(cost - cost[current]) <= 1e-9 * np.maximum(1.0, cost[current]))
        & (accuracy > accuracy[current])
    )
    if not better.any():
        return choice
    ledger = Ledger(table, choice)
    out = choice.copy()
    better_cands = np.flatnonzero(better)
    by_feature: dict[int, list[int]] = {}
    for c in better_cands.tolist():
        by_feature.setdefault(int(table.feature[c]), []).append(c)
    acc = accuracy.tolist()
    for i, options in by_feature.items():
        now = int(choice[i])
        for cand in sorted(options, key=lambda c: -acc[c]):
            ledger.add(now, -1.0)
            ledger.add(cand, 1.0)
            if ledger.holds(cand):
                out[i] = cand
                break
            ledger.add(cand, -1.0)
            ledger.add(now, 1.0)
    return out


class Ledger:
    """What an assignment uses of every shared capacity, updated one candidate at a time."""

    def __init__(self, table: CandidateTable, choice: Index) -> None:
        self.table = table
        pairs, _ = table.pairs_of(choice)
        res, site = table.resource[pairs], table.site[pairs]
        local = res >= 0
        n_sites = len(table.sites.names)
        n_res = n_sites * (1 + len(table.classes))
        # summed in the order of the assignment, as adding candidates one by one would
        self.wan = np.bincount(site, weights=table.wan_bps[pairs], minlength=n_sites).tolist()
        self.lan = np.bincount(site, weights=table.lan_bps[pairs], minlength=n_sites).tolist()
        busy = table.local_busy[pairs][local]
        memory = table.memory[table.cand[pairs]][local]
        self.load = np.bincount(res[local], weights=busy, minlength=n_res).tolist()
        self.memory = np.bincount(res[local], weights=memory, minlength=n_res).tolist()
        self.bounds: dict[int, Counter[float]] = {}
        for r, bound in zip(
            res[local].tolist(), table.rho_star[pairs][local].tolist(), strict=True
        ):
            self.bounds.setdefault(r, Counter())[bound] += 1
        sites = table.sites
        self.wan_usable, self.lan_usable = sites.wan_usable.tolist(), sites.lan_usable.tolist()
        self.limits: dict[int, tuple[float, float, float]] = {}  # servers, cap, memory

    def _pairs(self, cand: int) -> range:
        start = int(self.table.pair_start[cand])
        return range(start, start + int(self.table.n_pairs[cand]))

    def add(self, cand: int, sign: float) -> None:
        """Count a candidate in (sign 1) or out (sign -1)."""
        t = self.table
        memory = float(t.memory[cand])
        for p in self._pairs(cand):
            s = int(t.site[p])
            self.wan[s] += sign * float(t.wan_bps[p])
            self.lan[s] += sign * float(t.lan_bps[p])
            r = int(t.resource[p])
            if r < 0:
                continue
            self.load[r] += sign * float(t.local_busy[p])
            self.memory[r] += sign * memory
            bounds = self.bounds.setdefault(r, Counter())
            bound = float(t.rho_star[p])
            bounds[bound] += 1 if sign > 0 else -1
            if bounds[bound] == 0:
                del bounds[bound]

    def holds(self, cand: int) -> bool:
        """Every capacity the candidate touches is within its limit."""
        t = self.table
        for p in self._pairs(cand):
            s = int(t.site[p])
            if self.wan[s] > self.wan_usable[s] + EPS or self.lan[s] > self.lan_usable[s] + EPS:
                return False
            r = int(t.resource[p])
            if r < 0:
                continue
            servers, cap, memory = self._limits(r, p)
            limit = min([cap, *self.bounds[r]])
            if self.load[r] > servers * limit + EPS or self.memory[r] > memory + EPS:
                return False
        return True

    def _limits(self, r: int, p: int) -> tuple[float, float, float]:
        limits = self.limits.get(r)
        if limits is None:
            t = self.table
            spec = t.spec
            if r < len(t.sites.names):
                edge = spec.tiers.edge
                servers = spec.sites[r].gateways * edge.workers
                limits = (float(servers), edge.max_utilization, edge.memory)
            else:
                cls = t.classes[int(t.features.device_class[t.feature[t.cand[p]]])]
                tier = spec.tiers.device_class(cls)
                limits = (1.0, tier.max_utilization, tier.memory)
            self.limits[r] = limits
        return limits
