"""The agent runs the package variant its deployment names (the plan's choice), not just the
smallest; a variant the package lacks is refused like a tampered package, and the model
before it keeps serving.

The digits scenario's edge package carries fp32 and INT8 (INT8 is the smallest, what an
agent runs when no variant is named), each with its own cascade curves."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from pathlib import Path

import httpx
import numpy as np
from tests.package.support import make_keys

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.memory_link import InMemoryCloud
from tierwise.edge.packages import SignedPackages
from tierwise.edge.settings import EdgeSettings
from tierwise.package.archive import pack_archive
from tierwise.package.runtime import load_verified
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.tiers import EscalationRule, Placement
from tierwise.wire import Deployment, FeatureAssignment, FeatureDeployment, PredictRequest

from .support import SITE, AgentProcess, CloudProcess, build_package

FEATURE = "read-label"
ROWS = 16


def _rows() -> np.ndarray:
    return get_scenario("digits").test_data().x[:ROWS]


def _expected(packages: ScenarioPackages, variant: str) -> np.ndarray:
    model = load_verified(packages.edge, [packages.public_key], variant=variant)
    return model.predict(_rows()).probabilities.astype(np.float64)


def test_an_assigned_variant_runs_at_the_agent_over_the_real_cloud(
    digits_packages: ScenarioPackages, tmp_path: Path
) -> None:
    manifest = digits_packages.edge_manifest
    assert manifest.variant().name == "int8"  # so fp32 is not what would run by default
    with CloudProcess(tmp_path / "cloud", digits_packages.public_key) as cloud:
        cloud.admin.upload_package(digits_packages.edge)
        assignment = FeatureAssignment(
            package=manifest.name,
            version=manifest.version,
            variant="fp32",
            placement=Placement.EDGE,
            deadline_ms=200,
        )
        cloud.admin.assign(SITE, FEATURE, assignment)
        agent = AgentProcess(
            cloud.url, tmp_path / "edge", digits_packages.public_key, ("--poll-interval", "0.2")
        )
        agent.start()
        try:
            state = agent.wait_for(
                "fp32", lambda s: s["features"].get(FEATURE, {}).get("version") is not None
            )
            assert not state["refused"], state["refused"]
            served = state["features"][FEATURE]
            assert (served["variant"], served["deployed_variant"]) == ("fp32", "fp32")
            response = httpx.post(
                f"{agent.url}/v1/predict/{FEATURE}", json={"inputs": _rows().tolist()}, timeout=10
            )
            response.raise_for_status()
            answer = response.json()
            assert answer["answered_by"] == "edge"
            np.testing.assert_allclose(answer["outputs"], _expected(digits_packages, "fp32"))
            metrics = httpx.get(agent.url + "/metrics", timeout=5).text
            info = (
                f'tierwise_edge_variant_info{{feature="{FEATURE}",package="{manifest.name}",'
                f'version="{manifest.version}",variant="fp32"}} 1'
            )
            assert info in metrics
        finally:
            assert agent.terminate() == 0


def _deployment(cloud: InMemoryCloud, package: str, version: int, variant: str | None) -> None:
    sha = hashlib.sha256(cloud.packages[(package, version)]).hexdigest()
    spec = FeatureDeployment(
        package=package,
        version=version,
        sha256=sha,
        variant=variant,
        placement=Placement.EDGE,
        deadline_ms=200.0,
    )
    etag = f"{package}-{version}-{variant}"
    cloud.deployments[SITE] = Deployment(site=SITE, features={FEATURE: spec}, etag=etag)


def _agent(tmp: Path, cloud: InMemoryCloud, trusted: Path) -> EdgeAgent:
    settings = EdgeSettings(
        site=SITE,
        cloud_url="memory://",
        token="t",
        data_dir=tmp,
        trusted_keys=(trusted,),
        poll_interval_s=0.05,
    )
    return EdgeAgent(settings, cloud.link(), SignedPackages(settings.trusted_keys))


async def _until_etag(agent: EdgeAgent, etag: str) -> None:
    for _ in range(1500):
        if agent.deployer.etag == etag:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"deployment {etag} never applied: {agent.state_view()}")


def test_variants_switch_in_place_and_a_missing_one_is_refused(
    digits_packages: ScenarioPackages, tmp_path: Path
) -> None:
    manifest = digits_packages.edge_manifest
    name, version = manifest.name, manifest.version
    cloud = InMemoryCloud()
    cloud.packages[(name, version)] = pack_archive(digits_packages.edge)
    agent = _agent(tmp_path / "agent", cloud, digits_packages.public_key)
    request = PredictRequest(inputs=_rows().tolist())

    async def body() -> None:
        await agent.start()
        try:
            for variant in ("int8", "fp32"):  # the second loads beside the installed archive
                _deployment(cloud, name, version, variant)
                await _until_etag(agent, f"{name}-{version}-{variant}")
                served = agent.deployer.served[FEATURE]
                assert served.model is not None
                assert served.model.variant == variant
                answer = await agent.predict(FEATURE, request)
                assert answer.answered_by == "edge"
                expected = _expected(digits_packages, variant)
                np.testing.assert_allclose(answer.outputs, expected)
                # a cascade would score with this variant's own rules (its routers, its
                # temperatures), as the package runtime does for that variant
                reference = load_verified(
                    digits_packages.edge, [digits_packages.public_key], variant=variant
                )
                assert manifest.cascade is not None
                for rule in manifest.cascade.rules[variant]:
                    _, scores = served.model.predict(_rows(), EscalationRule(rule))
                    want = reference.escalation_rule(rule).score(expected, _rows())
                    np.testing.assert_allclose(scores, want, rtol=1e-6)

            _deployment(cloud, name, version, "distilled")
            await _until_etag(agent, f"{name}-{version}-distilled")
            refusal = agent.deployer.refused[FEATURE]
            assert refusal.variant == "distilled"
            assert 'has no variant "distilled"; it has fp32, int8' in refusal.reason
            assert refusal.reason.startswith("refused: ")
            served = agent.deployer.served[FEATURE]
            assert served.model is not None
            assert served.model.variant == "fp32"  # unchanged
            answer = await agent.predict(FEATURE, request)
            assert answer.model == name
            state = agent.state_view()
            assert state["features"][FEATURE]["variant"] == "fp32"
            assert state["refused"][FEATURE]["variant"] == "distilled"
        finally:
            await agent.stop()

    asyncio.run(asyncio.wait_for(body(), 120))

    async def restarted() -> None:  # from the deployment saved on disk, without the cloud
        again = _agent(tmp_path / "agent", InMemoryCloud(), digits_packages.public_key)
        await again.deployer.restore()
        model = again.deployer.served[FEATURE].model
        assert model is not None
        assert model.variant == "fp32"  # not the smallest: the deployment's

    asyncio.run(asyncio.wait_for(restarted(), 60))
    events = cloud.stream(SITE, "agent")  # uploaded by the time the agent has stopped
    installed = [e.body["variant"] for e in events if e.kind == "package.installed"]
    assert installed == ["int8", "fp32"]
    refused = [e.body for e in events if e.kind == "package.refused"]
    assert [(b["variant"], b["version"]) for b in refused] == [("distilled", version)]


def test_a_new_version_lacking_the_variant_is_refused_before_it_is_installed(
    tmp_path: Path,
) -> None:
    keys = make_keys(tmp_path / "keys")
    edge = "digits-edge"
    cloud = InMemoryCloud()
    for version in (1, 2):  # one fp32 variant each
        path = build_package(tmp_path / f"v{version}", keys.private, edge, version, max_iter=20)
        cloud.packages[(edge, version)] = pack_archive(path)
        shutil.rmtree(path)
    agent = _agent(tmp_path / "agent", cloud, keys.public)
    install_dir = tmp_path / "agent" / "packages" / edge

    async def body() -> None:
        await agent.start()
        try:
            _deployment(cloud, edge, 1, None)
            await _until_etag(agent, f"{edge}-1-None")
            before = agent.deployer.served[FEATURE].model
            assert before is not None
            assert (before.version, before.variant) == (1, "fp32")
            _deployment(cloud, edge, 2, "int8")
            await _until_etag(agent, f"{edge}-2-int8")
            reason = agent.deployer.refused[FEATURE].reason
            assert reason == f'refused: v2: package {edge} has no variant "int8"; it has fp32'
            assert agent.deployer.served[FEATURE].model is before  # still serving v1
            assert (install_dir / "current").resolve().name == f"{edge}-v1"  # never swapped
            assert not (install_dir / "previous").exists()
            # the operator fixes the variant: the same v2 archive installs now
            _deployment(cloud, edge, 2, "fp32")
            await _until_etag(agent, f"{edge}-2-fp32")
            after = agent.deployer.served[FEATURE].model
            assert after is not None
            assert (after.version, after.variant) == (2, "fp32")
            assert FEATURE not in agent.deployer.refused
        finally:
            await agent.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
