"""Session fixtures: keys, model files, and one signed digits package built once (~seconds)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .support import Inputs, Keys, build, make_keys, write_inputs


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return make_keys(tmp_path_factory.mktemp("other-keys"), "stranger")


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, inputs: Inputs, keys: Keys) -> Path:
    """digits v1: fp32 + INT8, cascade against the SVM. Never modify: copy it (`package`)."""
    out = tmp_path_factory.mktemp("built") / "digits-v1"
    build(inputs, out, keys)
    return out


@pytest.fixture(scope="session")
def built_v2(tmp_path_factory: pytest.TempPathFactory, inputs: Inputs, keys: Keys) -> Path:
    out = tmp_path_factory.mktemp("built") / "digits-v2"
    build(inputs, out, keys, version=2)
    return out


@pytest.fixture
def package(built: Path, tmp_path: Path) -> Path:
    """A private copy of digits v1 that a test may tamper with."""
    return Path(shutil.copytree(built, tmp_path / "digits"))


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """Run `tierwise ARGS...` in this process: (exit code, stdout, stderr)."""
    from tierwise.cli import main

    def run(*args: str | Path) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["tierwise", *map(str, args)])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, " ".join(err.split())  # rich wraps long lines; reasons are one line

    return run
