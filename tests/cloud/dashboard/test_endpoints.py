"""The dashboard's JSON endpoints: who sees what, and the figures built from what sites send.

Sites are played by HTTP clients with their own tokens, sending status reports and
`metrics.snapshot` telemetry the way an edge agent does; the cloud's clock is virtual.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.cloud.packages import build
from tests.cloud.support import ADMIN_TOKEN, Cloud, bearer
from tests.package.support import Keys

from tierwise.cloud.client import CloudAdmin
from tierwise.cloud.dashboard.views import Fleet, SiteLive
from tierwise.spec.tiers import Placement
from tierwise.wire import FeatureAssignment, RolloutRequest

FEATURE = "quality"
OFFLINE_AFTER_S = 15.0  # the cloud's default


def status(cloud: Cloud, site: str, version: int = 1, **counters: Any) -> None:
    headers = cloud.site_a if site == "a" else cloud.site_b
    body = {
        "features": [
            {
                "feature": FEATURE,
                "package": "wine",
                "version": version,
                "healthy": True,
                "since": 0.0,
                "counters": counters,
            }
        ]
    }
    response = cloud.client.post(f"/v1/sites/{site}/status", json=body, headers=headers)
    assert response.status_code == 200, response.text


def snapshot(
    cloud: Cloud, site: str, seq: int, requests: int, escalations: int = 0, **extra: Any
) -> None:
    """What an agent's status loop records: cumulative counters and its outbox, at clock time."""
    headers = cloud.site_a if site == "a" else cloud.site_b
    body = {
        "versions": [
            {
                "feature": FEATURE,
                "package": "wine",
                "version": 1,
                "requests": requests,
                "escalations": escalations,
                "errors": 0,
                "deadline_misses": extra.get("misses", 0),
                "p50_ms": 3.0,
                "p99_ms": extra.get("p99", 12.0),
            }
        ],
        "outbox": {"depth_events": extra.get("depth", 0), "dropped_events": 0},
        "outbox_oldest_ts": extra.get("oldest"),
    }
    event = {
        "stream": "metrics",
        "seq": seq,
        "ts": cloud.clock.now(),
        "kind": "metrics.snapshot",
        "body": body,
    }
    response = cloud.client.post(
        f"/v1/sites/{site}/telemetry", json={"events": [event]}, headers=headers
    )
    assert response.status_code == 200, response.text


def fleet(cloud: Cloud, headers: dict[str, str]) -> dict[str, Any]:
    response = cloud.client.get("/v1/fleet", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_operator_sees_every_site_and_a_site_only_itself(cloud: Cloud) -> None:
    status(cloud, "a")
    status(cloud, "b")
    everything = fleet(cloud, cloud.admin)
    assert [s["site"] for s in everything["sites"]] == ["a", "b"]
    Fleet.model_validate(everything)  # the body is what the OpenAPI documents
    assert [s["site"] for s in fleet(cloud, cloud.site_a)["sites"]] == ["a"]
    assert [s["site"] for s in fleet(cloud, cloud.site_b)["sites"]] == ["b"]


def test_site_token_cannot_read_another_sites_live_data(cloud: Cloud) -> None:
    snapshot(cloud, "b", 1, requests=5)
    assert cloud.client.get("/v1/sites/b/live", headers=cloud.site_a).status_code == 403
    assert cloud.client.get("/v1/sites/b/live", headers=cloud.site_b).status_code == 200
    assert cloud.client.get("/v1/sites/b/live", headers=cloud.admin).status_code == 200


@pytest.mark.parametrize("path", ["/v1/fleet", "/v1/sites/a/live"])
def test_data_endpoints_refuse_missing_or_wrong_tokens(cloud: Cloud, path: str) -> None:
    assert cloud.client.get(path).status_code == 401
    assert cloud.client.get(path, headers=bearer("tw_wrong-token-000000")).status_code == 401


def test_page_is_served_without_data_or_secrets(cloud: Cloud) -> None:
    page = cloud.client.get("/dashboard")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert ADMIN_TOKEN not in page.text
    assert 'type="password"' in page.text  # the login form asks for the token
    for asset in ("app.js", "charts.js", "style.css"):
        assert cloud.client.get(f"/dashboard/static/{asset}").status_code == 200
    assert "/dashboard" not in cloud.client.get("/openapi.json").json()["paths"]


def test_live_figures_come_from_consecutive_snapshots(cloud: Cloud) -> None:
    status(cloud, "a", requests=0)
    snapshot(cloud, "a", 1, requests=0)
    cloud.clock.advance(2.0)
    snapshot(cloud, "a", 2, requests=40, escalations=10, misses=1, p99=30.0, depth=7,
             oldest=cloud.clock.now() - 1.5)  # fmt: skip
    live = cloud.client.get("/v1/sites/a/live", headers=cloud.site_a).json()
    SiteLive.model_validate(live)
    (feature,) = live["features"]
    (point,) = feature["points"]
    assert point["requests_per_s"] == pytest.approx(20.0)
    assert point["escalated_share"] == pytest.approx(0.25)
    assert point["p99_ms"] == 30.0
    assert point["deadline_misses"] == 1
    assert live["online"] is True
    assert live["outbox"] == {
        "depth_events": 7,
        "oldest_unsent_age_s": pytest.approx(1.5),
        "dropped_events": 0,
        "estimated": False,
    }
    assert fleet(cloud, cloud.admin)["sites"][0]["outbox"] == live["outbox"]


def test_restarted_agent_interval_is_left_out(cloud: Cloud) -> None:
    snapshot(cloud, "a", 1, requests=100)
    cloud.clock.advance(1.0)
    snapshot(cloud, "a", 2, requests=3)  # counters start again after a restart
    cloud.clock.advance(1.0)
    snapshot(cloud, "a", 3, requests=13)
    live = cloud.client.get("/v1/sites/a/live", headers=cloud.admin).json()
    assert [p["requests_per_s"] for p in live["features"][0]["points"]] == [10.0]


def test_silent_site_goes_offline_and_its_outbox_is_estimated_to_grow(cloud: Cloud) -> None:
    status(cloud, "a")
    snapshot(cloud, "a", 1, requests=0)
    cloud.clock.advance(1.0)
    snapshot(cloud, "a", 2, requests=10, depth=2)
    cloud.clock.advance(OFFLINE_AFTER_S + 5.0)
    site = fleet(cloud, cloud.admin)["sites"][0]
    assert site["online"] is False
    live = cloud.client.get("/v1/sites/a/live", headers=cloud.admin).json()
    assert live["outbox"]["estimated"] is True
    first = live["outbox"]["depth_events"]
    assert first == 2 + 10 * 20  # 10 answers/s for 20 silent seconds
    cloud.clock.advance(10.0)
    later = cloud.client.get("/v1/sites/a/live", headers=cloud.admin).json()["outbox"]
    assert later["depth_events"] == first + 100
    assert later["oldest_unsent_age_s"] == pytest.approx(30.0)


def test_escalation_drift_events_are_listed_newest_first(cloud: Cloud) -> None:
    check = {"feature": FEATURE, "package": "wine", "version": 1, "planned": 0.05, "rows": 500}
    events = [
        {"stream": "agent", "seq": 1, "ts": 10.0, "kind": "agent.started", "body": {}},
        {"stream": "agent", "seq": 2, "ts": 20.0, "kind": "escalation.drift",
         "body": check | {"observed": 0.3, "p_value": 1e-9, "drifted": True}},
        {"stream": "agent", "seq": 3, "ts": 30.0, "kind": "escalation.drift",
         "body": check | {"observed": 0.06, "p_value": 0.4, "drifted": False}},
    ]  # fmt: skip
    response = cloud.client.post(
        "/v1/sites/a/telemetry", json={"events": events}, headers=cloud.site_a
    )
    assert response.status_code == 200
    drift = cloud.client.get("/v1/sites/a/live", headers=cloud.site_a).json()["drift"]
    assert [(d["ts"], d["drifted"], d["observed"]) for d in drift] == [
        (30.0, False, 0.06),
        (20.0, True, 0.3),
    ]


def test_plan_gap_beyond_15_percent_is_flagged(cloud: Cloud, live: str, signer: Keys,
                                               tmp_path: Path) -> None:  # fmt: skip
    admin = CloudAdmin(live, ADMIN_TOKEN, timeout_s=10)
    admin.upload_package(build(tmp_path / "wine-1", signer, "wine", 1))
    admin.assign("a", FEATURE, cascade(planned=0.10, deadline_ms=20.0))
    snapshot(cloud, "a", 1, requests=0)
    cloud.clock.advance(1.0)
    snapshot(cloud, "a", 2, requests=100, escalations=11, p99=30.0)  # 11% vs 10%: within
    checks = {c["metric"]: c for c in live_plan(cloud)}
    assert checks["share escalated to the cloud"]["flagged"] is False
    assert checks["p99 latency (ms) vs budget"]["flagged"] is True  # 30 ms against 20 ms
    cloud.clock.advance(1.0)
    snapshot(cloud, "a", 3, requests=200, escalations=40)  # 29 of 100: far from 10%
    checks = {c["metric"]: c for c in live_plan(cloud)}
    assert checks["share escalated to the cloud"]["measured"] == pytest.approx(0.2)
    assert checks["share escalated to the cloud"]["flagged"] is True


def test_site_token_sees_only_its_part_of_a_rollout(cloud: Cloud, live: str, signer: Keys,
                                                   tmp_path: Path) -> None:  # fmt: skip
    admin = CloudAdmin(live, ADMIN_TOKEN, timeout_s=10)
    for version in (1, 2):
        admin.upload_package(build(tmp_path / f"wine-{version}", signer, "wine", version))
    for site in ("a", "b"):
        admin.assign(site, FEATURE, cascade(planned=0.1, deadline_ms=50.0))
    admin.start_rollout(RolloutRequest(package="wine", version=2, canary_sites=["b"]))
    (seen_by_admin,) = fleet(cloud, cloud.admin)["rollouts"]
    assert (seen_by_admin["stage"], seen_by_admin["canary_sites"]) == ("canary", ["b"])
    (seen_by_a,) = fleet(cloud, cloud.site_a)["rollouts"]
    assert (seen_by_a["canary_sites"], seen_by_a["other_sites"]) == ([], ["a"])
    assert "b" not in seen_by_a["reason"].replace("(another site)", "")
    versions = {
        s["site"]: s["features"][0]["deployed_version"] for s in fleet(cloud, cloud.admin)["sites"]
    }
    assert versions == {"a": 1, "b": 2}


def cascade(planned: float, deadline_ms: float) -> FeatureAssignment:
    return FeatureAssignment(
        package="wine",
        version=1,
        placement=Placement.CASCADE,
        threshold=0.8,
        planned_escalated=planned,
        deadline_ms=deadline_ms,
    )


def live_plan(cloud: Cloud) -> list[dict[str, Any]]:
    response = cloud.client.get("/v1/sites/a/live", headers=cloud.admin)
    return list(response.json()["features"][0]["plan"])
