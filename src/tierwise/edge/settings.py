"""How one edge agent is configured: a typed value object, from the CLI or TIERWISE_EDGE_* vars."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tierwise.edge.feedback import REPORT_EVERY_S
from tierwise.edge.field_sample import DEFAULT_FIELD_ROWS, FIELD_DIR, SAVE_EVERY_S
from tierwise.edge.outbox import DEFAULT_CAP_BYTES, Durability
from tierwise.edge.router import DEFAULT_RESERVE_FRACTION
from tierwise.edge.uploader import DEFAULT_INTERVAL_S
from tierwise.errors import UsageError
from tierwise.rules.outbox import DropPolicy

ENV_PREFIX = "TIERWISE_EDGE_"
DEFAULT_PORT = 8700
DEFAULT_POLL_INTERVAL_S = 2.0
# How long the cloud may hold an unchanged deployment poll; below a proxy's idle timeout.
DEFAULT_DEPLOYMENT_WAIT_S = 25.0
DEFAULT_STATUS_INTERVAL_S = 5.0
DEFAULT_DRAIN_TIMEOUT_S = 10.0
DEFAULT_RTT_PRIOR_S = 0.1  # budgeted until real round trips have been seen
# How long the broker keeps the agent's MQTT session (subscription and queued requests)
# while the agent is away: a restart, an upgrade, a gateway reboot.
DEFAULT_MQTT_SESSION_EXPIRY_S = 24 * 3600
# Requests the broker may have in flight to the agent at once (MQTT v5 Receive Maximum):
# the agent's concurrency over MQTT, as connections are over HTTP.
DEFAULT_MQTT_RECEIVE_MAXIMUM = 256


class EdgeSettings(BaseModel):
    """Everything an `EdgeAgent` needs besides its link to the cloud."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    cloud_url: str = Field(description="the cloud service, e.g. http://127.0.0.1:8000")
    token: str = Field(min_length=1, description="this site's bearer token", repr=False)
    data_dir: Path = Field(description="outbox, installed packages, last deployment")
    trusted_keys: tuple[Path, ...] = Field((), description="public keys packages must be signed by")
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    poll_interval_s: float = Field(
        DEFAULT_POLL_INTERVAL_S,
        gt=0,
        description="seconds between deployment polls (and between retries) when not long-polling",
    )
    deployment_wait_s: float = Field(
        DEFAULT_DEPLOYMENT_WAIT_S,
        ge=0,
        le=60,
        description="long-poll: how long the cloud may hold an unchanged deployment (0: off)",
    )
    status_interval_s: float = Field(DEFAULT_STATUS_INTERVAL_S, gt=0)
    upload_interval_s: float = Field(DEFAULT_INTERVAL_S, gt=0)
    drain_timeout_s: float = Field(DEFAULT_DRAIN_TIMEOUT_S, ge=0)
    outbox_cap_bytes: int = Field(DEFAULT_CAP_BYTES, gt=0)
    drop_policy: DropPolicy = DropPolicy.DROP_OLDEST
    durability: Durability = Durability.PROCESS
    rtt_prior_s: float = Field(DEFAULT_RTT_PRIOR_S, gt=0)
    reserve_fraction: float = Field(
        DEFAULT_RESERVE_FRACTION,
        ge=0,
        lt=1,
        description="share of a deadline kept for recording and responding",
    )
    field_rows: int = Field(
        DEFAULT_FIELD_ROWS,
        ge=0,
        le=1_000_000,
        description="labelled rows kept per feature for retraining at the site (0: none)",
    )
    field_save_interval_s: float = Field(
        SAVE_EVERY_S, gt=0, description="at most how often the field sample is written to disk"
    )
    feedback_interval_s: float = Field(
        REPORT_EVERY_S,
        gt=0,
        description="at most how often a feature's feedback summary is reported (once due)",
    )

    mqtt_url: str | None = Field(
        None, description="the site's MQTT broker, mqtt://HOST[:PORT] or mqtts:// (TLS)"
    )
    mqtt_username: str | None = Field(None, min_length=1)
    mqtt_password: str | None = Field(None, repr=False)
    mqtt_ca_file: Path | None = Field(None, description="mqtts: CA of the broker's certificate")
    mqtt_client_id: str | None = Field(
        None, min_length=1, max_length=128, description="default: tierwise-edge-SITE"
    )
    mqtt_topic_prefix: str = Field("tierwise", pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
    mqtt_session_expiry_s: int = Field(DEFAULT_MQTT_SESSION_EXPIRY_S, ge=0, le=2**32 - 1)
    mqtt_receive_maximum: int = Field(DEFAULT_MQTT_RECEIVE_MAXIMUM, ge=1, le=65535)

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"

    @property
    def packages_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def field_dir(self) -> Path:
        """The field sample's files (edge/field_sample.py): site-local, never uploaded."""
        return self.data_dir / FIELD_DIR

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> EdgeSettings:
        """Settings from TIERWISE_EDGE_* variables, then `overrides` (non-None ones win)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw:
                values[name] = raw.split(os.pathsep) if name == "trusted_keys" else raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            env_name = ENV_PREFIX + where.upper()
            raise UsageError(f"edge setting {where} ({env_name}): {first['msg']}") from None
