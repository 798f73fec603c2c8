"""Fuzz every operation of the published OpenAPI schema: no input may cause a 5xx.

Schemathesis generates requests from /openapi.json — valid ones (POSITIVE) and ones that
break the schema (NEGATIVE) — and sends them over loopback HTTP to the real app (uvicorn) on
the real database, with a token in scope so requests get past authentication into the handlers.
Path parameters are pinned to seeded data half of the time (site `a`, feature `quality`
with a registered package and cloud model) so the fuzzer reaches real rows, and left
free the other half. Bounded in examples so the whole run stays well under two minutes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from tests.package.support import Keys

from tierwise.package.archive import pack_archive
from tierwise.wire import ARCHIVE_MEDIA_TYPE

from .packages import build
from .support import Cloud

EXAMPLES_PER_MODE = 12
SITE_WRITES = {"/v1/sites/{site}/status", "/v1/sites/{site}/telemetry"}
PINNED = {"site": "a", "feature": "quality", "name": "wine", "version": 1, "rollout_id": 1}


@schemathesis.serializer(ARCHIVE_MEDIA_TYPE)
def _archive_bytes(_ctx: Any, value: Any) -> bytes:
    """Package uploads are raw bytes: send whatever the fuzzer made, as bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


def seed(cloud: Cloud, signer: Keys, tmp_path: Path) -> None:
    """A package, an assignment, a cloud model and a rollout for the fuzzer to hit."""
    for version in (1, 2):
        blob = pack_archive(build(tmp_path / f"wine-{version}", signer, "wine", version))
        response = cloud.client.post(
            "/v1/packages", content=blob, headers=cloud.admin | {"Content-Type": "application/gzip"}
        )
        assert response.status_code == 201
    for site in ("a", "b"):
        assignment = {"package": "wine", "version": 1, "placement": "cascade", "deadline_ms": 50}
        cloud.client.put(f"/v1/sites/{site}/features/quality", json=assignment, headers=cloud.admin)
    cloud.client.put(
        "/v1/cloud-models/quality", json={"package": "wine", "version": 1}, headers=cloud.admin
    )
    rollout = {"package": "wine", "version": 2, "canary_sites": ["a"], "bake_seconds": 3600}
    assert cloud.client.post("/v1/rollouts", json=rollout, headers=cloud.admin).status_code == 201


def headers_for(cloud: Cloud, method: str, path: str) -> dict[str, str]:
    """Site a's token where only a site may write; the operator's everywhere else."""
    return cloud.site_a if method == "POST" and path in SITE_WRITES else cloud.admin


def fuzz(strategy: st.SearchStrategy[Any], headers: dict[str, str], failures: list[str]) -> int:
    """Send `EXAMPLES_PER_MODE` generated requests; note every 5xx; return how many were sent."""
    sent = 0

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        response = case.call(headers=headers)
        if response.status_code >= 500:
            failures.append(f"{response.status_code}: {case.as_curl_command()}")

    with contextlib.suppress(Unsatisfiable):  # e.g. an operation that takes no input at all
        run()
    return sent


@pytest.mark.slow
def test_fuzzed_requests_never_get_a_5xx(
    cloud: Cloud, live: str, signer: Keys, tmp_path: Path
) -> None:
    seed(cloud, signer, tmp_path)
    schema = schemathesis.openapi.from_url(live + "/openapi.json")
    failures: list[str] = []
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        pinned = {p.name: PINNED[p.name] for p in operation.path_parameters}
        headers = headers_for(cloud, operation.method.upper(), operation.path)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            if pinned:
                strategies.append(
                    operation.as_strategy(generation_mode=mode, path_parameters=pinned)
                )
            sent[label] = sent.get(label, 0) + fuzz(st.one_of(*strategies), headers, failures)
    assert not failures, "\n".join(failures[:10])
    # Every operation was exercised; those taking input got many distinct requests.
    assert min(sent.values()) >= 1, sent
    assert sum(sent.values()) >= 10 * EXAMPLES_PER_MODE, sent
