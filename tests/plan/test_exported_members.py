"""`tierwise.plan` exports exactly the planning API it offers, lazily (tests/exported.py)."""

from tests.exported import assert_exports_match, heavy_modules_loaded


def test_all_lists_exactly_the_public_names() -> None:
    assert_exports_match("tierwise.plan")


def test_importing_the_package_does_not_load_the_solver() -> None:
    assert heavy_modules_loaded("tierwise.plan", ("scipy",)) == []
