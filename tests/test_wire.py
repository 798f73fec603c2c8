"""How a client reads a refusal: the `detail` both tierwise apps answer, or what came instead."""

from __future__ import annotations

import json

import pytest

from tierwise.wire import QUOTED_CHARS, refusal_detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"detail": "version 1 is not newer than 2"}', "version 1 is not newer than 2"),
        ('{"detail": [{"loc": ["body", "version"]}]}', "[{'loc': ['body', 'version']}]"),
        ('{"error": "rate limited"}', '{"error": "rate limited"}'),  # no detail: quoted as sent
        ('["detail"]', '["detail"]'),
        ("<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        ("", ""),
    ],
)
def test_the_reason_is_the_detail_else_the_answer_itself(body: str, reason: str) -> None:
    assert refusal_detail(body) == reason


def test_a_long_refusal_is_cut_to_its_start() -> None:
    long = "x" * (QUOTED_CHARS * 3)
    assert refusal_detail(long) == "x" * QUOTED_CHARS
    assert refusal_detail(json.dumps({"detail": long})) == "x" * QUOTED_CHARS
