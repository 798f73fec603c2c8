"""`tierwise.simulate` exports exactly the simulation API it offers, lazily (tests/exported.py)."""

from tests.exported import assert_exports_match, heavy_modules_loaded


def test_all_lists_exactly_the_public_names() -> None:
    assert_exports_match("tierwise.simulate")


def test_importing_the_package_loads_neither_the_solver_nor_matplotlib() -> None:
    assert heavy_modules_loaded("tierwise.simulate", ("scipy", "matplotlib")) == []
