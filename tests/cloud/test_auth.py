"""Every endpoint refuses a missing or unknown token (401) and a token out of its scope (403)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tierwise.cloud.auth import issue_token, load_tokens_file, revoke_site_tokens
from tierwise.cloud.db import Database, tokens
from tierwise.cloud.settings import hash_token
from tierwise.errors import UsageError

from .support import EPOCH, Cloud, bearer

# Who may call each operation: an operator only, the site named in the path only (it writes
# as that site), that site or an operator, or any valid token. Public endpoints are absent.
SCOPES = {
    ("POST", "/v1/packages"): "admin",
    ("GET", "/v1/packages"): "any",
    ("GET", "/v1/packages/{name}/{version}"): "any",
    ("GET", "/v1/sites"): "admin",
    ("GET", "/v1/sites/{site}/deployment"): "site_or_admin",
    ("PUT", "/v1/sites/{site}/features/{feature}"): "admin",
    ("DELETE", "/v1/sites/{site}/features/{feature}"): "admin",
    ("PUT", "/v1/cloud-models/{feature}"): "admin",
    ("POST", "/v1/sites/{site}/status"): "site_itself",
    ("POST", "/v1/rollouts"): "admin",
    ("GET", "/v1/rollouts"): "admin",
    ("GET", "/v1/rollouts/{rollout_id}"): "admin",
    ("POST", "/v1/rollouts/{rollout_id}/rollback"): "admin",
    ("POST", "/v1/sites/{site}/telemetry"): "site_itself",
    ("GET", "/v1/sites/{site}/telemetry"): "site_or_admin",
    ("GET", "/v1/sites/{site}/streams"): "site_or_admin",
    ("GET", "/v1/drift"): "admin",
    ("PUT", "/v1/plan"): "admin",
    ("GET", "/v1/cost"): "admin",
    ("GET", "/v1/sites/{site}/drift"): "site_or_admin",
    ("GET", "/v1/sites/{site}/feedback/{feature}"): "admin",
    ("POST", "/v1/infer/{feature}"): "any",
    ("GET", "/v1/fleet"): "any",  # filtered to what the token may see (test_dashboard_api)
    ("GET", "/v1/sites/{site}/live"): "site_or_admin",
}
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}
PATH_VALUES = {"site": "b", "feature": "f", "name": "p", "version": "1", "rollout_id": "1"}


def operations(cloud: Cloud) -> set[tuple[str, str]]:
    spec = cloud.client.get("/openapi.json").json()
    return {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)


def call(cloud: Cloud, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs: dict[str, object] = {"headers": headers}
    if method in ("POST", "PUT"):
        kwargs["json"] = {}  # valid JSON; auth is checked before the body's fields
    if path.endswith("/telemetry") and method == "GET":
        kwargs["params"] = {"stream": "s"}
    return cloud.client.request(method, concrete(path), **kwargs).status_code  # type: ignore[arg-type]


def test_scope_table_covers_every_operation(cloud: Cloud) -> None:
    assert operations(cloud) == set(SCOPES) | PUBLIC


def test_missing_malformed_or_unknown_token_is_401_everywhere(cloud: Cloud) -> None:
    no_credentials = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YTpi"},
        bearer("tw_not-a-token-we-issued"),
    ]
    wrong = [
        (method, path, headers, code)
        for method, path in sorted(SCOPES)
        for headers in no_credentials
        if (code := call(cloud, method, path, headers)) != 401
    ]
    assert wrong == []


def test_token_outside_its_scope_is_403_everywhere(cloud: Cloud) -> None:
    # Site a's token on site b's path or on an operator endpoint; the operator writing as a site.
    expected = {
        op: {"site_a": 403, "admin": 403 if scope == "site_itself" else None}
        for op, scope in SCOPES.items()
        if scope != "any"
    }
    wrong = []
    for (method, path), codes in sorted(expected.items()):
        for who, headers in (("site_a", cloud.site_a), ("admin", cloud.admin)):
            want = codes[who]
            if want is not None and (got := call(cloud, method, path, headers)) != want:
                wrong.append((method, path, who, got))
    assert wrong == []


def test_401_says_how_to_authenticate(cloud: Cloud) -> None:
    response = cloud.client.get("/v1/sites/a/deployment")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization" in response.json()["detail"]


def test_public_endpoints_need_no_token(cloud: Cloud) -> None:
    assert cloud.client.get("/healthz").json() == {"status": "ok"}
    assert cloud.client.get("/metrics").status_code == 200


def test_tokens_are_stored_only_as_hashes(cloud: Cloud) -> None:
    token = issue_token(cloud.db, "c", cloud.clock.now())
    with cloud.db.read() as conn:
        stored = conn.execute(sa.select(tokens)).all()
    assert all(token not in str(tuple(row)) for row in stored)
    assert hash_token(token) in {row.token_sha256 for row in stored}
    assert cloud.client.get("/v1/sites/c/deployment", headers=bearer(token)).status_code == 200


def test_revoked_token_is_401(cloud: Cloud) -> None:
    token = issue_token(cloud.db, "c", cloud.clock.now())
    assert revoke_site_tokens(cloud.db, "c") == 1
    assert cloud.client.get("/v1/sites/c/deployment", headers=bearer(token)).status_code == 401


def test_operator_token_from_the_database_is_admin(cloud: Cloud) -> None:
    token = issue_token(cloud.db, None, cloud.clock.now())
    assert cloud.client.get("/v1/sites", headers=bearer(token)).status_code == 200


def test_tokens_file_accepts_clear_and_hashed_tokens(database: Database, tmp_path: Path) -> None:
    clear = "tw_clear-token-0123456789"
    hashed = "tw_hashed-token-0123456789"
    path = tmp_path / "tokens.json"
    path.write_text(f'{{"x": "{clear}", "y": "sha256:{hash_token(hashed)}"}}')
    assert load_tokens_file(database, path, EPOCH) == 2
    assert load_tokens_file(database, path, EPOCH) == 0  # loading again at every start is harmless
    with database.read() as conn:
        rows = {r.site: r.token_sha256 for r in conn.execute(sa.select(tokens)).all()}
    assert rows == {"x": hash_token(clear), "y": hash_token(hashed)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"x": "short"}', "shorter than 16"),
        ('{"bad site": "tw_0123456789abcdef"}', "site name"),
        ('{"x": "sha256:zz"}', "64 hex digits"),
        ("{", "tokens file"),
    ],
)
def test_bad_tokens_file_names_the_problem(
    database: Database, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_tokens_file(database, path, EPOCH)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sites/bad%20site/deployment",
        "/v1/sites/-dash-first/streams",
        "/v1/rollouts/0",
        "/v1/rollouts/99999999999",
        "/v1/packages/wine/0",
        "/v1/packages/wine/one",
    ],
)
def test_malformed_path_parameters_are_422(cloud: Cloud, path: str) -> None:
    assert cloud.client.get(path, headers=cloud.admin).status_code == 422
