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

import heapq
import math
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
    options = np.flatnonzero(better)
    # per feature, its options from the most accurate (ties: in candidate order)
    order = np.lexsort((options, -accuracy[options], table.feature[options]))
    options = options[order]
    ledger = Ledger(table, choice, np.union1d(options, choice[table.feature[options]]))
    out = choice.copy()
    swapped = -1
    for i, cand in zip(table.feature[options].tolist(), options.tolist(), strict=True):
        if i == swapped:
            continue
        if ledger.swap(int(choice[i]), cand):
            out[i] = cand
            swapped = i
    return out


class Ledger:
    """What an assignment uses of every shared capacity, updated one swap at a time.

    Sums are plain floats changed in the order swaps come and go, so they are the same to
    the last bit as adding and removing candidates one by one would give.
    """

    def __init__(self, table: CandidateTable, choice: Index, movable: Index) -> None:
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
        members: list[list[float]] = [[] for _ in range(n_res)]
        bounds = table.rho_star[pairs][local].tolist()
        for r, bound in zip(res[local].tolist(), bounds, strict=True):
            members[r].append(bound)
        self.bounds = [_Bounds(values) for values in members]
        sites = table.sites
        self.wan_usable, self.lan_usable = sites.wan_usable.tolist(), sites.lan_usable.tolist()
        self.limits = _limits(table)
        # the pairs of the candidates that may come or go, as flat lists
        mine, _ = table.pairs_of(movable)
        self.first = dict(
            zip(
                movable.tolist(),
                (np.cumsum(table.n_pairs[movable]) - table.n_pairs[movable]).tolist(),
                strict=True,
            )
        )
        self.n_pairs = dict(zip(movable.tolist(), table.n_pairs[movable].tolist(), strict=True))
        self.mem = dict(zip(movable.tolist(), table.memory[movable].tolist(), strict=True))
        self.p_site, self.p_res = table.site[mine].tolist(), table.resource[mine].tolist()
        self.p_wan, self.p_lan = table.wan_bps[mine].tolist(), table.lan_bps[mine].tolist()
        self.p_busy, self.p_bound = table.local_busy[mine].tolist(), table.rho_star[mine].tolist()

    def swap(self, now: int, cand: int) -> bool:
        """Replace `now` by `cand` (same feature and tier: the same sites) if every capacity
        it touches still holds; else leave everything as it was."""
        a, b, n = self.first[now], self.first[cand], self.n_pairs[now]
        self._move(a, b, n, self.mem[now], self.mem[cand])
        if self._holds(b, n):
            return True
        self._move(b, a, n, self.mem[cand], self.mem[now])
        return False

    def _move(self, out: int, into: int, n: int, mem_out: float, mem_in: float) -> None:
        """Take the pairs at out..out+n away and put those at into..into+n in (site by site:
        each site's sums see -old then +new, as removing then adding would)."""
        site, res = self.p_site, self.p_res
        for k in range(n):
            s, p, q = site[out + k], out + k, into + k
            self.wan[s] = self.wan[s] - self.p_wan[p] + self.p_wan[q]
            self.lan[s] = self.lan[s] - self.p_lan[p] + self.p_lan[q]
            r = res[p]
            if r < 0:
                continue
            self.load[r] = self.load[r] - self.p_busy[p] + self.p_busy[q]
            self.memory[r] = self.memory[r] - mem_out + mem_in
            self.bounds[r].remove(self.p_bound[p])
            self.bounds[r].add(self.p_bound[q])

    def _holds(self, first: int, n: int) -> bool:
        """Every capacity the pairs at first..first+n touch is within its limit."""
        for p in range(first, first + n):
            s = self.p_site[p]
            if self.wan[s] > self.wan_usable[s] + EPS or self.lan[s] > self.lan_usable[s] + EPS:
                return False
            r = self.p_res[p]
            if r < 0:
                continue
            servers, cap, memory = self.limits[r]
            limit = min(cap, self.bounds[r].smallest())
            if self.load[r] > servers * limit + EPS or self.memory[r] > memory + EPS:
                return False
        return True


class _Bounds:
    """A multiset of utilization bounds with its smallest member (a heap, lazily pruned)."""

    def __init__(self, values: list[float]) -> None:
        self.count = Counter(values)
        self.heap = values
        heapq.heapify(self.heap)

    def add(self, value: float) -> None:
        self.count[value] += 1
        heapq.heappush(self.heap, value)

    def remove(self, value: float) -> None:
        self.count[value] -= 1

    def smallest(self) -> float:
        heap = self.heap
        while heap and self.count[heap[0]] <= 0:
            heapq.heappop(heap)
        return heap[0] if heap else math.inf


def _limits(table: CandidateTable) -> list[tuple[float, float, float]]:
    """Per shared resource: servers, utilization cap and memory (see table.resource_id)."""
    spec = table.spec
    edge = spec.tiers.edge
    out = [
        (float(site.gateways * edge.workers), edge.max_utilization, edge.memory)
        for site in spec.sites
    ]
    tiers = [spec.tiers.device_class(c) for c in table.classes]
    for _ in spec.sites:
        out += [(1.0, t.max_utilization, t.memory) for t in tiers]
    return out
