"""Cost: the uploaded plan's $/month per strategy beside the same at the measured traffic."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.cloud.support import Cloud

from .test_endpoints import FEATURE, snapshot

# A plan as `tierwise plan --json` writes it, reduced to what cost reads (the rest is ignored)
PLAN: dict[str, Any] = {
    "spec": "wine-fleet",
    "features": [{"feature": FEATURE, "reason": "ignored by the cloud"}],
    "strategies": {
        # all usage: 100 $/month at the spec's 10 requests/s
        "cloud-only": {"cost": 100.0, "features": [{"feature": FEATURE, "cost": 100.0}]},
        # 30 $/month of gateways whatever the traffic, 2 $/month of calls at 10 requests/s
        "tierwise": {"cost": 32.0, "features": [{"feature": FEATURE, "cost": 2.0}]},
    },
    "requests_per_s": {FEATURE: 10.0},
}


def _cost(cloud: Cloud) -> dict[str, Any]:
    response = cloud.client.get("/v1/cost", headers=cloud.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_plan_is_projected_onto_the_traffic_the_sites_measure(cloud: Cloud) -> None:
    assert _cost(cloud)["spec"] is None  # nothing uploaded yet: no strategies to show
    stored = cloud.client.put("/v1/plan", json=PLAN, headers=cloud.admin)
    assert stored.status_code == 200, stored.text
    assert stored.json()["strategies"] == ["cloud-only", "tierwise"]
    # site a answers 5 requests/s and site b 15: 20 requests/s, twice the spec's 10
    for seq, (a, b) in enumerate([(0, 0), (50, 150), (100, 300)], start=1):
        snapshot(cloud, "a", seq, a)
        snapshot(cloud, "b", seq, b)
        cloud.clock.advance(10)
    cost = _cost(cloud)
    assert cost["spec"] == "wine-fleet"
    (traffic,) = cost["traffic"]
    assert traffic["measured_requests_per_s"] == pytest.approx(20.0)
    assert traffic["planned_requests_per_s"] == 10.0
    assert traffic["sites_measured"] == 2
    by_name = {s["strategy"]: s for s in cost["strategies"]}
    assert by_name["cloud-only"]["measured_per_month"] == pytest.approx(200.0)
    assert by_name["tierwise"]["fixed_per_month"] == pytest.approx(30.0)
    assert by_name["tierwise"]["measured_per_month"] == pytest.approx(34.0)
    assert by_name["tierwise"]["plan_per_month"] == 32.0


def test_only_the_operator_uploads_or_reads_cost_and_a_bad_plan_says_where(cloud: Cloud) -> None:
    assert cloud.client.put("/v1/plan", json=PLAN, headers=cloud.site_a).status_code == 403
    assert cloud.client.get("/v1/cost", headers=cloud.site_a).status_code == 403
    assert cloud.client.get("/v1/cost").status_code == 401
    bad = PLAN | {"strategies": {"tierwise": {"cost": -1.0, "features": []}}}
    refused = cloud.client.put("/v1/plan", json=bad, headers=cloud.admin)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "strategies", "tierwise", "cost"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        # PostgreSQL text cannot hold NUL: found by the fuzz test as a 500 on PostgreSQL
        ({"spec": "wine\x00fleet"}, ["body", "spec"]),
        (
            {"strategies": {"tier\x00wise": PLAN["strategies"]["tierwise"]}},
            ["body", "strategies", "tier\x00wise", "[key]"],
        ),
        ({"requests_per_s": {FEATURE: float("inf")}}, ["body", "requests_per_s", FEATURE]),
        (
            {"strategies": {"tierwise": {"cost": float("inf"), "features": []}}},
            ["body", "strategies", "tierwise", "cost"],
        ),
    ],
)
def test_a_plan_the_database_cannot_keep_is_refused_not_a_500(
    cloud: Cloud, change: dict[str, Any], where: list[str]
) -> None:
    # Python's json writes Infinity (httpx would refuse to): what a careless client sends
    body = json.dumps(PLAN | change)
    headers = cloud.admin | {"Content-Type": "application/json"}
    refused = cloud.client.put("/v1/plan", content=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == where
    assert _cost(cloud)["spec"] is None  # nothing was stored
