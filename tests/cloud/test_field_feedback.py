"""What a retraining may read of a site: summed summaries, raw examples only where sent."""

from __future__ import annotations

import numpy as np

from tierwise.edge.feedback import FeedbackPolicy, FeedbackWindow
from tierwise.package.drift_reference import FieldReference

from .packages import drift, trained, wine
from .support import Cloud

FEATURE = "quality"


def _send(cloud: Cloud, seq: int, x: np.ndarray, y: np.ndarray, raw: bool) -> None:
    """A wine v1 agent's summary of these rows; every row hard and answered by the cloud."""
    policy = FeedbackPolicy(raw_may_leave=raw)
    window = FeedbackWindow(FEATURE, "wine", 1, "fp32", drift(200), max_examples=4 if raw else 0)
    p = trained(200).predict_proba(x)
    hard = np.ones(len(x), dtype=bool)
    window.add(x, p, hard, y.tolist(), p.argmax(axis=1).tolist(), y.tolist())
    body = window.take(policy)
    event = {"stream": "metrics", "seq": seq, "ts": cloud.clock.now(), "kind": "feedback.summary"}
    response = cloud.client.post(
        "/v1/sites/a/telemetry", json={"events": [event | {"body": body}]}, headers=cloud.site_a
    )
    assert response.status_code == 200, response.text


def test_summaries_are_summed_since_a_time_and_examples_come_only_from_raw_summaries(
    cloud: Cloud, wine_v1: str
) -> None:
    x, y = wine()
    y = np.asarray(y, dtype=np.int64)
    _send(cloud, 1, x[:50], y[:50], raw=True)  # before `since`: not counted
    cloud.clock.advance(10)
    since = cloud.clock.now()
    _send(cloud, 2, x[50:120], y[50:120], raw=False)
    _send(cloud, 3, x[120:], y[120:], raw=True)
    url = f"/v1/sites/a/feedback/{FEATURE}"
    found = cloud.client.get(url, params={"since": since}, headers=cloud.admin).json()
    assert (found["rows"], found["summaries"], found["raw"]) == (len(x) - 50, 2, True)
    assert all(sum(column) == len(x) - 50 for column in found["inputs"])
    assert found["edges"] == drift(200).edges
    assert len(found["examples"]) == 4  # the raw summary's sample; the other sent none
    for example in found["examples"]:
        row = np.asarray(example["inputs"], dtype=np.float32)
        at = int(np.flatnonzero((x[120:] == row).all(axis=1))[0]) + 120
        assert example["label"] == example["cloud_label"] == y[at]
    reference = FieldReference(found["edges"], found["inputs"], found["confidence"])
    assert reference.reference(["fp32"]).rows == len(x) - 50


def test_only_the_operator_reads_feedback_and_an_unknown_feature_is_404(
    cloud: Cloud, wine_v1: str
) -> None:
    x, y = wine()
    _send(cloud, 1, x, np.asarray(y, dtype=np.int64), raw=False)
    url = f"/v1/sites/a/feedback/{FEATURE}"
    assert cloud.client.get(url, headers=cloud.site_a).status_code == 403
    assert cloud.client.get(url, headers=cloud.admin).status_code == 200
    assert cloud.client.get("/v1/sites/a/feedback/nope", headers=cloud.admin).status_code == 404
