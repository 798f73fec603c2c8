"""Acceptance 3, the agent's part, through the real cloud: a tampered or older package is
refused by the agent and the running model is unchanged."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
from tests.package.support import make_keys

from tierwise.spec.tiers import Placement
from tierwise.wire import FeatureAssignment

from .support import FEATURE, SITE, AgentProcess, CloudProcess, build_package, digits

EDGE = "digits-edge"


def _on_edge(version: int) -> FeatureAssignment:
    return FeatureAssignment(
        package=EDGE, version=version, placement=Placement.EDGE, deadline_ms=100
    )


def _predict(agent: AgentProcess) -> dict[str, object]:
    x, _ = digits()
    r = httpx.post(f"{agent.url}/v1/predict/{FEATURE}", json={"inputs": x[:3].tolist()})
    r.raise_for_status()
    answer: dict[str, object] = r.json()
    return answer


def test_older_and_tampered_packages_are_refused_and_the_model_is_unchanged(
    tmp_path: Path,
) -> None:
    keys = make_keys(tmp_path)
    packages = {
        v: build_package(tmp_path / f"v{v}", keys.private, EDGE, v, max_iter=10 * v)
        for v in (1, 2, 3)
    }
    with CloudProcess(tmp_path / "cloud", keys.public) as cloud:
        sha = {v: cloud.admin.upload_package(path).sha256 for v, path in packages.items()}
        cloud.admin.assign(SITE, FEATURE, _on_edge(2))
        agent = AgentProcess(cloud.url, tmp_path / "edge", keys.public, ("--poll-interval", "0.2"))
        agent.start()
        try:
            agent.wait_for("v2", lambda s: s["features"].get(FEATURE, {}).get("version") == 2)
            before = _predict(agent)
            assert before["version"] == 2

            # Older: a genuinely signed v1, deployed by the operator: rollback protection.
            cloud.admin.assign(SITE, FEATURE, _on_edge(1))
            state = agent.wait_for("refusing v1", lambda s: FEATURE in s["refused"])
            assert "not newer than the installed version 2" in state["refused"][FEATURE]["reason"]
            assert state["features"][FEATURE]["version"] == 2

            # Tampered: v3's archive altered in the cloud's store after it was verified there
            # (a compromised disk); the cloud still announces the sha256 it registered.
            stored = cloud.data_dir / "packages" / f"{sha[3]}.tar.gz"
            blob = bytearray(stored.read_bytes())
            blob[len(blob) // 2] ^= 0x01
            stored.write_bytes(bytes(blob))
            cloud.admin.assign(SITE, FEATURE, _on_edge(3))
            state = agent.wait_for(
                "refusing v3", lambda s: s["refused"].get(FEATURE, {}).get("version") == 3
            )
            assert "differs from the deployment's" in state["refused"][FEATURE]["reason"]
            assert state["features"][FEATURE]["version"] == 2
            after = _predict(agent)
            assert after["version"] == 2
            np.testing.assert_allclose(after["outputs"], before["outputs"])  # type: ignore[arg-type]
            installed = (tmp_path / "edge" / "packages" / EDGE / "current").resolve()
            assert installed.name == f"{EDGE}-v2"
        finally:
            assert agent.terminate() == 0
        refusals = [e for e in cloud.admin.events(SITE, "agent") if e.kind == "package.refused"]
        assert [e.body["version"] for e in refusals] == [1, 3]  # reported to the cloud
