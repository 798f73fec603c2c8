"""How the cloud service is configured: a typed value object filled from TIERWISE_CLOUD_* vars.

Every field has a `DEFAULT_*` constant and an environment variable named after it
(`db_url` ← `TIERWISE_CLOUD_DB_URL`). The CLI builds a `Settings` from its options; tests
build one directly. Secrets never live here in clear: the admin token is hashed on the way in.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierwise.errors import UsageError

ENV_PREFIX = "TIERWISE_CLOUD_"
DEFAULT_DATA_DIR = Path("tierwise-cloud")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # a 10,000-event telemetry batch is about 2 MiB
DEFAULT_MAX_PACKAGE_BYTES = 256 * 1024 * 1024
DEFAULT_EVALUATE_INTERVAL_S = 1.0
# A site is shown offline after this long without a status report or telemetry: three edge
# status intervals (5 s by default) missed in a row.
DEFAULT_SITE_OFFLINE_AFTER_S = 15.0


def hash_token(token: str) -> str:
    """The only form in which a token is kept: hex sha256 of its UTF-8 bytes.

    Tokens are 256-bit random strings (see auth.new_token), so a fast unsalted hash is
    enough: there is no dictionary to attack, unlike a password.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Settings(BaseModel):
    """Everything `create_app` needs; immutable once the service starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///<data_dir>/cloud.db"
    )
    db_schema: str | None = Field(None, description="PostgreSQL schema to use (tests use one each)")
    data_dir: Path = DEFAULT_DATA_DIR
    admin_token_sha256: str | None = Field(
        None, description="sha256 of an operator token accepted besides those in the database"
    )
    tokens_file: Path | None = Field(
        None, description='JSON {"site": "token" | "sha256:<hex>"} loaded into the database'
    )
    trusted_keys: tuple[Path, ...] = Field((), description="public keys packages must be signed by")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0)
    max_package_bytes: int = Field(DEFAULT_MAX_PACKAGE_BYTES, gt=0)
    metrics_public: bool = Field(True, description="False: /metrics needs the admin token")
    evaluate_interval_s: float = Field(DEFAULT_EVALUATE_INTERVAL_S, gt=0)
    replica: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="this process's name in the Tierwise-Replica header of every answer",
    )
    site_offline_after_s: float = Field(
        DEFAULT_SITE_OFFLINE_AFTER_S, gt=0, description="silence after which a site is offline"
    )

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'cloud.db'}"

    @property
    def package_dir(self) -> Path:
        return self.data_dir / "packages"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from TIERWISE_CLOUD_* variables, then `overrides` (non-None ones win)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw.split(os.pathsep) if name == "trusted_keys" else raw
        admin = env.get(ENV_PREFIX + "ADMIN_TOKEN")
        if admin:
            values["admin_token_sha256"] = hash_token(admin)
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            var = ENV_PREFIX + where.upper()
            raise UsageError(f"cloud setting {where} ({var}): {first['msg']}") from None
