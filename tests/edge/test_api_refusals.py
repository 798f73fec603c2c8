"""Every refusal a device can get from the agent, as the device sees it: status and JSON body.

The real app (ASGI, in process) serving a real package from the in-memory cloud twin.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.package.support import Keys, make_keys

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.api import create_app
from tierwise.edge.lifecycle import AgentState
from tierwise.edge.memory_link import InMemoryCloud

from .support import FEATURE, SITE, build_package
from .test_agent import _agent, _cloud, _request, _until, _version, deploy, run

EDGE = "digits-edge"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> InMemoryCloud:
    root = tmp_path_factory.mktemp("packages")
    packages = {
        "v1": build_package(root / "v1", keys.private, EDGE, 1, max_iter=20),
        "cloud": build_package(root / "c1", keys.private, "digits-cloud", 1, max_iter=20),
    }
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, placement="edge")
    return cloud


def _client(agent: EdgeAgent) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(agent))
    return httpx.AsyncClient(transport=transport, base_url="http://edge")


def test_bad_requests_get_404_and_422_with_what_was_wrong(
    tmp_path: Path, cloud: InMemoryCloud, keys: Keys
) -> None:
    agent = _agent(tmp_path, cloud, keys)
    row = _request(1).inputs[0]

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        async with _client(agent) as client:
            unknown = await client.post("/v1/predict/nope", json={"inputs": [row]})
            ragged = await client.post(f"/v1/predict/{FEATURE}", json={"inputs": [row, row[:-1]]})
            labels = await client.post(
                f"/v1/predict/{FEATURE}", json={"inputs": [row, row], "labels": [1]}
            )
            narrow = await client.post(f"/v1/predict/{FEATURE}", json={"inputs": [row[:10]]})
            huge = await client.post(
                f"/v1/predict/{FEATURE}", json={"inputs": [row], "labels": [2**70]}
            )
        await agent.stop()
        assert (unknown.status_code, unknown.json()) == (
            404,
            {"detail": f"feature 'nope' is not deployed at {SITE}"},
        )
        assert (ragged.status_code, ragged.json()) == (
            422,
            {"detail": "inputs: every row must have the same length"},
        )
        assert (labels.status_code, labels.json()) == (
            422,
            {"detail": "labels: 1 labels for 2 rows"},
        )
        assert (huge.status_code, huge.json()) == (
            422,
            {"detail": "labels: a label beyond a 64-bit integer"},
        )
        assert narrow.status_code == 422
        detail = narrow.json()["detail"]
        assert detail.startswith(f"inputs do not fit {EDGE} v1: ")
        assert "expected inputs of shape [N, 64]" in detail

    run(body)
    assert agent.metrics.of(FEATURE, EDGE, 1).errors == 1  # the row that did not fit the model


def test_a_draining_agent_answers_503(tmp_path: Path, cloud: InMemoryCloud, keys: Keys) -> None:
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        agent.lifecycle.move(AgentState.DRAINING)
        async with _client(agent) as client:
            refused = await client.post(f"/v1/predict/{FEATURE}", json=_request(1).model_dump())
        await agent.stop()
        assert (refused.status_code, refused.json()) == (503, {"detail": "edge agent is draining"})

    run(body)
    assert agent.metrics.refused_draining == 1


def test_a_feature_with_no_working_model_answers_503(
    tmp_path: Path, cloud: InMemoryCloud, keys: Keys
) -> None:
    async def install() -> None:
        agent = _agent(tmp_path, cloud, keys)
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        await agent.stop()

    run(install)
    # The installed copy is damaged on disk and the cloud is away: after a restart the
    # feature is still deployed here, with no model that loads.
    model_file = tmp_path / "packages" / EDGE / "current" / "model-fp32.onnx"
    blob = bytearray(model_file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    model_file.write_bytes(bytes(blob))
    cloud.down = True
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        assert agent.deployer.served[FEATURE].model is None
        async with _client(agent) as client:
            refused = await client.post(f"/v1/predict/{FEATURE}", json=_request(1).model_dump())
        await agent.stop()
        assert (refused.status_code, refused.json()) == (
            503,
            {"detail": f"feature '{FEATURE}' has no model installed at this site"},
        )

    try:
        run(body)
    finally:
        cloud.down = False
    assert agent.metrics.of(FEATURE, EDGE, 1).errors == 1
