"""Settings come from TIERWISE_CLOUD_* variables and options; secrets are kept hashed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tierwise.cloud import Settings, create_app
from tierwise.cloud.settings import hash_token
from tierwise.errors import UsageError

from .support import Cloud, bearer


def test_environment_fills_settings_and_options_win() -> None:
    env = {
        "TIERWISE_CLOUD_DB_URL": "sqlite:///x.db",
        "TIERWISE_CLOUD_TRUSTED_KEYS": "/keys/a.pub:/keys/b.pub",
        "TIERWISE_CLOUD_MAX_BODY_BYTES": "1000",
        "TIERWISE_CLOUD_METRICS_PUBLIC": "false",
        "TIERWISE_CLOUD_ADMIN_TOKEN": "tw_operator-0123456789",
    }
    settings = Settings.from_env(env, max_body_bytes=2000, db_url=None)
    assert settings.database_url == "sqlite:///x.db"
    assert settings.trusted_keys == (Path("/keys/a.pub"), Path("/keys/b.pub"))
    assert settings.max_body_bytes == 2000
    assert settings.metrics_public is False
    assert settings.admin_token_sha256 == hash_token("tw_operator-0123456789")
    assert "tw_operator-0123456789" not in repr(settings)


def test_default_database_lives_in_the_data_dir() -> None:
    settings = Settings.from_env({}, data_dir=Path("/srv/tw"))
    assert settings.database_url == "sqlite:////srv/tw/cloud.db"
    assert settings.package_dir == Path("/srv/tw/packages")


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(UsageError, match="TIERWISE_CLOUD_MAX_BODY_BYTES"):
        Settings.from_env({"TIERWISE_CLOUD_MAX_BODY_BYTES": "lots"})


def test_private_metrics_need_the_operator_token(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"TIERWISE_CLOUD_ADMIN_TOKEN": "tw_operator-0123456789"},
        data_dir=tmp_path,
        metrics_public=False,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer("tw_operator-0123456789")).status_code == 200


def test_unreadable_trusted_key_stops_the_start(tmp_path: Path) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path, trusted_keys=(tmp_path / "nope.pub",))
    with pytest.raises(UsageError, match=r"nope\.pub"):
        create_app(settings)


def test_every_answer_names_its_replica(cloud: Cloud) -> None:
    response = cloud.client.get("/healthz")
    assert response.headers["Tierwise-Replica"] == cloud.settings.replica
    refused = cloud.client.get("/v1/sites/a/deployment")  # no token: 401, still named
    assert refused.status_code == 401
    assert refused.headers["Tierwise-Replica"] == cloud.settings.replica


def test_a_replica_name_is_a_plain_token() -> None:
    with pytest.raises(UsageError, match="replica"):
        Settings.from_env({"TIERWISE_CLOUD_REPLICA": "a b"})
