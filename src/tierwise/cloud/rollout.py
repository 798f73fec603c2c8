"""Staged rollout: canary sites first, the rest once the canary proves itself, or roll back.

The state machine::

    canary ──(every policy passes)──► promoting ──(every site reports it healthy)──► done
      │                                   │
      └──(any policy fails)──► rolled_back ◄──(a site fails its health probe)

Starting a rollout points the canary sites' assignments at the new version and nothing
else; the other sites are untouched until the canary passes, so a regressing package
never reaches them. Rolling back restores each site's previous version (only where the
assignment still points at the rolled-out one). `advance` is called after every status
report, on every read of a rollout, and by every replica's ticker; it runs in one write
transaction holding the rollout's row lock (`SELECT ... FOR UPDATE` on PostgreSQL, the
database write lock on SQLite), and re-reads the state under that lock, so concurrent
callers — threads or replicas — cannot both promote. The ticker and status reports use
`advance_active`, which skips a rollout whose row another transaction holds (SKIP LOCKED):
that caller is advancing it right now, and waiting for it would only queue the replicas.
A partial unique index allows one active rollout per package, so two replicas starting
rollouts of the same package at once cannot both succeed either.
Each step is given `now`, read from the app's clock: a test moves a virtual clock past the
bake time instead of waiting for it.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, status

from tierwise.cloud.auth import Admin
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, rollouts, row_as
from tierwise.cloud.deployments import (
    check_variant,
    package_sha256,
    package_variants,
    set_versions,
    sites_running,
    variants_running,
)
from tierwise.cloud.params import RolloutIdPath
from tierwise.cloud.policy import Verdict, judge_canary, policies_for
from tierwise.cloud.status import canary_evidence
from tierwise.errors import ConflictError, NotFoundError, UnprocessableError
from tierwise.wire import Rollout, RolloutRequest, RolloutState

ACTIVE = (RolloutState.CANARY, RolloutState.PROMOTING)

router = APIRouter(tags=["rollouts"])
Context = Annotated[CloudContext, Depends(get_context)]


def start_rollout(db: Database, req: RolloutRequest, now: float) -> Rollout:
    """Deploy `req.version` of `req.package` to the canary sites; the others wait."""
    canaries = sorted(set(req.canary_sites))
    with db.write() as conn:
        package_sha256(conn, req.package, req.version)
        active = conn.execute(
            sa.select(rollouts.c.id).where(
                rollouts.c.package == req.package, rollouts.c.state.in_(list(ACTIVE))
            )
        ).scalar()
        if active is not None:
            raise ConflictError(f"rollout {active} of package {req.package!r} is still running")
        running = _only(sites_running(conn, req.package), req.features)
        for site in canaries:
            if site not in running:
                raise UnprocessableError(f"canary site {site!r} runs no feature of {req.package!r}")
            newer = {f: v for f, v in running[site].items() if v >= req.version}
            if newer:
                feature, version = next(iter(sorted(newer.items())))
                raise UnprocessableError(
                    f"canary site {site!r} already runs {req.package!r} version {version} "
                    f"for {feature!r}; roll out a newer version than that"
                )
        known = package_variants(conn, req.package, req.version)
        for variant, sites in sorted(variants_running(conn, req.package).items()):
            try:  # the new version must still carry every variant an assignment names
                check_variant(conn, req.package, req.version, variant, known)
            except UnprocessableError as exc:
                raise UnprocessableError(
                    f"{exc.detail} (sites {', '.join(sorted(sites))} run variant {variant!r})"
                ) from None
        if req.sites is not None:
            missing = sorted(set(canaries) - set(req.sites))
            if missing:
                raise UnprocessableError(
                    f"canary sites {', '.join(missing)} are not among the rollout's sites"
                )
        targets = set(running) if req.sites is None else set(running) & set(req.sites)
        others = sorted(targets - set(canaries))
        # Another replica may start a rollout of this package between the check above and
        # the insert below; the partial unique index refuses the second one, and this
        # transaction (canary assignments included) rolls back with it.
        set_versions(
            conn,
            req.package,
            {s: dict.fromkeys(running[s], req.version) for s in canaries},
            only_if=None,
            now=now,
        )
        try:
            rollout_id = conn.execute(
                rollouts.insert().values(
                    package=req.package,
                    version=req.version,
                    canary_sites=canaries,
                    other_sites=others,
                    previous=running,
                    thresholds=req.thresholds.model_dump(mode="json"),
                    min_canary_requests=req.min_canary_requests,
                    min_canary_feedback=req.min_canary_feedback,
                    bake_seconds=req.bake_seconds,
                    state=RolloutState.CANARY,
                    reason="deployed to canary " + ", ".join(canaries),
                    created_at=now,
                    updated_at=now,
                    promoted_at=None,
                )
            ).inserted_primary_key
        except sa.exc.IntegrityError:
            raise ConflictError(
                f"another rollout of package {req.package!r} started at the same time"
            ) from None
        assert rollout_id is not None
        return _to_wire(_locked_row(conn, int(rollout_id[0])))


def advance(db: Database, rollout_id: int, now: float) -> tuple[Rollout, bool]:
    """Take one step of the state machine; returns the rollout and whether its state changed.

    Waits for the rollout's row lock if another transaction holds it, then judges the state
    that transaction left.
    """
    stepped = _step(db, rollout_id, now, skip_locked=False)
    assert stepped is not None  # only a skipped row gives None
    return stepped


def advance_active(db: Database, now: float) -> list[Rollout]:
    """Advance every running rollout no one else is advancing; returns those that moved."""
    with db.read() as conn:
        ids = conn.execute(
            sa.select(rollouts.c.id).where(rollouts.c.state.in_(list(ACTIVE)))
        ).scalars()
        active = list(ids)
    changed = []
    for rollout_id in active:
        stepped = _step(db, rollout_id, now, skip_locked=True)
        if stepped is not None and stepped[1]:
            changed.append(stepped[0])
    return changed


def _step(
    db: Database, rollout_id: int, now: float, skip_locked: bool
) -> tuple[Rollout, bool] | None:
    """One step under the row lock; None when `skip_locked` and another transaction holds it."""
    with db.write() as conn:
        if skip_locked:
            row = conn.execute(
                sa.select(rollouts)
                .where(rollouts.c.id == rollout_id)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:  # locked by another replica (or deleted): it is not ours to move
                return None
        else:
            row = _locked_row(conn, rollout_id)
        state = RolloutState(row.state)
        if state is RolloutState.CANARY:
            new_state, reason = _judge_canary(conn, row, now)
        elif state is RolloutState.PROMOTING:
            new_state, reason = _watch_promotion(conn, row, now)
        else:
            return _to_wire(row), False
        if new_state is not state or reason != row.reason:
            values: dict[str, Any] = {"state": new_state, "reason": reason, "updated_at": now}
            if state is RolloutState.CANARY and new_state is RolloutState.PROMOTING:
                values["promoted_at"] = now
            conn.execute(rollouts.update().where(rollouts.c.id == rollout_id).values(**values))
            row = _locked_row(conn, rollout_id)
        return _to_wire(row), new_state is not state


def roll_back(db: Database, rollout_id: int, reason: str, now: float) -> Rollout:
    """Operator's stop: restore every site's previous version, whatever the policies say."""
    with db.write() as conn:
        row = _locked_row(conn, rollout_id)
        if RolloutState(row.state) not in ACTIVE:
            raise ConflictError(f"rollout {rollout_id} is already {row.state}")
        _restore(conn, row, row.canary_sites + row.other_sites, now)
        conn.execute(
            rollouts.update()
            .where(rollouts.c.id == rollout_id)
            .values(state=RolloutState.ROLLED_BACK, reason=reason, updated_at=now)
        )
        return _to_wire(_locked_row(conn, rollout_id))


def get_rollout(db: Database, rollout_id: int) -> Rollout:
    with db.read() as conn:
        return _to_wire(_row(conn, rollout_id))


def list_rollouts(db: Database) -> list[Rollout]:
    with db.read() as conn:
        rows = conn.execute(sa.select(rollouts).order_by(rollouts.c.id)).all()
    return [_to_wire(r) for r in rows]


def _judge_canary(conn: sa.Connection, row: Any, now: float) -> tuple[RolloutState, str]:
    evidence = canary_evidence(conn, row.canary_sites, row.package, row.version, row.created_at)
    evidence.elapsed_s = now - row.created_at
    judgement = judge_canary(policies_for(_request_of(row)), evidence)
    if judgement.verdict is Verdict.FAIL:
        _restore(conn, row, row.canary_sites, now)
        return RolloutState.ROLLED_BACK, f"canary regressed: {judgement.reason}"
    if judgement.verdict is Verdict.WAIT:
        return RolloutState.CANARY, f"canary: {judgement.reason}"
    if not row.other_sites:
        return RolloutState.DONE, f"canary passed ({judgement.reason}); no other sites"
    set_versions(
        conn,
        row.package,
        {s: dict.fromkeys(row.previous[s], row.version) for s in row.other_sites},
        only_if=None,
        now=now,
    )
    return RolloutState.PROMOTING, f"canary passed ({judgement.reason}); promoting"


def _watch_promotion(conn: sa.Connection, row: Any, now: float) -> tuple[RolloutState, str]:
    evidence = canary_evidence(conn, row.other_sites, row.package, row.version, row.promoted_at)
    if evidence.unhealthy:
        _restore(conn, row, row.canary_sites + row.other_sites, now)
        failed = ", ".join(f"{s}: {d}" for s, d in sorted(evidence.unhealthy.items()))
        return RolloutState.ROLLED_BACK, f"health probe failed after promotion ({failed})"
    if evidence.missing_sites:
        return RolloutState.PROMOTING, "promoting: waiting for " + ", ".join(evidence.missing_sites)
    return RolloutState.DONE, f"running on all {len(row.canary_sites + row.other_sites)} sites"


def _restore(conn: sa.Connection, row: Any, sites: list[str], now: float) -> None:
    previous = {s: row.previous[s] for s in sites if s in row.previous}
    set_versions(conn, row.package, previous, only_if=row.version, now=now)


def _only(
    running: dict[str, dict[str, int]], features: list[str] | None
) -> dict[str, dict[str, int]]:
    """`running` cut down to `features` (all of it when None), sites left with none dropped."""
    if features is None:
        return running
    kept = {s: {f: v for f, v in fs.items() if f in features} for s, fs in running.items()}
    return {s: fs for s, fs in kept.items() if fs}


def _request_of(row: Any) -> RolloutRequest:
    return row_as(RolloutRequest, row)


def _row(conn: sa.Connection, rollout_id: int, lock: bool = False) -> Any:
    query = sa.select(rollouts).where(rollouts.c.id == rollout_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFoundError(f"no rollout {rollout_id}")
    return row


def _locked_row(conn: sa.Connection, rollout_id: int) -> Any:
    return _row(conn, rollout_id, lock=True)


def _to_wire(row: Any) -> Rollout:
    return row_as(Rollout, row)


@router.post(
    "/v1/rollouts",
    summary="Operator: start a staged rollout (canary sites first)",
    status_code=status.HTTP_201_CREATED,
    responses={401: {}, 403: {}, 409: {}, 422: {}},
)
def post_rollout(body: RolloutRequest, ctx: Context, _admin: Admin) -> Rollout:
    rollout = start_rollout(ctx.db, body, ctx.clock.now())
    ctx.metrics.rollout_transitions.labels(rollout.state).inc()
    return rollout


@router.get(
    "/v1/rollouts", summary="Operator: every rollout, oldest first", responses={401: {}, 403: {}}
)
def get_rollouts(ctx: Context, _admin: Admin) -> list[Rollout]:
    return list_rollouts(ctx.db)


@router.get(
    "/v1/rollouts/{rollout_id}",
    summary="Operator: a rollout's state and the reason for it",
    responses={401: {}, 403: {}, 404: {}},
)
def get_one_rollout(rollout_id: RolloutIdPath, ctx: Context, _admin: Admin) -> Rollout:
    rollout, moved = advance(ctx.db, rollout_id, ctx.clock.now())
    if moved:
        ctx.metrics.rollout_transitions.labels(rollout.state).inc()
    return rollout


@router.post(
    "/v1/rollouts/{rollout_id}/rollback",
    summary="Operator: stop a running rollout and restore the previous versions",
    responses={401: {}, 403: {}, 404: {}, 409: {}},
)
def post_rollback(rollout_id: RolloutIdPath, ctx: Context, _admin: Admin) -> Rollout:
    rollout = roll_back(ctx.db, rollout_id, "rolled back by the operator", ctx.clock.now())
    ctx.metrics.rollout_transitions.labels(rollout.state).inc()
    return rollout
