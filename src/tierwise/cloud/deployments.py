"""Which package version each site runs for each feature, and how requests are routed there.

An operator assigns (site, feature) → package version + placement; rollouts change the
version of those assignments; an edge pulls the result as one `Deployment` whose `etag`
changes whenever anything in it does (it answers 304 to a matching If-None-Match). With
`?wait=S` the pull is a long-poll: an unchanged answer is held until a change to the site's
assignments commits, on any replica (`tierwise.cloud.changes`), or S seconds pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Response, status
from starlette.concurrency import run_in_threadpool

from tierwise.cloud.auth import Admin, SiteOrAdmin, known_sites
from tierwise.cloud.changes import deployment_key
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, announce, assignments, cloud_models, packages, row_as
from tierwise.cloud.params import FeaturePath, SitePath
from tierwise.errors import NotFoundError, UnprocessableError
from tierwise.wire import (
    CloudModelAssignment,
    Deployment,
    FeatureAssignment,
    FeatureDeployment,
)

MAX_WAIT_S = 60.0  # longer holds only risk a proxy's idle timeout cutting them
WAIT_HEADER = "Tierwise-Wait"  # on an answer to `wait`: the seconds the cloud held (or would)

router = APIRouter(tags=["deployments"])
Context = Annotated[CloudContext, Depends(get_context)]


def package_sha256(conn: sa.Connection, name: str, version: int) -> str:
    """The archive hash of a registered package, or UnprocessableError if it is not registered."""
    sha = conn.execute(
        sa.select(packages.c.sha256).where(packages.c.name == name, packages.c.version == version)
    ).scalar()
    if sha is None:
        raise UnprocessableError(f"package {name!r} version {version} is not in the registry")
    return str(sha)


def package_variants(conn: sa.Connection, name: str, version: int) -> list[str]:
    """The variant names the registered package's manifest lists."""
    manifest = conn.execute(
        sa.select(packages.c.manifest).where(packages.c.name == name, packages.c.version == version)
    ).scalar()
    return [str(v["name"]) for v in (manifest or {}).get("variants", [])]


def check_variant(
    conn: sa.Connection,
    name: str,
    version: int,
    variant: str | None,
    known: list[str] | None = None,
) -> None:
    """Refuse (422) a variant the registered package's manifest does not list: the edge would
    refuse the deployment anyway, later and at every site. `known`: that list, if read."""
    if variant is None:
        return
    known = known if known is not None else package_variants(conn, name, version)
    if variant not in known:
        raise UnprocessableError(
            f"package {name!r} version {version} has no variant {variant!r}; "
            f"it has {', '.join(known)}"
        )


def assign_feature(db: Database, site: str, feature: str, a: FeatureAssignment, now: float) -> None:
    """Make `site` run `a.package` at `a.version` (its `a.variant`) for `feature`, routed per
    `a.placement`."""
    with db.write() as conn:
        package_sha256(conn, a.package, a.version)
        check_variant(conn, a.package, a.version, a.variant)
        values = a.model_dump(mode="json") | {"updated_at": now}
        conn.execute(
            db.upsert(assignments, ["site", "feature"], list(values)),
            [values | {"site": site, "feature": feature}],
        )
        announce(conn, {deployment_key(site)})


def unassign_feature(db: Database, site: str, feature: str) -> None:
    with db.write() as conn:
        deleted = conn.execute(
            assignments.delete().where(assignments.c.site == site, assignments.c.feature == feature)
        ).rowcount
        announce(conn, {deployment_key(site)})
    if not deleted:
        raise NotFoundError(f"site {site!r} has no feature {feature!r}")


def deployment_for(db: Database, site: str) -> Deployment:
    """Everything `site` should run, with package hashes, as the edge pulls it."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(assignments, packages.c.sha256)
            .join(
                packages,
                sa.and_(
                    packages.c.name == assignments.c.package,
                    packages.c.version == assignments.c.version,
                ),
            )
            .where(assignments.c.site == site)
            .order_by(assignments.c.feature)
        ).all()
    features = {r.feature: row_as(FeatureDeployment, r) for r in rows}
    canonical = json.dumps(
        {k: v.model_dump(mode="json") for k, v in features.items()}, sort_keys=True
    )
    etag = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return Deployment(site=site, features=features, etag=etag)


def variants_running(conn: sa.Connection, package: str) -> dict[str, set[str]]:
    """{variant: {site, ...}} for every assignment of `package` that names a variant."""
    rows = conn.execute(
        sa.select(assignments.c.site, assignments.c.variant).where(
            assignments.c.package == package, assignments.c.variant.is_not(None)
        )
    ).all()
    running: dict[str, set[str]] = {}
    for r in rows:
        running.setdefault(str(r.variant), set()).add(str(r.site))
    return running


def sites_running(conn: sa.Connection, package: str) -> dict[str, dict[str, int]]:
    """{site: {feature: version}} for every assignment of `package`."""
    rows = conn.execute(
        sa.select(assignments.c.site, assignments.c.feature, assignments.c.version).where(
            assignments.c.package == package
        )
    ).all()
    running: dict[str, dict[str, int]] = {}
    for r in rows:
        running.setdefault(r.site, {})[r.feature] = r.version
    return running


def set_versions(
    conn: sa.Connection,
    package: str,
    versions: dict[str, dict[str, int]],
    only_if: int | None,
    now: float,
) -> None:
    """Point (site, feature) assignments of `package` at new versions.

    With `only_if`, an assignment changes only if it still runs that version: a rollback
    must not undo an operator's later, deliberate change.
    """
    for site, features in versions.items():
        for feature, version in features.items():
            where = [
                assignments.c.site == site,
                assignments.c.feature == feature,
                assignments.c.package == package,
            ]
            if only_if is not None:
                where.append(assignments.c.version == only_if)
            conn.execute(assignments.update().where(*where).values(version=version, updated_at=now))
    announce(conn, {deployment_key(site) for site in versions})


def set_cloud_model(db: Database, feature: str, a: CloudModelAssignment) -> None:
    """Make `a.package` at `a.version` answer `/v1/infer/{feature}`."""
    with db.write() as conn:
        package_sha256(conn, a.package, a.version)
        conn.execute(
            db.upsert(cloud_models, ["feature"], ["package", "version"]),
            [{"feature": feature, "package": a.package, "version": a.version}],
        )


def cloud_model_of(db: Database, feature: str) -> tuple[str, int]:
    with db.read() as conn:
        row = conn.execute(
            sa.select(cloud_models.c.package, cloud_models.c.version).where(
                cloud_models.c.feature == feature
            )
        ).first()
    if row is None:
        raise NotFoundError(f"feature {feature!r} has no cloud model")
    return str(row.package), int(row.version)


@router.get(
    "/v1/sites/{site}/deployment",
    summary="What this site should run (304 if If-None-Match matches the etag); with `wait`, "
    "a long-poll that answers when the deployment changes or the wait is over",
    response_model=Deployment,
    responses={304: {"description": "unchanged"}, 401: {}, 403: {}},
)
async def get_deployment(
    site: SitePath,
    ctx: Context,
    _caller: SiteOrAdmin,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=3600,
            description=f"seconds to hold an unchanged answer (at most {MAX_WAIT_S:g} are used)",
        ),
    ] = 0.0,
) -> Response | Deployment:
    known = None if if_none_match is None else if_none_match.strip().strip('"')
    wait = min(wait, MAX_WAIT_S)
    with ctx.changes.watching(site) as changed:
        deployment = await run_in_threadpool(deployment_for, ctx.db, site)
        if wait > 0 and deployment.etag == known and not ctx.changes.released:
            deployment = await _until_changed(ctx, site, known, changed, wait)
    headers = {"ETag": f'"{deployment.etag}"'}
    if wait > 0:
        headers[WAIT_HEADER] = f"{wait:g}"  # tells the agent it may poll again right away
    if deployment.etag == known:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return deployment


async def _until_changed(
    ctx: CloudContext, site: str, etag: str, changed: asyncio.Event, wait: float
) -> Deployment:
    """Hold until `site`'s deployment no longer has `etag` or `wait` seconds passed (on the
    app's clock); returns the deployment as it is then."""
    clock = ctx.clock
    deadline = clock.deadline(wait)
    ctx.metrics.deployment_polls_held.inc()  # after the deadline is set: tests wait for this
    try:
        while True:
            recheck = ctx.changes.recheck_s
            until = deadline if recheck is None else min(deadline, clock.now() + recheck)
            await _first_of(changed.wait(), clock.wait_until(until))
            changed.clear()
            deployment = await run_in_threadpool(deployment_for, ctx.db, site)
            if deployment.etag != etag or clock.remaining(deadline) <= 0 or ctx.changes.released:
                return deployment
    finally:
        ctx.metrics.deployment_polls_held.dec()


async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@router.put(
    "/v1/sites/{site}/features/{feature}",
    summary="Operator: assign a package version and routing to a site's feature",
    responses={401: {}, 403: {}, 422: {}},
)
def put_feature(
    site: SitePath, feature: FeaturePath, body: FeatureAssignment, ctx: Context, _admin: Admin
) -> Deployment:
    assign_feature(ctx.db, site, feature, body, ctx.clock.now())
    return deployment_for(ctx.db, site)


@router.delete(
    "/v1/sites/{site}/features/{feature}",
    summary="Operator: stop running a feature at a site",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {}, 403: {}, 404: {}},
)
def delete_feature(site: SitePath, feature: FeaturePath, ctx: Context, _admin: Admin) -> None:
    unassign_feature(ctx.db, site, feature)


@router.put(
    "/v1/cloud-models/{feature}",
    summary="Operator: choose the package that answers cloud inference for a feature",
    responses={401: {}, 403: {}, 422: {}},
)
def put_cloud_model(
    feature: FeaturePath, body: CloudModelAssignment, ctx: Context, _admin: Admin
) -> CloudModelAssignment:
    set_cloud_model(ctx.db, feature, body)
    return body


@router.get(
    "/v1/sites",
    summary="Operator: sites known by token or by assignment",
    responses={401: {}, 403: {}},
)
def get_sites(ctx: Context, _admin: Admin) -> list[str]:
    with ctx.db.read() as conn:
        assigned = conn.execute(sa.select(assignments.c.site).distinct()).scalars().all()
    return sorted(set(assigned) | set(known_sites(ctx.db)))
