"""`tierwise.package` exports its public names lazily: importing it loads nothing heavy."""

from __future__ import annotations

from tests.exported import assert_exports_match, heavy_modules_loaded


def test_all_lists_exactly_the_public_names() -> None:
    assert_exports_match("tierwise.package")


def test_importing_the_package_or_its_cli_loads_neither_crypto_nor_onnxruntime() -> None:
    imports = "tierwise.package, tierwise.package.commands"
    assert heavy_modules_loaded(imports, ("cryptography", "onnxruntime", "sklearn")) == []
