"""The operator's client against the real cloud over HTTP: what it sends arrives, a refusal
is a VerificationError, an unreachable cloud a LinkError."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tests.package.support import Keys

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import LinkError, VerificationError
from tierwise.spec.tiers import Placement
from tierwise.wire import (
    MAX_TELEMETRY_BATCH,
    CloudModelAssignment,
    FeatureAssignment,
    RolloutRequest,
    RolloutState,
)

from .packages import build
from .support import ADMIN_TOKEN, Cloud
from .test_telemetry import events, post


def test_an_operator_uploads_assigns_and_rolls_out(
    cloud: Cloud, live: str, signer: Keys, tmp_path: Path
) -> None:
    admin = CloudAdmin(live, ADMIN_TOKEN)
    v1 = build(tmp_path / "wine-v1", signer, "wine", 1)
    info = admin.upload_package(v1)
    assert (info.name, info.version) == ("wine", 1)
    assert admin.upload_package(v1) == info  # packed again: the registry's harmless retry
    admin.set_cloud_model("quality", CloudModelAssignment(package="wine", version=1))
    for site in ("a", "b"):
        admin.assign(
            site,
            "quality",
            FeatureAssignment(
                package="wine", version=1, placement=Placement.CASCADE, deadline_ms=50
            ),
        )
    deployment = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert deployment["features"]["quality"]["placement"] == "cascade"
    assert admin.streams("a") == {}

    admin.upload_package(build(tmp_path / "wine-v2", signer, "wine", 2))
    rollout = admin.start_rollout(RolloutRequest(package="wine", version=2, canary_sites=["a"]))
    assert (rollout.state, rollout.canary_sites, rollout.other_sites) == (
        RolloutState.CANARY,
        ["a"],
        ["b"],
    )
    now = admin.rollout(rollout.id)  # reading it first lets the cloud move it on
    assert admin.rollouts() == [now]
    assert admin.roll_back(rollout.id).state == RolloutState.ROLLED_BACK
    assert admin.rollout(rollout.id).reason == "rolled back by the operator"
    with pytest.raises(VerificationError, match=r"refused the rollback of rollout \d+ \(409\)"):
        admin.roll_back(rollout.id)


def test_an_operator_reads_a_stream_whole_across_pages(cloud: Cloud, live: str) -> None:
    seqs = list(range(1, MAX_TELEMETRY_BATCH + 2))  # one event more than a page holds
    for batch in (seqs[:MAX_TELEMETRY_BATCH], seqs[MAX_TELEMETRY_BATCH:]):
        assert post(cloud, "a", events("press", batch), cloud.site_a).status_code == 200
    post(cloud, "a", events("other", [1, 2]), cloud.site_a)
    read = CloudAdmin(live, ADMIN_TOKEN).events("a", "press")
    assert [e.seq for e in read] == seqs
    assert (read[-1].kind, read[-1].body) == ("answer", {"n": seqs[-1]})
    assert CloudAdmin(live, ADMIN_TOKEN).events("b", "press") == []


def test_the_cloud_saying_no_is_a_verification_error(
    cloud: Cloud, live: str, signer: Keys, tmp_path: Path
) -> None:
    admin = CloudAdmin(live, ADMIN_TOKEN)
    admin.upload_package(build(tmp_path / "wine-v2", signer, "wine", 2))
    with pytest.raises(VerificationError, match=r"refused package wine-v1 \(409\).*not newer"):
        admin.upload_package(build(tmp_path / "wine-v1", signer, "wine", 1))
    with pytest.raises(VerificationError, match=r"refused rollout 999 \(404\)"):
        admin.rollout(999)
    with pytest.raises(VerificationError, match=r"refused the streams of a \(401\)"):
        CloudAdmin(live, "tw_not-the-admin-token").streams("a")


def test_an_unreachable_cloud_is_a_link_error() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LinkError, match="cannot reach the cloud"):
        CloudAdmin(f"http://127.0.0.1:{port}", ADMIN_TOKEN, timeout_s=5).streams("a")
