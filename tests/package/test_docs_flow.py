"""docs/package.md's five commands (keys, train, package, verify, plan) work exactly as written."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "package.md"


def flow_commands() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- flow:begin -->\s*```sh\n(.*?)```\s*<!-- flow:end -->", text, re.S)
    assert block is not None, "docs/package.md lost its flow block"
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow
def test_the_documented_flow_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    commands = flow_commands()
    assert len(commands) <= 5
    example = tmp_path / "examples" / "measured"
    example.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "measured" / "camera.yaml", example)
    outputs = []
    for command in commands:
        program, *args = shlex.split(command)
        assert program == "tierwise"
        run = subprocess.run(
            [sys.executable, "-m", "tierwise", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, f"{command}\n{run.stderr}"
        outputs.append(run.stdout)
    assert "ok: digits v1" in outputs[3]
    assert "cascade int8→svm" in outputs[4]
    assert not (tmp_path / "build" / "packages" / "digits" / "manifest.json").is_symlink()
