"""`tierwise.rules.routers` exports exactly the public names it binds, sorted (exported.py)."""

from tests.exported import assert_exports_match


def test_all_lists_exactly_the_public_names() -> None:
    assert_exports_match("tierwise.rules.routers")
