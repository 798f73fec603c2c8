"""Who is calling: per-site and operator bearer tokens, kept only as sha256 hashes.

401 means "no valid credentials" (header missing, malformed, or a token we do not know);
403 means "valid token, not allowed here" (site A on site B's resources, a site on an
operator endpoint). Tokens are issued by `issue_token` (the `tierwise cloud token`
command) and shown once; the database never sees them in clear.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status
from pydantic import TypeAdapter, ValidationError

from tierwise.cloud.context import CloudContext, get_context
from tierwise.cloud.db import Database, tokens
from tierwise.cloud.settings import hash_token
from tierwise.errors import UsageError
from tierwise.wire import Name

HASHED_PREFIX = "sha256:"
_SITE_NAME: TypeAdapter[str] = TypeAdapter(Name)


class Role(StrEnum):
    SITE = "site"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an operator, or the edge of one site."""

    role: Role
    site: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def new_token() -> str:
    """A fresh random token: 256 bits, URL-safe."""
    return "tw_" + secrets.token_urlsafe(32)


def issue_token(db: Database, site: str | None, now: float) -> str:
    """Create a token for `site` (None: an operator token), store its hash, return it once.

    `now` is the issue time, on the cloud's wall clock.
    """
    if site is not None:
        _check_site_name(site)
    token = new_token()
    with db.write() as conn:
        conn.execute(
            tokens.insert().values(
                token_sha256=hash_token(token),
                role=Role.ADMIN if site is None else Role.SITE,
                site=site,
                created_at=now,
            )
        )
    return token


def revoke_site_tokens(db: Database, site: str) -> int:
    """Forget every token of `site`; returns how many there were."""
    with db.write() as conn:
        return conn.execute(tokens.delete().where(tokens.c.site == site)).rowcount


def load_tokens_file(db: Database, path: Path, now: float) -> int:
    """Store the site tokens listed in a JSON file {"site": "token" | "sha256:<hex>"}.

    Clear tokens are hashed before they reach the database; already-known hashes are
    skipped, so loading the same file at every start is harmless. Returns how many were new.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"tokens file {path}: {exc}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise UsageError(f'tokens file {path}: expected a JSON object {{"site": "token"}}')
    rows = []
    for site, value in raw.items():
        _check_site_name(site, where=f"tokens file {path}")
        digest = value[len(HASHED_PREFIX) :] if value.startswith(HASHED_PREFIX) else None
        if digest is not None and not (len(digest) == 64 and _is_hex(digest)):
            raise UsageError(f"tokens file {path}: site {site!r}: sha256 must be 64 hex digits")
        if digest is None and len(value) < 16:
            raise UsageError(f"tokens file {path}: site {site!r}: token shorter than 16 chars")
        rows.append(
            {
                "token_sha256": digest or hash_token(value),
                "role": Role.SITE,
                "site": site,
                "created_at": now,
            }
        )
    if not rows:
        return 0
    with db.write() as conn:
        return len(
            conn.execute(
                db.insert_ignoring_duplicates(tokens).returning(tokens.c.token_sha256), rows
            ).all()
        )


def known_sites(db: Database) -> list[str]:
    """Sites that hold at least one token."""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(tokens.c.site).where(tokens.c.site.is_not(None)).distinct()
        ).all()
    return sorted(r.site for r in rows)


def authenticate(request: Request, ctx: Annotated[CloudContext, Depends(get_context)]) -> Principal:
    """FastAPI dependency: the caller behind the bearer token, or 401."""
    header = request.headers.get("authorization")
    if header is None:
        raise _unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Authorization header must be 'Bearer <token>'")
    digest = hash_token(token)
    admin = ctx.settings.admin_token_sha256
    if admin is not None and hmac.compare_digest(digest, admin):
        return Principal(Role.ADMIN)
    # The lookup is by hash, so its timing says nothing about the token's characters.
    with ctx.db.read() as conn:
        row = conn.execute(
            sa.select(tokens.c.role, tokens.c.site).where(tokens.c.token_sha256 == digest)
        ).first()
    if row is None:
        raise _unauthorized("unknown token")
    return Principal(Role(row.role), row.site)


Caller = Annotated[Principal, Depends(authenticate)]


def require_admin(caller: Caller) -> Principal:
    """FastAPI dependency: an operator token, or 403."""
    if not caller.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this endpoint needs an operator token")
    return caller


def require_site_or_admin(site: str, caller: Caller) -> Principal:
    """FastAPI dependency: the token of the site named in the path, or an operator's."""
    if not caller.is_admin and caller.site != site:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"token is not valid for site {site!r}")
    return caller


def require_site(site: str, caller: Caller) -> Principal:
    """FastAPI dependency: exactly the token of the site named in the path (it writes as it)."""
    if caller.site != site:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"only site {site!r}'s own token may write its data"
        )
    return caller


def require_any_site(caller: Caller) -> Principal:
    """FastAPI dependency: any site's token or an operator's (e.g. cloud inference)."""
    return caller


Admin = Annotated[Principal, Depends(require_admin)]
SiteOrAdmin = Annotated[Principal, Depends(require_site_or_admin)]
SiteItself = Annotated[Principal, Depends(require_site)]
AnyCaller = Annotated[Principal, Depends(require_any_site)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _check_site_name(site: str, where: str = "site") -> None:
    try:
        _SITE_NAME.validate_python(site)
    except ValidationError:
        raise UsageError(
            f"{where}: site name {site!r} must be 1-128 letters, digits, '.', '_' or '-'"
        ) from None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
