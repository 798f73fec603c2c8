"""Deployments: operators assign package versions per site and feature; sites pull them."""

from __future__ import annotations

from typing import Any

import pytest

from .support import Cloud

ASSIGNMENT = {
    "package": "wine",
    "version": 1,
    "placement": "cascade",
    "threshold": 0.8,
    "deadline_ms": 150,
    "escalate_budget_ms": 60,
}


def assign(cloud: Cloud, site: str, feature: str, **changes: Any) -> Any:
    return cloud.client.put(
        f"/v1/sites/{site}/features/{feature}",
        json=ASSIGNMENT | changes,
        headers=cloud.admin,
    )


def test_site_pulls_what_the_operator_assigned(cloud: Cloud, wine_v1: str) -> None:
    assert assign(cloud, "a", "quality").status_code == 200
    response = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a)
    body = response.json()
    assert body["site"] == "a"
    # an assignment without a rule cascades on max-probability, and the edge is told so
    defaults = {"rule": "max_probability", "tie_share": 0.0, "planned_escalated": None}
    expected = ASSIGNMENT | {"sha256": wine_v1} | defaults
    assert body["features"] == {"quality": expected}
    assert response.headers["ETag"] == f'"{body["etag"]}"'


def test_the_escalation_rule_travels_with_its_threshold(cloud: Cloud, wine_v1: str) -> None:
    routed = {"rule": "learned", "threshold": 0.96, "tie_share": 0.25, "planned_escalated": 0.05}
    assert assign(cloud, "a", "quality", **routed).status_code == 200
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert {k: body["features"]["quality"][k] for k in routed} == routed


def test_etag_answers_304_until_something_changes(cloud: Cloud, wine_v1: str) -> None:
    assign(cloud, "a", "quality")
    first = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a)
    etag = first.headers["ETag"]
    same = cloud.client.get(
        "/v1/sites/a/deployment", headers=cloud.site_a | {"If-None-Match": etag}
    )
    assert same.status_code == 304
    assign(cloud, "a", "quality", threshold=0.7)
    changed = cloud.client.get(
        "/v1/sites/a/deployment", headers=cloud.site_a | {"If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.json()["features"]["quality"]["threshold"] == 0.7


def test_sites_see_only_their_own_features(cloud: Cloud, wine_v1: str) -> None:
    assign(cloud, "a", "quality")
    assign(cloud, "b", "other", placement="edge")
    a = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    b = cloud.client.get("/v1/sites/b/deployment", headers=cloud.site_b).json()
    assert (list(a["features"]), list(b["features"])) == (["quality"], ["other"])
    assert a["etag"] != b["etag"]


def test_empty_deployment_for_a_site_with_nothing_assigned(cloud: Cloud) -> None:
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert body["features"] == {}


@pytest.mark.parametrize(
    "changes",
    [
        {"placement": "moon"},
        {"threshold": 1.5},
        {"rule": "oracle"},
        {"deadline_ms": 0},
        {"escalate_budget_ms": -1},
        {"version": 0},
        {"package": "has space"},
        {"unknown": 1},
        {"variant": "has space"},
    ],
)
def test_malformed_assignment_is_422(cloud: Cloud, wine_v1: str, changes: dict[str, Any]) -> None:
    assert assign(cloud, "a", "quality", **changes).status_code == 422


def test_assignment_of_an_unregistered_package_is_422(cloud: Cloud, wine_v1: str) -> None:
    response = assign(cloud, "a", "quality", version=2)
    assert response.status_code == 422
    assert "not in the registry" in response.json()["detail"]
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert body["features"] == {}


def test_the_assigned_variant_reaches_the_site(cloud: Cloud, wine_v1: str) -> None:
    unnamed = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()["etag"]
    assert assign(cloud, "a", "quality", variant="fp32").status_code == 200
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert body["features"]["quality"]["variant"] == "fp32"
    assert body["etag"] != unnamed
    # back to no variant: the key is left out again (agents from before variants parse it)
    assert assign(cloud, "a", "quality").status_code == 200
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert "variant" not in body["features"]["quality"]


def test_a_variant_the_package_lacks_is_422_naming_what_it_has(cloud: Cloud, wine_v1: str) -> None:
    assert assign(cloud, "a", "quality").status_code == 200
    response = assign(cloud, "a", "quality", variant="distilled-int8")
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "package 'wine' version 1 has no variant 'distilled-int8'; it has fp32"
    )
    body = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()
    assert "variant" not in body["features"]["quality"]  # the assignment before it stands


def test_unassigning_a_feature(cloud: Cloud, wine_v1: str) -> None:
    assign(cloud, "a", "quality")
    first = cloud.client.delete("/v1/sites/a/features/quality", headers=cloud.admin)
    again = cloud.client.delete("/v1/sites/a/features/quality", headers=cloud.admin)
    assert (first.status_code, again.status_code) == (204, 404)


def test_operator_lists_sites_known_by_token_or_assignment(cloud: Cloud, wine_v1: str) -> None:
    assign(cloud, "z", "quality")
    assert cloud.client.get("/v1/sites", headers=cloud.admin).json() == ["a", "b", "z"]


def test_status_report_returns_the_deployment_etag(cloud: Cloud, wine_v1: str) -> None:
    assign(cloud, "a", "quality")
    etag = cloud.client.get("/v1/sites/a/deployment", headers=cloud.site_a).json()["etag"]
    report = {
        "features": [
            {
                "feature": "quality",
                "package": "wine",
                "version": 1,
                "healthy": True,
                "since": 1.0,
                "counters": {"requests": 10, "p50_ms": 1.0, "p99_ms": 3.0},
            }
        ]
    }
    ack = cloud.client.post("/v1/sites/a/status", json=report, headers=cloud.site_a)
    assert ack.json() == {"etag": etag}
