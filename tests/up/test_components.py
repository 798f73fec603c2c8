"""What `tierwise up` leaves for the operator: the dashboard's sign-in token, private."""

from __future__ import annotations

import stat
from pathlib import Path

from tierwise.up.components import Tokens


def test_operator_token_is_written_readable_by_the_owner_only(tmp_path: Path) -> None:
    tokens = Tokens.issue(["plant-a"])
    tokens.write(tmp_path)
    path = Tokens.admin_file(tmp_path)
    assert path.read_text(encoding="utf-8").strip() == tokens.admin
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.admin not in (tmp_path / "tokens.json").read_text(encoding="utf-8")
