"""Why each feature went where it went: the binding constraint, in one line to argue with."""

from __future__ import annotations

from dataclasses import dataclass

from tierwise.spec.tiers import Placement


@dataclass
class Alternative:
    """A candidate that was not chosen, and what ruled it out."""

    label: str
    placement: str
    ruled_out_by: str  # the violated constraint, or the extra cost of choosing it
    extra_cost: float | None = None  # $/month more than the plan, when it was feasible


_ORDER = tuple(p.value for p in Placement)  # reasons list the other placements in this order


def reason_line(chosen: Placement, alternatives: list[Alternative]) -> str:
    """`edge: cloud — p99 312ms > budget 20ms; must work offline | device — ...`.

    For each other placement, the best of its candidates says what stopped it: a hard
    constraint when all of them broke one, else what it would cost on top.
    """
    by_placement: dict[str, list[Alternative]] = {}
    for a in alternatives:
        by_placement.setdefault(a.placement, []).append(a)
    parts = []
    head = chosen.value
    for placement in _ORDER:
        mine = by_placement.get(placement)
        if not mine or placement == head:
            continue
        feasible = [a for a in mine if a.extra_cost is not None]
        if feasible:
            best = min(feasible, key=lambda a: a.extra_cost or 0.0)
            parts.append(f"{placement}: {best.ruled_out_by}")
        else:
            parts.append(f"{placement}: {_shortest(mine)}")
    if not parts:
        return f"{head}: the only placement that fits"
    return f"{head} — " + "; ".join(parts)


def _shortest(alternatives: list[Alternative]) -> str:
    """The violations of the candidate that came closest: the fewest constraints broken."""
    if len(alternatives) == 1:
        best = alternatives[0]
    else:
        best = min(alternatives, key=lambda a: (a.ruled_out_by.count(" | "), len(a.ruled_out_by)))
    return best.ruled_out_by.replace(" | ", ", ")


def describe_violations(violations: list[str]) -> str:
    return " | ".join(violations)
