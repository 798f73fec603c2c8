"""One check of a package's public surface, after httpx's tests/test_exported_members.py.

A package's `__all__` lists exactly the public names its `__init__` binds or offers lazily
(`dir()` shows both): none left out, none listed that is not there, each one resolving, in
the order ruff (RUF022) keeps. Modules do not count (a package's submodules become its
attributes once imported), nor the plumbing an `__init__` needs (typing, `lazy_names`).
"""

from __future__ import annotations
import __future__

import importlib
import json
import re
import subprocess
import sys
import types
import typing

import pytest

import tierwise.lazy

# dunders a package may export, as httpx exports its own __version__
ALSO_PUBLIC = {"__version__"}
# names an __init__ binds for the type checker or lazy loading, when they are these very objects
PLUMBING = {
    "annotations": __future__.annotations,
    "TYPE_CHECKING": typing.TYPE_CHECKING,
    "lazy_names": tierwise.lazy.lazy_names,
}


def ruff_order(name: str) -> tuple[int, list[str | tuple[int, str]]]:
    """CONSTANTS, then Classes, then everything else; each in natural order (a2 < a10)."""
    kind = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    return kind, [(int(p), p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def public_names(package: types.ModuleType) -> set[str]:
    """The names a package binds or offers lazily that a user may import from it."""
    names = set()
    for name in dir(package):
        if name.startswith("_") and name not in ALSO_PUBLIC:
            continue
        value = getattr(package, name)
        if isinstance(value, types.ModuleType):
            continue
        if name in PLUMBING and value is PLUMBING[name]:
            continue
        names.add(name)
    return names


def assert_exports_match(name: str) -> None:
    """`__all__` of package `name` is sorted and names exactly its public names."""
    package = importlib.import_module(name)
    exported = list(package.__all__)
    assert exported == sorted(exported, key=ruff_order), f"{name}.__all__ is not in RUF022 order"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    public = public_names(package)
    missing, extra = sorted(public - set(exported)), sorted(set(exported) - public)
    assert not missing, f"public in {name} but not in its __all__: {missing}"
    assert not extra, f"in {name}.__all__ but not a public name there: {extra}"
    with pytest.raises(AttributeError):
        _ = package.not_a_member


def heavy_modules_loaded(imports: str, heavy: tuple[str, ...]) -> list[str]:
    """Which of `heavy` a fresh interpreter has loaded after `import {imports}`."""
    loaded_now = f"[m for m in {heavy!r} if m in sys.modules]"
    code = f"import json, sys, {imports}; print(json.dumps({loaded_now}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded
