"""The run's event log: the cloud side appends one JSON line per event, the CLI follows it.

The ServerApp runs in a process the SuperLink starts, so it cannot draw the user's progress
bar; it writes `progress.jsonl` in the run directory instead:
`start` (sites), one `round` per finished round (per-site and global loss/accuracy, bytes
up/down, seconds, privacy spent), then `done` or `failed` (with the reason).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRESS_FILE = "progress.jsonl"


class ProgressLog:
    """Append-only JSON-lines writer (one line per event, flushed at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), **fields})
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()


@dataclass
class ProgressReader:
    """Reads the events written so far; each call returns only the new ones."""

    path: Path
    _offset: int = 0
    _partial: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)

    def poll(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("r", encoding="utf-8") as src:
            src.seek(self._offset)
            chunk = src.read()
            self._offset = src.tell()
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()  # an unfinished last line waits for the next poll
        new = [json.loads(line) for line in lines if line.strip()]
        self.events.extend(new)
        return new

    def finished(self) -> dict[str, Any] | None:
        """The `done` or `failed` event, once written."""
        return next((e for e in self.events if e["event"] in {"done", "failed"}), None)

    def rounds(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "round"]


def read_events(path: Path) -> list[dict[str, Any]]:
    reader = ProgressReader(path)
    reader.poll()
    return reader.events
