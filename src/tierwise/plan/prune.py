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

from collections import defaultdict

from tierwise.plan.candidates import Candidate, ResourceKey, shared_resource
from tierwise.spec.model import Spec

EPS = 1e-12


def dominates(a: Candidate, b: Candidate) -> bool:
    """A is at least as good as B on every count the solver sees."""
    if a.placement is not b.placement or a.cost > b.cost + EPS or a.memory > b.memory + EPS:
        return False
    if [u.site for u in a.sites] != [u.site for u in b.sites]:
        return False
    return all(
        ua.local_busy <= ub.local_busy + EPS
        and ua.wan_bps <= ub.wan_bps + EPS
        and ua.lan_bps <= ub.lan_bps + EPS
        and ua.rho_star >= ub.rho_star - EPS
        for ua, ub in zip(a.sites, b.sites, strict=True)
    )


def prune(options: list[Candidate]) -> list[Candidate]:
    """The candidates no other candidate dominates (of two equal ones, the first stays)."""
    keep: list[Candidate] = []
    for i, b in enumerate(options):
        beaten = any(
            dominates(a, b) and (not dominates(b, a) or j < i)
            for j, a in enumerate(options)
            if a is not b
        )
        if not beaten:
            keep.append(b)
    return keep


def upgrade_accuracy(
    spec: Spec, choice: list[Candidate], feasible: list[list[Candidate]]
) -> list[Candidate]:
    """Swap a chosen candidate for a more accurate one of equal cost on the same tier, where
    every shared capacity it touches still holds. Greedy, feature by feature."""
    ledger = Ledger(spec)
    for cand in choice:
        ledger.add(cand, 1.0)
    out = list(choice)
    for i, current in enumerate(choice):
        better = [
            c
            for c in feasible[i]
            if c.placement is current.placement
            and abs(c.cost - current.cost) <= 1e-9 * max(1.0, current.cost)
            and (c.accuracy or 0.0) > (current.accuracy or 0.0)
            and [u.site for u in c.sites] == [u.site for u in current.sites]
        ]
        for cand in sorted(better, key=lambda c: -(c.accuracy or 0.0)):
            ledger.add(current, -1.0)
            ledger.add(cand, 1.0)
            if ledger.holds(cand):
                out[i] = cand
                break
            ledger.add(cand, -1.0)
            ledger.add(current, 1.0)
    return out


class Ledger:
    """What an assignment uses of every shared capacity, updated one candidate at a time."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.load: dict[ResourceKey, float] = defaultdict(float)
        self.bounds: dict[ResourceKey, list[float]] = defaultdict(list)
        self.memory: dict[ResourceKey, float] = defaultdict(float)
        self.wan: dict[int, float] = defaultdict(float)
        self.lan: dict[int, float] = defaultdict(float)

    def add(self, cand: Candidate, sign: float) -> None:
        """Count a candidate in (sign 1) or out (sign -1)."""
        for use in cand.sites:
            self.wan[use.site] += sign * use.wan_bps
            self.lan[use.site] += sign * use.lan_bps
            key = shared_resource(self.spec, cand, use.site)
            if key is None:
                continue
            self.load[key] += sign * use.local_busy
            self.memory[key] += sign * cand.memory
            if sign > 0:
                self.bounds[key].append(use.rho_star)
            else:
                self.bounds[key].remove(use.rho_star)

    def holds(self, cand: Candidate) -> bool:
        """Every capacity the candidate touches is within its limit."""
        return all(self._site_holds(cand, use.site) for use in cand.sites)

    def _site_holds(self, cand: Candidate, index: int) -> bool:
        spec = self.spec
        site = spec.sites[index]
        wan, lan = spec.wan(site), spec.links.device_edge
        if self.wan[index] > spec.capacity(wan, site) * wan.max_utilization + EPS:
            return False
        if self.lan[index] > spec.capacity(lan, site) * lan.max_utilization + EPS:
            return False
        key = shared_resource(spec, cand, index)
        if key is None:
            return True
        kind, _, cls = key
        if kind == "edge":
            servers = site.gateways * spec.tiers.edge.workers
            cap, memory = spec.tiers.edge.max_utilization, spec.tiers.edge.memory
        else:
            tier = spec.tiers.device_class(cls)
            servers, cap, memory = 1, tier.max_utilization, tier.memory
        limit = min([cap, *self.bounds[key]])
        return self.load[key] <= servers * limit + EPS and self.memory[key] <= memory + EPS
