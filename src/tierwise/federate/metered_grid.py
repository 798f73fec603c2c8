"""The cloud's view of the federation: Flower's Grid, metered, time-bounded and auditable.

Wraps the Grid Flower hands the ServerApp and is handed in its place to Flower's
strategies and SecAgg+ workflow, so every message of a run passes through it. It
- counts payload bytes per site, down (cloud -> site) and up (site -> cloud);
- waits for replies with a short adaptive poll and a hard deadline (Flower's own loop
  sleeps 3 s between pulls), and remembers which sites missed a deadline;
- stops offering dropped sites to the strategies, so a dead site is not waited for again;
- optionally writes every received message to disk, for audits of what sites send.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from tierwise.federate.polling import Backoff


class MeteredGrid(Grid):
    """A Grid that meters traffic, bounds waits and can bench sites."""

    def __init__(self, inner: Grid, capture_dir: Path | None = None) -> None:
        self.inner = inner
        self.capture_dir = capture_dir
        self.dropped: set[int] = set()
        self.missed: set[int] = set()
        self.bytes_down: dict[int, int] = defaultdict(int)
        self.bytes_up: dict[int, int] = defaultdict(int)
        self.round = 0
        self.received: list[Message] = []  # every reply pulled since the caller cleared it
        self._frozen: list[int] | None = None
        self._captured = 0
        self._pending: dict[str, int] = {}  # message id -> destination node

    # --- plumbing Flower needs --------------------------------------------------------
    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    # --- what tierwise adds ------------------------------------------------------------
    def get_node_ids(self) -> Iterable[int]:
        nodes = self._frozen if self._frozen is not None else self.inner.get_node_ids()
        return [n for n in nodes if n not in self.dropped]

    def freeze(self, node_ids: list[int]) -> None:
        """Offer exactly these sites to the strategies until the next call.

        Flower's samplers wait (without a bound) for enough connected nodes; a fixed,
        already-checked list keeps them from waiting at all.
        """
        self._frozen = list(node_ids)

    def drop(self, node_ids: Iterable[int]) -> None:
        """Leave these sites out of every later round."""
        self.dropped.update(node_ids)

    def take_traffic(self) -> tuple[dict[int, int], dict[int, int]]:
        """Bytes (down, up) per site since the last call."""
        down, up = dict(self.bytes_down), dict(self.bytes_up)
        self.bytes_down.clear()
        self.bytes_up.clear()
        return down, up

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        batch = list(messages)
        for msg in batch:
            self.bytes_down[msg.metadata.dst_node_id] += payload_bytes(msg)
        ids = list(self.inner.push_messages(batch))
        for msg_id, msg in zip(ids, batch, strict=True):
            if msg_id:
                self._pending[msg_id] = msg.metadata.dst_node_id
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.inner.pull_messages(message_ids))
        for reply in replies:
            self._pending.pop(reply.metadata.reply_to_message_id, None)
            if reply.has_content():
                self.bytes_up[reply.metadata.src_node_id] += payload_bytes(reply)
            self.received.append(reply)
            self._capture(reply)
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Push, then pull until every reply is in or `timeout` passes; never waits longer."""
        waiting = {i for i in self.push_messages(messages) if i}
        deadline = time.monotonic() + (timeout if timeout is not None else 3600.0)
        backoff = Backoff(start=0.01, cap=0.2)
        replies: list[Message] = []
        while waiting and time.monotonic() < deadline:
            got = list(self.pull_messages(waiting))
            if got:
                backoff.reset()
                replies.extend(got)
                waiting -= {m.metadata.reply_to_message_id for m in got}
            else:
                time.sleep(min(backoff.next_delay(), max(0.0, deadline - time.monotonic())))
        for msg_id in waiting:
            node = self._pending.pop(msg_id, None)
            if node is not None:
                self.missed.add(node)
        return replies

    def _capture(self, reply: Message) -> None:
        if self.capture_dir is None:
            return
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        self._captured += 1
        stem = f"r{self.round:03d}-n{reply.metadata.src_node_id}-{self._captured:05d}"
        summary, arrays = describe(reply)
        (self.capture_dir / f"{stem}.json").write_text(json.dumps(summary) + "\n", "utf-8")
        if arrays:
            named: dict[str, Any] = dict(arrays)
            np.savez(self.capture_dir / f"{stem}.npz", **named)


def payload_bytes(msg: Message) -> int:
    """Bytes of the records a message carries: array data, plus keys and values of configs.

    Like Flower's `count_bytes`, which cannot size the list values SecAgg+ sends.
    """
    if not msg.has_content():
        return 0
    total = 0
    for record in msg.content.values():
        if isinstance(record, ArrayRecord):
            total += int(record.count_bytes())
        elif isinstance(record, ConfigRecord | MetricRecord):
            total += sum(len(k) + _value_bytes(v) for k, v in record.items())
    return total


def _value_bytes(value: Any) -> int:
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, list):
        return sum(_value_bytes(v) for v in value)
    return 1 if isinstance(value, bool) else 8


def describe(msg: Message) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """A JSON-able inventory of a message's records, plus its arrays by `record/key`."""
    summary: dict[str, Any] = {
        "src_node_id": msg.metadata.src_node_id,
        "message_type": msg.metadata.message_type,
        "error": msg.error.reason if msg.has_error() else None,
        "records": {},
    }
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    if not msg.has_content():
        return summary, arrays
    for name, record in msg.content.items():
        if isinstance(record, ArrayRecord):
            summary["records"][name] = {
                "kind": "arrays",
                "items": {k: [record[k].dtype, list(record[k].shape)] for k in record},
            }
            for k in record:
                arrays[f"{name}/{k}"] = record[k].numpy()
        elif isinstance(record, MetricRecord):
            summary["records"][name] = {"kind": "metrics", "items": dict(record)}
        elif isinstance(record, ConfigRecord):
            summary["records"][name] = {
                "kind": "config",
                "items": {k: _config_value(v) for k, v in record.items()},
            }
        else:
            summary["records"][name] = {"kind": type(record).__name__}
    return summary, arrays


def _config_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    if isinstance(value, list):
        return [_config_value(v) for v in value]
    return value
