"""`tierwise.package` exports its sorted __all__, lazily: importing it loads nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tierwise.package


def _isort_order(name: str) -> tuple[int, str]:
    """The order ruff (RUF022) keeps __all__ in: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert tierwise.package.__all__ == sorted(tierwise.package.__all__, key=_isort_order)
    for name in tierwise.package.__all__:
        assert getattr(tierwise.package, name) is not None, name
    with pytest.raises(AttributeError):
        _ = tierwise.package.not_a_member  # type: ignore[attr-defined]


def test_importing_the_package_or_its_cli_loads_neither_crypto_nor_onnxruntime() -> None:
    code = (
        "import sys, tierwise.package, tierwise.package.commands; "
        "print(sorted(m for m in ('cryptography', 'onnxruntime', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
