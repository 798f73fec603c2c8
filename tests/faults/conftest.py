"""The fault suite's summary: every fault's acknowledged / delivered / duplicates / lost counts
at the end of a normal run (no `-s` needed), so CI logs show them next to pass or fail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.cloud.conftest import DbTarget, postgres_schema
from tests.faults.support import TALLIES


@pytest.fixture
def pg_schema() -> Iterator[DbTarget]:
    """A private schema on the shared PostgreSQL (skipped without it, failed under CI)."""
    with postgres_schema() as target:
        yield target


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLIES:
        return
    terminalreporter.section("fault counts (lost must be 0)")
    for tally in TALLIES:
        terminalreporter.write_line(tally.line())
