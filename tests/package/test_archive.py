"""Package archives: packed deterministically, unpacked to the same tree, links refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tierwise.errors import VerificationError
from tierwise.package.archive import pack_archive, unpack_archive

from .support import tree_bytes

MAX_BYTES = 1_000_000


def write_package(root: Path) -> Path:
    """A package-shaped directory (pack and unpack do not verify, so no signature needed)."""
    (root / "extra").mkdir(parents=True)
    (root / "manifest.json").write_text('{"name": "digits"}')
    (root / "model-fp32.onnx").write_bytes(b"\x08\x01onnx bytes")
    (root / "extra" / "notes.txt").write_text("nested")
    return root


@pytest.mark.parametrize("top_dir", [True, False])
def test_unpacking_a_packed_directory_gives_the_same_tree(tmp_path: Path, top_dir: bool) -> None:
    package = write_package(tmp_path / "digits-v1")
    root = unpack_archive(pack_archive(package, top_dir=top_dir), tmp_path / "out", MAX_BYTES)
    assert root == (tmp_path / "out" / "digits-v1" if top_dir else tmp_path / "out")
    assert tree_bytes(root) == tree_bytes(package)


def test_the_same_files_pack_to_the_same_bytes(tmp_path: Path) -> None:
    first = write_package(tmp_path / "a" / "digits-v1")
    second = tmp_path / "b" / "digits-v1"
    # Written in the other order, at another time, with other permissions.
    (second / "extra").mkdir(parents=True)
    (second / "extra" / "notes.txt").write_text("nested")
    (second / "model-fp32.onnx").write_bytes(b"\x08\x01onnx bytes")
    (second / "manifest.json").write_text('{"name": "digits"}')
    os.utime(second / "manifest.json", (1_000_000, 1_000_000))
    (second / "model-fp32.onnx").chmod(0o600)
    assert pack_archive(first) == pack_archive(second)
    assert pack_archive(first) != pack_archive(first, top_dir=False)


def test_a_changed_file_changes_the_bytes(tmp_path: Path) -> None:
    package = write_package(tmp_path / "digits-v1")
    before = pack_archive(package)
    (package / "model-fp32.onnx").write_bytes(b"\x08\x02onnx bytes")
    assert pack_archive(package) != before


def test_a_link_is_packed_as_a_link_and_refused_on_unpacking(tmp_path: Path) -> None:
    package = write_package(tmp_path / "digits-v1")
    (package / "link").symlink_to("/etc/passwd")
    with pytest.raises(VerificationError, match="not a readable"):
        unpack_archive(pack_archive(package), tmp_path / "out", MAX_BYTES)
