"""The agent with real signed packages and ONNX Runtime, against the in-memory cloud twin."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.package.support import Keys, make_keys

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.field_sample import load_field_sample
from tierwise.edge.lifecycle import AgentState
from tierwise.edge.memory_link import InMemoryCloud
from tierwise.edge.packages import PackageAnswerer, SignedPackages
from tierwise.edge.settings import EdgeSettings
from tierwise.errors import UnavailableError, UnprocessableError, VerificationError
from tierwise.package.archive import pack_archive
from tierwise.package.runtime import load_verified
from tierwise.rules.clock import Clock, VirtualClock
from tierwise.rules.escalation import is_hard
from tierwise.scenarios import get_scenario
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.tiers import EscalationRule, Placement, Reach
from tierwise.wire import Deployment, FeatureDeployment, PredictRequest

from .support import FEATURE, SITE, build_package, digits

EDGE, CLOUD = "digits-edge", "digits-cloud"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("packages")
    return {
        "v1": build_package(root / "v1", keys.private, EDGE, 1, max_iter=20),
        "v2": build_package(root / "v2", keys.private, EDGE, 2, max_iter=40),
        "broken-v3": build_package(root / "b3", keys.private, EDGE, 3, broken=True),
        "cloud": build_package(root / "c1", keys.private, CLOUD, 1, max_iter=500),
    }


def _cloud(packages: dict[str, Path], keys: Keys) -> InMemoryCloud:
    cloud = InMemoryCloud()
    for key, path in packages.items():
        if key != "cloud":
            version = int(key[-1])
            cloud.packages[(EDGE, version)] = pack_archive(path)
    model = load_verified(packages["cloud"], [keys.public])
    cloud.models[FEATURE] = (
        CLOUD,
        1,
        lambda rows: model.predict(np.asarray(rows)).probabilities.tolist(),
    )
    return cloud


def deploy(cloud: InMemoryCloud, version: int, placement: str = "cascade", **kw: object) -> None:
    sha = hashlib.sha256(cloud.packages[(EDGE, version)]).hexdigest()
    feature = FeatureDeployment(
        package=EDGE,
        version=version,
        sha256=kw.pop("sha256", sha),
        placement=Placement(placement),
        threshold=kw.pop("threshold", 0.9),
        deadline_ms=kw.pop("deadline_ms", 150.0),
        planned_escalated=kw.pop("planned_escalated", None),
        raw_data_may_reach=kw.pop("raw_data_may_reach", Reach.SITE),
    )
    etag = f"{version}-{placement}-{feature.sha256[:8]}-{feature.deadline_ms}"
    cloud.deployments[SITE] = Deployment(site=SITE, features={FEATURE: feature}, etag=etag)


def _agent(
    tmp: Path, cloud: InMemoryCloud, keys: Keys, wall_clock: Clock | None = None
) -> EdgeAgent:
    settings = EdgeSettings(
        site=SITE,
        cloud_url="memory://",
        token="t",
        data_dir=tmp,
        trusted_keys=(keys.public,),
        poll_interval_s=0.05,
        status_interval_s=0.1,
        drain_timeout_s=2.0,
        rtt_prior_s=0.01,
    )
    packages = SignedPackages(settings.trusted_keys)
    return EdgeAgent(settings, cloud.link(), packages, wall_clock=wall_clock)


def run(body: Callable[[], Awaitable[None]], timeout: float = 120) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(bounded())


async def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def _request(n: int, start: int = 1200, labels: bool = False) -> PredictRequest:
    x, y = digits()
    rows = x[start : start + n].tolist()
    return PredictRequest(inputs=rows, labels=y[start : start + n].tolist() if labels else None)


def _version(agent: EdgeAgent) -> int | None:
    served = agent.deployer.served.get(FEATURE)
    return None if served is None or served.model is None else served.model.version


def test_cascade_escalates_unsure_rows_and_records_every_answer(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.9)
    agent = _agent(tmp_path, cloud, keys)
    by_cloud_total: list[object] = []

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        answers = [await agent.predict(FEATURE, _request(1, start=1200 + i)) for i in range(60)]
        by_cloud = [a for a in answers if a.answered_by == "cloud"]
        by_cloud_total.extend(by_cloud)
        by_edge = [a for a in answers if a.answered_by == "edge"]
        assert by_cloud, "a weak edge model at threshold 0.9 escalates some rows"
        assert by_edge
        assert all(a.model == CLOUD for a in by_cloud)
        assert all(a.model == EDGE and a.version == 1 for a in by_edge)
        assert not any(a.degraded for a in answers)
        assert [a.event_seq for a in answers] == list(range(1, 61))
        labelled = await agent.predict(FEATURE, _request(50, labels=True))
        assert len(labelled.outputs) == 50
        await agent.stop()

    run(body)
    assert agent.lifecycle.state is AgentState.STOPPED
    events = cloud.stream(SITE, FEATURE)
    assert [e.seq for e in events] == list(range(1, 62))  # flushed at stop
    counters = cloud.statuses[-1][1].features[0].counters
    assert counters.requests == 61
    snapshots = [e for e in cloud.stream(SITE, "metrics") if e.kind == "metrics.snapshot"]
    snapshot = snapshots[-1].body  # the counters, through the outbox
    assert snapshot["versions"][0]["requests"] == 61
    assert snapshot["versions"][0]["escalations"] == counters.escalations
    assert counters.escalations >= len(by_cloud_total)  # + the labelled batch, if it escalated
    assert counters.feedback_total == 50
    assert counters.feedback_correct > 40
    # the stream summarized per package version, through the outbox: counts of all 110 rows
    feedback = [e.body for e in cloud.stream(SITE, "metrics") if e.kind == "feedback.summary"]
    assert sum(f["rows"] for f in feedback) == 110
    assert sum(f["hard_rows"] for f in feedback) == snapshot["versions"][0]["hard_rows"] > 0
    assert all(f["raw"] is False and "examples" not in f for f in feedback)


def test_feedback_carries_raw_hard_rows_only_where_the_spec_lets_raw_data_reach_the_cloud(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.9, raw_data_may_reach=Reach.CLOUD)
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        for i in range(40):
            await agent.predict(FEATURE, _request(1, start=1200 + i))
        await agent.stop()

    run(body)
    feedback = [e.body for e in cloud.stream(SITE, "metrics") if e.kind == "feedback.summary"]
    examples = [x for f in feedback for x in f["examples"]]
    assert all(f["raw"] for f in feedback)
    assert 0 < len(examples) == sum(f["cloud_answered"] for f in feedback)  # under the cap
    x, _y = digits()
    rows = {tuple(np.float32(v) for v in x[1200 + i]) for i in range(40)}
    assert all(tuple(np.float32(v) for v in e["inputs"]) in rows for e in examples)
    assert all(0 <= e["cloud_label"] <= 9 for e in examples)


def test_labelled_rows_reach_the_field_sample_and_the_feedback_bytes_are_counted(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    """The field sample file holds every labelled row in order (a restart keeps it, and the
    unlabelled ones never go in); the byte counters are the feedback bodies as the cloud got
    them and the JSON of every row the cloud answered; examples carry the device's label."""
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.9, raw_data_may_reach=Reach.CLOUD)
    x, y = digits()
    rows = x[1200:1260]
    edge_model = load_verified(packages["v1"], [keys.public])
    hard = edge_model.predict(np.concatenate([rows, x[1300:1305]])).confidence < 0.9
    assert hard.any()
    seen: dict[str, Any] = {}

    async def first() -> None:
        agent = _agent(tmp_path, cloud, keys)
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        seen["from"] = agent.wall_clock.now()
        answers = [
            await agent.predict(FEATURE, _request(3, start=1200 + i, labels=True))
            for i in range(0, 60, 3)
        ]
        answers.append(await agent.predict(FEATURE, _request(5, start=1300)))  # no labels
        seen["to"] = agent.wall_clock.now()
        assert not any(a.degraded for a in answers)
        await agent.stop()
        seen["view"] = agent.learning_view()
        seen["metrics"] = agent.prometheus()

    run(first)
    sample = load_field_sample(tmp_path / "field" / f"{FEATURE}.npz")
    np.testing.assert_array_equal(sample.x, rows)
    assert sample.y.tolist() == y[1200:1260].tolist()
    assert seen["from"] <= sample.t[0]
    assert sample.t[-1] <= seen["to"]
    assert np.all(np.diff(sample.t) >= 0)

    feedback = [e.body for e in cloud.stream(SITE, "metrics") if e.kind == "feedback.summary"]

    def size(value: object) -> int:  # as the outbox and the escalation request encode it
        return len(json.dumps(value, separators=(",", ":")))

    sent = x[np.r_[1200:1260, 1300:1305]][hard]
    counted = seen["view"]["features"][FEATURE]
    assert counted == {
        # raw data may reach the cloud here: the examples are counted apart from the counts
        "feedback_bytes": sum(
            size({k: v for k, v in f.items() if k != "examples"}) for f in feedback
        ),
        "example_bytes": sum(
            size(f) - size({k: v for k, v in f.items() if k != "examples"}) for f in feedback
        ),
        "feedback_reports": len(feedback),
        "escalated_input_bytes": sum(size(r) for r in sent.tolist()),
        "escalated_rows": int(hard.sum()),
        "field_rows": 60,
    }
    text = seen["metrics"]
    assert counted["example_bytes"] > 0
    for name in ("feedback_bytes", "example_bytes", "escalated_input_bytes"):
        assert f'tierwise_edge_{name}_total{{feature="digits"}} {counted[name]}\n' in text
    assert 'tierwise_edge_field_rows{feature="digits"} 60' in text
    snapshots = [e for e in cloud.stream(SITE, "metrics") if e.kind == "metrics.snapshot"]
    snapshot = snapshots[-1].body  # the counters reach the cloud too
    assert snapshot["learning"]["features"][FEATURE]["escalated_rows"] == int(hard.sum())
    truth = {tuple(r): int(c) for r, c in zip(x[1200:1260].tolist(), y[1200:1260], strict=True)}
    examples = [e for f in feedback for e in f["examples"]]
    assert [e for e in examples if e["label"] is not None]
    for e in examples:
        assert e["label"] is None or e["label"] == truth[tuple(e["inputs"])]

    async def restarted() -> None:
        agent = _agent(tmp_path, cloud, keys)
        await agent.start()
        assert agent.learning_view()["features"][FEATURE]["field_rows"] == 60
        await _until(lambda: _version(agent) == 1)
        await agent.predict(FEATURE, _request(2, start=1400, labels=True))
        await agent.stop()

    run(restarted)
    sample = load_field_sample(tmp_path / "field" / f"{FEATURE}.npz")
    assert sample.y.tolist() == y[1200:1260].tolist() + y[1400:1402].tolist()


@pytest.mark.parametrize(("planned", "drifts"), [(0.05, True), (1.0, False)])
def test_a_hard_share_far_from_the_plans_is_said_in_an_event_and_in_metrics(
    tmp_path: Path, packages: dict[str, Path], keys: Keys, planned: float, drifts: bool
) -> None:
    """Every row hard (a threshold above 1): drift when 5% was planned, none when 100% was."""
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=1.01, planned_escalated=planned, deadline_ms=2000.0)
    agent = _agent(tmp_path, cloud, keys)
    metrics: list[str] = []

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        await agent.predict(FEATURE, _request(300, start=0))
        await agent.record_metrics()
        metrics.append(agent.prometheus())
        await agent.stop()

    run(body)
    drift = [e.body for e in cloud.stream(SITE, "agent") if e.kind == "escalation.drift"]
    if drifts:
        assert len(drift) == 1
        assert drift[0]["drifted"]
        assert drift[0]["observed"] == 1.0
        assert drift[0]["planned"] == planned
        assert drift[0]["rows"] == 300
        assert drift[0]["p_value"] < 1e-3
    else:
        assert drift == []
    labels = 'feature="digits",package="digits-edge",version="1"'
    assert f"tierwise_edge_escalation_drift{{{labels}}} {int(drifts)}" in metrics[0]
    assert f'tierwise_edge_hard_share{{{labels},of="plan"}} {planned}' in metrics[0]
    snapshots = [e for e in cloud.stream(SITE, "metrics") if e.kind == "metrics.snapshot"]
    snapshot = snapshots[-1].body["versions"][0]
    assert snapshot["hard_rows"] == 300
    assert snapshot["escalation_check"]["drifted"] is drifts


def test_event_times_come_from_the_agents_wall_clock(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    """The cloud stores and compares event times, so they are calendar readings of one clock."""
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, placement="edge")
    wall = VirtualClock(1.7e9)
    agent = _agent(tmp_path, cloud, keys, wall_clock=wall)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        await agent.predict(FEATURE, _request(1))
        wall.advance(60.0)
        await agent.predict(FEATURE, _request(1))
        await agent.stop()

    run(body)
    assert [e.ts for e in cloud.stream(SITE, FEATURE)] == [1.7e9, 1.7e9 + 60.0]
    assert agent.started_at == 1.7e9
    assert {e.ts for e in cloud.stream(SITE, "metrics")} == {1.7e9 + 60.0}
    assert cloud.statuses[-1][1].features[0].since == 1.7e9  # serving since the first answer


def test_cloud_down_or_slow_answers_locally_in_time_and_says_degraded(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=1.01, deadline_ms=100)  # every row is "hard"
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        cloud.delay_s = 0.5  # slower than the budget
        slow = await agent.predict(FEATURE, _request(1))
        assert slow.answered_by == "edge"
        assert slow.degraded
        assert slow.reason == "cloud late"
        assert slow.latency_ms <= 100
        # The late call was not cancelled at the deadline: it ends in the background.
        assert agent.router.late_calls == 1
        await _until(lambda: agent.router.late_calls == 0, timeout=2.0)
        cloud.delay_s = 30.0  # a call that would outlive the agent is cancelled at stop
        assert (await agent.predict(FEATURE, _request(1))).reason == "cloud late"
        assert agent.router.late_calls == 1
        agent.router.close()
        await _until(lambda: agent.router.late_calls == 0, timeout=2.0)
        cloud.delay_s, cloud.down = 0.0, True
        down = [await agent.predict(FEATURE, _request(1)) for _ in range(10)]
        assert all(a.degraded and a.answered_by == "edge" for a in down)
        assert {a.reason for a in down} <= {"cloud unreachable", "cloud down"}
        assert max(a.latency_ms for a in down) < 100
        await agent.stop()

    run(body)


def test_tampered_and_older_packages_are_refused_and_the_running_model_stays(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 2, placement="edge")
    agent = _agent(tmp_path, cloud, keys)
    tampered_dir = build_package(tmp_path / "tampered", keys.private, EDGE, 4)
    model_file = tampered_dir / "model-fp32.onnx"
    blob = bytearray(model_file.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    model_file.write_bytes(bytes(blob))

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 2)
        before = await agent.predict(FEATURE, _request(5))
        # A newer version whose model file changed after signing, announced with the archive's
        # own sha256 (as a compromised registry would): the file hash check refuses it.
        cloud.packages[(EDGE, 4)] = pack_archive(tampered_dir)
        deploy(cloud, 4, placement="edge")
        await _until(lambda: FEATURE in agent.deployer.refused)
        assert "model-fp32.onnx" in agent.deployer.refused[FEATURE].reason
        assert _version(agent) == 2
        # An older, genuinely signed version: rollback protection refuses it.
        deploy(cloud, 1, placement="edge")
        await _until(lambda: agent.deployer.refused[FEATURE].version == 1)
        assert "not newer" in agent.deployer.refused[FEATURE].reason
        after = await agent.predict(FEATURE, _request(5))
        assert after.version == 2
        assert after.outputs == before.outputs
        await agent.stop()

    run(body)
    reasons = [f.detail for _, status in cloud.statuses for f in status.features if not f.healthy]
    assert any("not newer" in r for r in reasons)
    kinds = [e.kind for e in cloud.stream(SITE, "agent")]
    assert kinds.count("package.refused") == 2


def test_a_package_that_fails_to_load_is_rolled_back_to_the_last_known_good(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1)
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        deploy(cloud, 3)  # signed and newer, but ONNX Runtime cannot load it
        await _until(lambda: FEATURE in agent.deployer.refused)
        assert "rolled back" in agent.deployer.refused[FEATURE].reason
        assert _version(agent) == 1
        assert (await agent.predict(FEATURE, _request(1))).version == 1
        await agent.stop()

    run(body)
    current = (tmp_path / "packages" / EDGE / "current").resolve()
    assert current.name == f"{EDGE}-v1"


def test_a_restart_while_the_cloud_is_down_serves_what_was_installed(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 2)

    async def first() -> None:
        agent = _agent(tmp_path, cloud, keys)
        await agent.start()
        await _until(lambda: _version(agent) == 2)
        await agent.stop()

    async def second() -> None:
        cloud.down = True
        agent = _agent(tmp_path, cloud, keys)
        await agent.start()
        assert _version(agent) == 2  # at once, from disk
        answer = await agent.predict(FEATURE, _request(1))
        assert answer.version == 2
        assert answer.event_seq is not None
        await agent.stop()

    run(first)
    run(second)


def test_bad_inputs_get_422_and_draining_refuses_new_requests(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1)
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        ragged = PredictRequest(inputs=[[0.0] * 64, [0.0] * 63])
        with pytest.raises(UnprocessableError) as bad:
            await agent.predict(FEATURE, ragged)
        assert bad.value.status == 422
        narrow = PredictRequest(inputs=[[0.0] * 10])
        with pytest.raises(UnprocessableError) as bad:
            await agent.predict(FEATURE, narrow)
        assert bad.value.status == 422
        assert "expected inputs of shape [N, 64]" in bad.value.detail
        agent.lifecycle.move(AgentState.DRAINING)
        with pytest.raises(UnavailableError) as refused:
            await agent.predict(FEATURE, _request(1))
        assert refused.value.status == 503
        await agent.stop()
        assert agent.lifecycle.state is AgentState.STOPPED

    run(body)


def test_a_batch_mixes_edge_rows_and_escalated_rows_in_order(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.9)
    agent = _agent(tmp_path, cloud, keys)
    edge_model = load_verified(packages["v1"], [keys.public])
    cloud_model = load_verified(packages["cloud"], [keys.public])
    x, _ = digits()
    rows = x[1200:1240]
    local = edge_model.predict(rows)
    hard = local.confidence < 0.9
    assert 0 < hard.sum() < len(rows)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        answer = await agent.predict(FEATURE, PredictRequest(inputs=rows.tolist()))
        assert answer.answered_by == "cloud"
        expected = np.where(
            hard[:, None], cloud_model.predict(rows).probabilities, local.probabilities
        )
        np.testing.assert_allclose(np.asarray(answer.outputs), expected, rtol=1e-5, atol=1e-6)
        await agent.stop()

    run(body)


def test_a_cloud_placed_feature_falls_back_to_the_installed_model(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, placement="cloud")
    agent = _agent(tmp_path, cloud, keys)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        up = await agent.predict(FEATURE, _request(2))
        assert (up.answered_by, up.model, up.degraded) == ("cloud", CLOUD, False)
        cloud.down = True
        down = await agent.predict(FEATURE, _request(2))
        assert (down.answered_by, down.model, down.degraded) == ("edge", EDGE, True)
        await agent.stop()

    run(body)


# The digits scenario's package: a cascade with every escalation rule, the learned one a
# signed ONNX router (tests/conftest.py builds it once per session).
SCENARIO_EDGE, SCENARIO_CLOUD = "digits", "digits-cloud"


def _scenario_cloud(built: ScenarioPackages, edge_dir: Path | None = None) -> InMemoryCloud:
    cloud = InMemoryCloud()
    cloud.packages[(SCENARIO_EDGE, 1)] = pack_archive(edge_dir or built.edge)
    model = load_verified(built.cloud, [built.public_key])
    cloud.models[FEATURE] = (
        SCENARIO_CLOUD,
        1,
        lambda rows: model.predict(np.asarray(rows)).probabilities.tolist(),
    )
    return cloud


def _deploy_rule(cloud: InMemoryCloud, rule: EscalationRule, threshold: float) -> None:
    feature = FeatureDeployment(
        package=SCENARIO_EDGE,
        version=1,
        sha256=hashlib.sha256(cloud.packages[(SCENARIO_EDGE, 1)]).hexdigest(),
        placement=Placement.CASCADE,
        threshold=threshold,
        rule=rule,
        deadline_ms=1000.0,
    )
    etag = f"{rule}-{threshold}"
    cloud.deployments[SITE] = Deployment(site=SITE, features={FEATURE: feature}, etag=etag)


def _scenario_agent(tmp: Path, cloud: InMemoryCloud, built: ScenarioPackages) -> EdgeAgent:
    # an agent only trusts a public key; it never signs
    return _agent(tmp, cloud, Keys(private=Path("unused"), public=built.public_key))


@dataclass(frozen=True)
class RuleCase:
    """The digits test rows with what a cascade on one rule must answer for them."""

    threshold: float
    rows: np.ndarray
    hard: np.ndarray  # rows the rule escalates at the threshold
    expected: np.ndarray  # the cloud's probabilities for hard rows, the edge's for the rest
    max_probability_hard: np.ndarray  # what max-probability would escalate at that threshold


def _rule_case(built: ScenarioPackages, rule: str) -> RuleCase:
    cascade = built.edge_manifest.cascade
    assert cascade is not None
    variant = built.edge_manifest.variant().name  # the agent runs the smallest: int8
    threshold = cascade.at_budget(variant, 0.10, rule).threshold
    edge = load_verified(built.edge, [built.public_key], variant)
    cloud_model = load_verified(built.cloud, [built.public_key])
    rows = get_scenario("digits").test_data().x[:120]
    local = edge.predict(rows)
    score = edge.escalation_rule(rule).score(local.probabilities, rows)
    hard = np.asarray(is_hard(score, threshold), dtype=bool)
    expected = np.where(hard[:, None], cloud_model.predict(rows).probabilities, local.probabilities)
    return RuleCase(threshold, rows, hard, expected, local.confidence < threshold)


def test_a_cascade_on_the_learned_rule_escalates_the_rows_its_router_finds_hard(
    tmp_path: Path, digits_packages: ScenarioPackages
) -> None:
    built = digits_packages
    case = _rule_case(built, "learned")
    rows, hard = case.rows, case.hard
    assert 0 < hard.sum() < len(rows)
    # the learned rule decides, not max-probability at the same threshold
    assert not np.array_equal(hard, case.max_probability_hard)
    cloud = _scenario_cloud(built)
    _deploy_rule(cloud, EscalationRule.LEARNED, case.threshold)
    agent = _scenario_agent(tmp_path, cloud, built)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        batch = await agent.predict(FEATURE, PredictRequest(inputs=rows.tolist()))
        assert (batch.answered_by, batch.reason, batch.degraded) == ("cloud", "escalated", False)
        np.testing.assert_allclose(np.asarray(batch.outputs), case.expected, rtol=1e-5, atol=1e-6)
        one_by_one = [
            await agent.predict(FEATURE, PredictRequest(inputs=[row])) for row in rows[:40].tolist()
        ]
        assert [a.answered_by == "cloud" for a in one_by_one] == hard[:40].tolist()
        await agent.stop()

    run(body)


def test_a_cascade_on_the_prototypes_rule_escalates_over_http_what_the_inputs_make_hard(
    tmp_path: Path, digits_packages: ScenarioPackages
) -> None:
    """The agent scores each request's rows with the package's prototypes graph (the rows
    and the edge's probabilities): devices asking over HTTP get the cloud's answer for the
    rows it finds hard, the edge's for the rest, one row at a time as in a batch."""
    from tierwise.edge.api import create_app

    built = digits_packages
    case = _rule_case(built, "prototypes")
    rows, hard = case.rows, case.hard
    assert 0 < hard.sum() < len(rows)
    assert not np.array_equal(hard, case.max_probability_hard)  # the inputs count
    cloud = _scenario_cloud(built)
    _deploy_rule(cloud, EscalationRule.PROTOTYPES, case.threshold)
    agent = _scenario_agent(tmp_path, cloud, built)

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        transport = httpx.ASGITransport(app=create_app(agent))
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            url = f"/v1/predict/{FEATURE}"
            batch = (await client.post(url, json={"inputs": rows.tolist()})).json()
            one_by_one = [
                (await client.post(url, json={"inputs": [row]})).json()
                for row in rows[:40].tolist()
            ]
        await agent.stop()
        assert (batch["answered_by"], batch["reason"]) == ("cloud", "escalated")
        np.testing.assert_allclose(
            np.asarray(batch["outputs"]), case.expected, rtol=1e-5, atol=1e-6
        )
        assert [a["answered_by"] == "cloud" for a in one_by_one] == hard[:40].tolist()

    run(body)


def _tamper(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_a_package_whose_router_changed_after_signing_is_refused(
    tmp_path: Path, digits_packages: ScenarioPackages
) -> None:
    built = digits_packages
    router = "router-int8.onnx"
    package = Path(shutil.copytree(built.edge, tmp_path / "digits"))
    loaded_before = load_verified(package, [built.public_key])  # verified, not yet answering
    _tamper(package / router)
    # Loading every rule up front: the change is caught at install, not by the first hard row.
    with pytest.raises(
        VerificationError, match=rf"{router} changed since the package was verified"
    ):
        PackageAnswerer(loaded_before)
    with pytest.raises(VerificationError, match=router):
        SignedPackages((built.public_key,)).load(package)

    # The agent, offered it: refused, nothing installed in its name.
    cloud = _scenario_cloud(built, package)
    _deploy_rule(cloud, EscalationRule.LEARNED, 0.9)
    agent = _scenario_agent(tmp_path / "agent", cloud, built)

    async def body() -> None:
        await agent.start()
        await _until(lambda: FEATURE in agent.deployer.refused)
        assert router in agent.deployer.refused[FEATURE].reason
        assert _version(agent) is None
        await agent.stop()

    run(body)


def test_metrics_snapshots_keep_their_cadence_while_the_wan_swallows_requests(
    tmp_path: Path, packages: dict[str, Path], keys: Keys
) -> None:
    """A blackholed WAN: status reports and uploads hang for a whole timeout, yet a snapshot
    (with the outbox's oldest unsent event and deadline misses) is taken every interval."""
    cloud = _cloud(packages, keys)
    deploy(cloud, 1, threshold=0.0)
    agent = _agent(tmp_path, cloud, keys)
    snapshots: list[dict[str, object]] = []

    async def body() -> None:
        await agent.start()
        await _until(lambda: _version(agent) == 1)
        await agent.predict(FEATURE, _request(1))
        cloud.delay_s = 60.0  # every call now waits far longer than the test
        assert agent.outbox is not None
        await _until(
            lambda: sum(e.stream == "metrics" for e in agent.outbox.oldest(1000, 10**7)) >= 5
        )
        stored = agent.outbox.oldest(1000, 10**7)
        snapshots.extend(json.loads(e.body) for e in stored if e.stream == "metrics")
        cloud.delay_s = 0.0
        await agent.stop()

    run(body)
    last = snapshots[-1]
    assert isinstance(last["outbox_oldest_ts"], float)  # events wait to be sent
    versions = last["versions"]
    assert isinstance(versions, list)
    assert versions[0]["deadline_misses"] == 0
