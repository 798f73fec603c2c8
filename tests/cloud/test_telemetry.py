"""Telemetry ingest: idempotent by (site, stream, seq), ordered reads, sites kept apart."""

from __future__ import annotations

import random
from typing import Any

from tierwise.wire import MAX_SEQ, MAX_TELEMETRY_BATCH

from .support import Cloud


def events(stream: str, seqs: list[int], kind: str = "answer") -> list[dict[str, Any]]:
    return [
        {"stream": stream, "seq": s, "ts": 1_700_000_000.0 + s, "kind": kind, "body": {"n": s}}
        for s in seqs
    ]


def post(cloud: Cloud, site: str, batch: list[dict[str, Any]], headers: dict[str, str]) -> Any:
    return cloud.client.post(f"/v1/sites/{site}/telemetry", json={"events": batch}, headers=headers)


def read_all(cloud: Cloud, site: str, stream: str, headers: dict[str, str]) -> list[int]:
    seqs: list[int] = []
    after = -1
    while True:
        page = cloud.client.get(
            f"/v1/sites/{site}/telemetry",
            params={"stream": stream, "after": after, "limit": 100},
            headers=headers,
        )
        assert page.status_code == 200, page.text
        body = page.json()
        seqs += [e["seq"] for e in body["events"]]
        if body["next_after"] is None:
            return seqs
        after = body["next_after"]


def test_retried_batch_is_stored_once(cloud: Cloud) -> None:
    batch = events("cam1", list(range(50)))
    first = post(cloud, "a", batch, cloud.site_a)
    again = post(cloud, "a", batch, cloud.site_a)
    assert first.json() == {"accepted": 50, "duplicates": 0, "high_water": {"cam1": 49}}
    assert again.json() == {"accepted": 0, "duplicates": 50, "high_water": {"cam1": 49}}
    assert read_all(cloud, "a", "cam1", cloud.site_a) == list(range(50))


def test_overlapping_and_self_repeating_batches_count_each_event_once(cloud: Cloud) -> None:
    post(cloud, "a", events("s", [0, 1, 2, 3]), cloud.site_a)
    ack = post(cloud, "a", events("s", [2, 3, 4, 4, 5]), cloud.site_a).json()
    assert ack == {"accepted": 2, "duplicates": 3, "high_water": {"s": 5}}


def test_reads_return_seq_order_whatever_the_arrival_order(cloud: Cloud) -> None:
    seqs = list(range(300))
    random.Random(7).shuffle(seqs)
    for start in range(0, 300, 70):
        post(cloud, "a", events("s", seqs[start : start + 70]), cloud.site_a)
    assert read_all(cloud, "a", "s", cloud.site_a) == list(range(300))


def test_event_body_round_trips(cloud: Cloud) -> None:
    batch = [
        {
            "stream": "s",
            "seq": 7,
            "ts": 12.5,
            "kind": "escalation",
            "body": {"label": "x", "scores": [0.1, 0.9], "nested": {"ok": True}},
        },
        {  # what a bulk insert must carry untouched: quotes, backslashes, non-ASCII, extremes
            "stream": "s",
            "seq": MAX_SEQ,
            "ts": 1_700_000_000.123456,
            "kind": "escalation",
            "body": {"say": 'a "quoted" \\ path\nnext', "name": "Zürich 🙂", "empty": {}},
        },
        {"stream": "s", "seq": 0, "ts": -1.5, "kind": "k", "body": {}},
    ]
    post(cloud, "a", batch, cloud.site_a)
    got = cloud.client.get(
        "/v1/sites/a/telemetry", params={"stream": "s"}, headers=cloud.site_a
    ).json()
    assert got["events"] == sorted(batch, key=lambda e: e["seq"])


def test_streams_and_sites_are_independent_sequences(cloud: Cloud) -> None:
    post(cloud, "a", events("s", [0, 1]) + events("t", [0]), cloud.site_a)
    ack = post(cloud, "b", events("s", [0, 1, 2]), cloud.site_b).json()
    assert ack["accepted"] == 3  # site b's seq 0 is not site a's
    summary = cloud.client.get("/v1/sites/a/streams", headers=cloud.site_a).json()
    assert summary == {"s": {"events": 2, "high_water": 1}, "t": {"events": 1, "high_water": 0}}


def test_a_full_batch_is_ingested_in_one_call(cloud: Cloud) -> None:
    batch = events("bulk", list(range(MAX_TELEMETRY_BATCH)))
    ack = post(cloud, "a", batch, cloud.site_a).json()
    assert ack["accepted"] == MAX_TELEMETRY_BATCH
    assert ack["high_water"] == {"bulk": MAX_TELEMETRY_BATCH - 1}


def test_batch_above_the_cap_is_refused_whole(cloud: Cloud) -> None:
    batch = [{"stream": "s", "seq": i, "ts": 0.0, "kind": "k"} for i in range(10_001)]
    response = post(cloud, "a", batch, cloud.site_a)
    assert response.status_code == 422
    summary = cloud.client.get("/v1/sites/a/streams", headers=cloud.site_a).json()
    assert summary == {}


def test_site_cannot_read_or_write_another_sites_telemetry(cloud: Cloud) -> None:
    post(cloud, "a", events("s", [0]), cloud.site_a)
    read = cloud.client.get("/v1/sites/a/telemetry", params={"stream": "s"}, headers=cloud.site_b)
    write = post(cloud, "a", events("s", [1]), cloud.site_b)
    summary = cloud.client.get("/v1/sites/a/streams", headers=cloud.site_b)
    assert (read.status_code, write.status_code, summary.status_code) == (403, 403, 403)
    assert read_all(cloud, "a", "s", cloud.admin) == [0]  # the write did not land


def test_operator_reads_but_cannot_write_as_a_site(cloud: Cloud) -> None:
    post(cloud, "a", events("s", [0]), cloud.site_a)
    assert read_all(cloud, "a", "s", cloud.admin) == [0]
    assert post(cloud, "a", events("s", [1]), cloud.admin).status_code == 403


def test_malformed_events_are_422_and_store_nothing(cloud: Cloud) -> None:
    bad = [
        {"events": [{"stream": "s", "seq": -1, "ts": 0.0, "kind": "k"}]},
        {"events": [{"stream": "s", "seq": 2**63, "ts": 0.0, "kind": "k"}]},
        {"events": [{"stream": "", "seq": 1, "ts": 0.0, "kind": "k"}]},
        {"events": [{"stream": "s/../x", "seq": 1, "ts": 0.0, "kind": "k"}]},
        {"events": [{"stream": "s", "seq": "one", "ts": 0.0, "kind": "k"}]},
        {"events": [{"stream": "s", "seq": 1, "ts": 0.0, "kind": "k", "extra": 1}]},
        {"events": [{"stream": "s", "seq": 1, "kind": "k"}]},
        {"events": "nope"},
        {},
    ]
    codes = [cloud.client.post("/v1/sites/a/telemetry", json=b, headers=cloud.site_a) for b in bad]
    assert [c.status_code for c in codes] == [422] * len(bad)
    for raw in (
        b'{"events": [{"stream": "s", "seq": 1, "ts": 0, "kind": "k", "body": {"x": NaN}}]}',
        b'{"events": [{"stream": "s", "seq": 1, "ts": Infinity, "kind": "k"}]}',
        b'{"events": [{"stream": "s", "seq": 1, "ts": 0, "kind": "k\\u0000"}]}',
        b'{"events": [{"stream": "s", "seq": 1, "ts": 0, "kind": "k", "body": {"x": "\\u0000"}}]}',
    ):
        response = cloud.client.post(
            "/v1/sites/a/telemetry",
            content=raw,
            headers=cloud.site_a | {"Content-Type": "application/json"},
        )
        assert response.status_code == 422, raw
    not_json = cloud.client.post(
        "/v1/sites/a/telemetry",
        content=b"{not json",
        headers=cloud.site_a | {"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    assert cloud.client.get("/v1/sites/a/streams", headers=cloud.site_a).json() == {}


def test_empty_batch_is_acknowledged(cloud: Cloud) -> None:
    ack = post(cloud, "a", [], cloud.site_a).json()
    assert ack == {"accepted": 0, "duplicates": 0, "high_water": {}}


def test_metrics_count_accepted_and_duplicate_events(cloud: Cloud) -> None:
    post(cloud, "a", events("s", [0, 1, 2]), cloud.site_a)
    post(cloud, "a", events("s", [2, 3]), cloud.site_a)
    text = cloud.client.get("/metrics").text
    assert 'tierwise_cloud_telemetry_events_total{result="accepted",site="a"} 4.0' in text
    assert 'tierwise_cloud_telemetry_events_total{result="duplicate",site="a"} 1.0' in text
