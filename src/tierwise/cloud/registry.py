"""The package registry: signed packages in, verified before anyone can deploy them.

An upload is a tar.gz of a package directory (manifest.json, model files, signature).
It is streamed to disk (never held in memory), unpacked with tarfile's "data" filter
(no absolute paths, no `..`, no links out, no devices), and checked by
`tierwise.package.verify_package` against the trusted keys, with the registry's newest
version of that model as the installed one — so a tampered archive and an older
version are both refused, and the registry is unchanged. Accepted archives are stored
content-addressed (`<sha256>.tar.gz`); the database keeps name, version, hash, manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from tierwise.cloud.auth import Admin, AnyCaller
from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, packages, row_as
from tierwise.cloud.params import PackagePath, VersionPath
from tierwise.errors import ConflictError, NotFoundError, UnprocessableError, VerificationError
from tierwise.package.archive import unpack_archive
from tierwise.wire import ARCHIVE_MEDIA_TYPE, PackageInfo

TrustedKeys = dict[str, Any]  # key id -> Ed25519 public key (tierwise.package.keys)

UNPACKED_SIZE_FACTOR = 8  # refuse archives that unpack to more than 8x the upload limit

router = APIRouter(tags=["packages"])
Context = Annotated[CloudContext, Depends(get_context)]


def register_archive(
    db: Database,
    store: Path,
    archive: Path,
    trusted_keys: TrustedKeys,
    max_unpacked_bytes: int,
    now: float,
) -> tuple[PackageInfo, bool]:
    """Verify an uploaded archive and add it to the registry; returns (info, newly added).

    Raises UnprocessableError (unreadable or refused by verification) or ConflictError (a version
    not newer than the registry's). Re-uploading the exact archive already registered
    under its name and version is a no-op, so an interrupted upload can be retried.
    `now` is the upload time the registry records.
    """
    sha256, size = _hash_file(archive)
    with tempfile.TemporaryDirectory(prefix="tierwise-upload-") as tmp:
        root = _unpack(archive, Path(tmp), max_unpacked_bytes)
        name, version = _manifest_identity(root)
        with db.read() as conn:
            existing = _package_row(conn, name, version)
            newest = conn.execute(
                sa.select(sa.func.max(packages.c.version)).where(packages.c.name == name)
            ).scalar()
        if existing is not None:
            if existing.sha256 == sha256:
                return _to_info(existing), False
            raise ConflictError(f"package {name!r} version {version} is already registered")
        if newest is not None and version <= newest:
            raise ConflictError(
                f"package {name!r} version {version} is not newer than the registry's {newest}"
            )
        manifest = _verify(root, trusted_keys, newest)
    store.mkdir(parents=True, exist_ok=True)
    final = store / f"{sha256}.tar.gz"
    if not final.exists():
        staged = store / f".{sha256}.{os.getpid()}.partial"
        shutil.copyfile(archive, staged)
        os.replace(staged, final)  # readers see the whole archive or none
    with db.write() as conn:
        inserted = conn.execute(
            db.insert_ignoring_duplicates(packages).returning(packages.c.version),
            [
                {
                    "name": name,
                    "version": version,
                    "sha256": sha256,
                    "size": size,
                    "manifest": manifest,
                    "uploaded_at": now,
                }
            ],
        ).all()
        newest_now = conn.execute(
            sa.select(sa.func.max(packages.c.version)).where(packages.c.name == name)
        ).scalar()
        if not inserted or newest_now != version:
            # Another upload (on this replica or another) registered a newer version first:
            # raising inside the transaction undoes our insert, so versions stay monotonic.
            raise ConflictError(
                f"package {name!r} version {version} lost a race with another upload"
            )
    return PackageInfo(name=name, version=version, sha256=sha256, size=size, uploaded_at=now), True


def archive_of(db: Database, store: Path, name: str, version: int) -> tuple[Path, str]:
    """Path and sha256 of a registered package's archive."""
    with db.read() as conn:
        row = _package_row(conn, name, version)
    if row is None:
        raise NotFoundError(f"no package {name!r} version {version}")
    return store / f"{row.sha256}.tar.gz", str(row.sha256)


def unpacked_package(db: Database, store: Path, name: str, version: int, into: Path) -> Path:
    """Unpack a registered package under `into` (e.g. for cloud inference); returns its root."""
    archive, _sha = archive_of(db, store, name, version)
    return _unpack(archive, into, max_bytes=2**40)


def list_packages(db: Database) -> list[PackageInfo]:
    with db.read() as conn:
        rows = conn.execute(sa.select(packages).order_by(packages.c.name, packages.c.version)).all()
    return [_to_info(r) for r in rows]


def _verify(root: Path, trusted_keys: TrustedKeys, newest: int | None) -> dict[str, Any]:
    """Signature, hashes and version check by the package module; returns the manifest."""
    from tierwise.package import verify_package

    if not trusted_keys:
        raise UnprocessableError("the registry trusts no key (set TIERWISE_CLOUD_TRUSTED_KEYS)")
    try:
        manifest = verify_package(root, trusted_keys, newest)
    except VerificationError as exc:
        raise UnprocessableError(f"package refused: {exc}") from None
    return dict(manifest.model_dump(mode="json"))


def _manifest_identity(root: Path) -> tuple[str, int]:
    """Name and version from manifest.json, before (and independent of) verification."""
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        name, version = manifest["name"], manifest["version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnprocessableError(f"package manifest.json unreadable: {exc}") from None
    if not isinstance(name, str) or not isinstance(version, int) or isinstance(version, bool):
        raise UnprocessableError("package manifest.json: name must be a string, version an integer")
    if not 1 <= version < 2**31:
        raise UnprocessableError(f"package manifest.json: version {version} out of range")
    return name, version


def _unpack(archive: Path, into: Path, max_bytes: int) -> Path:
    """Extract safely (tierwise.package.archive) and return the package root."""
    try:
        return unpack_archive(archive, into, max_bytes)
    except VerificationError as exc:
        raise UnprocessableError(str(exc)) from None


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _package_row(conn: sa.Connection, name: str, version: int) -> Any:
    return conn.execute(
        sa.select(packages).where(packages.c.name == name, packages.c.version == version)
    ).first()


def _to_info(row: Any) -> PackageInfo:
    return row_as(PackageInfo, row)


@router.post(
    "/v1/packages",
    summary="Operator: upload a signed package (tar.gz); verified before it is registered",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "this exact archive was already registered", "model": PackageInfo},
        401: {},
        403: {},
        409: {"description": "version not newer than the registry's"},
        413: {},
        422: {"description": "unreadable archive or refused by verification"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {ARCHIVE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def post_package(request: Request, ctx: Context, _admin: Admin) -> Any:
    store = ctx.settings.package_dir
    (store / "incoming").mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=store / "incoming", suffix=".tar.gz")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():  # BodySizeLimit stops this at the cap
                out.write(chunk)
        info, added = await run_in_threadpool(
            register_archive,
            ctx.db,
            store,
            tmp,
            ctx.trusted_keys,
            ctx.settings.max_package_bytes * UNPACKED_SIZE_FACTOR,
            ctx.clock.now(),
        )
    except (ConflictError, UnprocessableError) as exc:
        result = "conflict" if isinstance(exc, ConflictError) else "refused"
        ctx.metrics.package_uploads.labels(result).inc()
        raise
    finally:
        tmp.unlink(missing_ok=True)
    ctx.metrics.package_uploads.labels("accepted" if added else "unchanged").inc()
    return JSONResponse(info.model_dump(mode="json"), status_code=201 if added else 200)


@router.get(
    "/v1/packages",
    summary="Every registered package, by name and version",
    responses={401: {}},
)
def get_packages(ctx: Context, _caller: AnyCaller) -> list[PackageInfo]:
    return list_packages(ctx.db)


@router.get(
    "/v1/packages/{name}/{version}",
    summary="Download a package archive (X-Sha256 header carries its hash)",
    response_class=FileResponse,
    responses={
        200: {"content": {ARCHIVE_MEDIA_TYPE: {}}},
        401: {},
        404: {},
    },
)
def get_package(
    name: PackagePath, version: VersionPath, ctx: Context, _caller: AnyCaller
) -> FileResponse:
    path, sha256 = archive_of(ctx.db, ctx.settings.package_dir, name, version)
    if not path.is_file():
        raise NotFoundError(f"package {name!r} version {version}: archive missing from the store")
    return FileResponse(
        path,
        media_type=ARCHIVE_MEDIA_TYPE,
        filename=f"{name}-{version}.tar.gz",
        headers={"X-Sha256": sha256, "ETag": f'"{sha256}"'},
    )
