"""Drift judged in the cloud from the sites' feedback summaries: counts only, on both databases."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.cloud.drift import judge
from tierwise.edge.feedback import FeedbackPolicy, FeedbackWindow

from .packages import drift, trained, wine
from .support import Cloud

FEATURE = "quality"


def _summary(x: np.ndarray) -> dict[str, object]:
    """What an edge agent running wine v1 reports for these rows (edge/feedback.py)."""
    window = FeedbackWindow(FEATURE, "wine", 1, "fp32", drift(200))
    p = trained(200).predict_proba(x)
    window.add(x, p, None, None, p.argmax(axis=1).tolist())
    body = window.take(FeedbackPolicy())
    assert body is not None
    return body


def _send(cloud: Cloud, seq: int, x: np.ndarray) -> None:
    event = {"stream": "metrics", "seq": seq, "ts": cloud.clock.now(), "kind": "feedback.summary"}
    batch = {"events": [event | {"body": _summary(x)}]}
    response = cloud.client.post("/v1/sites/a/telemetry", json=batch, headers=cloud.site_a)
    assert response.status_code == 200, response.text


def _verdict(cloud: Cloud) -> dict[str, object]:
    response = cloud.client.get("/v1/drift", headers=cloud.admin)
    assert response.status_code == 200
    (view,) = response.json()
    return dict(view)


def test_a_gain_change_at_one_site_is_detected_then_cleared_when_it_is_gone(
    cloud: Cloud, wine_v1: str
) -> None:
    x, _y = wine()
    _send(cloud, 1, x)  # 178 rows as the package saw them
    steady = _verdict(cloud)
    assert steady["drifted"] is False
    assert steady["rows"] == 178
    for seq in (2, 3):  # a sensor's gain and offset changed: 2 of the 3 newest summaries
        cloud.clock.advance(10)
        _send(cloud, seq, x * 1.5 + 0.5)
    shifted = _verdict(cloud)
    assert shifted["drifted"] is True
    assert shifted["psi"] > shifted["threshold"] >= 0.25  # type: ignore[operator]
    assert shifted["columns_over"] >= 3  # type: ignore[operator]
    assert shifted["since"] == cloud.clock.now() - 10  # detected at the first shifted summary
    metrics = cloud.client.get("/metrics", headers=cloud.admin).text
    assert 'tierwise_cloud_drift{feature="quality",site="a"} 1.0' in metrics
    assert 'tierwise_cloud_drift_changes_total{change="detected"} 1.0' in metrics
    cloud.clock.advance(400)  # the shifted window ages out; the stream is back
    _send(cloud, 4, x)
    assert _verdict(cloud)["drifted"] is False


def test_a_site_reads_its_own_verdicts_only(cloud: Cloud, wine_v1: str) -> None:
    _send(cloud, 1, wine()[0])
    assert cloud.client.get("/v1/sites/a/drift", headers=cloud.site_a).json()[0]["site"] == "a"
    assert cloud.client.get("/v1/sites/a/drift", headers=cloud.site_b).status_code == 403
    assert cloud.client.get("/v1/drift", headers=cloud.site_a).status_code == 403
    assert cloud.client.get("/v1/drift").status_code == 401


def test_few_rows_give_no_verdict_and_a_summary_that_does_not_fit_is_ignored(
    cloud: Cloud, wine_v1: str
) -> None:
    x, _y = wine()
    _send(cloud, 1, x[:20])
    assert cloud.client.get("/v1/drift", headers=cloud.admin).json() == []
    with pytest.raises(IndexError):
        judge(drift(200), [{"rows": 1, "inputs": [[1]], "confidence": [1], "variant": "fp32"}])
