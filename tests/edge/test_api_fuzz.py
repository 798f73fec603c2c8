"""No request a device can send makes the agent answer 5xx (503 aside: draining, no model).

Hypothesis throws well-formed, ill-shaped and ill-typed bodies and odd feature names at the
real app (ASGI, in process) serving a real package; every answer must be 200, 404 or 422.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.package.support import Keys, make_keys

from tierwise.edge.api import create_app

from .support import FEATURE
from .test_agent import _agent, _cloud, _version, deploy

EDGE = "digits-edge"

floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=-(2**70), max_value=2**70),
)
rows = st.lists(floats, min_size=0, max_size=70)
junk = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | floats,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"inputs": st.lists(rows, min_size=0, max_size=4)},
        optional={
            "labels": st.lists(st.integers(-5, 20), max_size=4) | junk,
            "stream": st.text(max_size=20),
        },
    ),
    st.fixed_dictionaries(
        {"inputs": st.lists(st.lists(st.floats(0, 1), min_size=64, max_size=64), min_size=1)}
    ),
    st.dictionaries(st.text(max_size=8), junk, max_size=3),
    junk,
)
features = st.one_of(st.just(FEATURE), st.text(min_size=1, max_size=12))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


def test_no_request_gets_a_server_error(tmp_path: Path, keys: Keys) -> None:
    from .support import build_package

    packages = {
        "v1": build_package(tmp_path / "v1", keys.private, EDGE, 1, max_iter=20),
        "cloud": build_package(tmp_path / "c1", keys.private, "digits-cloud", 1),
    }
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.9)
    agent = _agent(tmp_path / "agent", cloud, keys)
    app = create_app(agent)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")
    statuses: dict[int, int] = {}

    async def start() -> None:
        await agent.start()
        for _ in range(1500):
            if _version(agent) == 1:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the package was not installed")

    loop.run_until_complete(start())
    try:

        @given(feature=features, body=bodies)
        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(feature: str, body: Any) -> None:
            content = json.dumps(body).encode()
            path = "/v1/predict/" + quote(feature, safe="")
            response = loop.run_until_complete(
                client.post(path, content=content, headers={"Content-Type": "application/json"})
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 404, 405, 422), (feature, body, response.text)

        fuzz()
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(agent.stop())
        loop.close()
    print(f"statuses {statuses}")
    assert statuses.get(200, 0) > 0
    assert statuses.get(422, 0) > 0
