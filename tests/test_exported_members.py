"""The public surface is exactly what __all__ says, sorted, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import tierwise


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert tierwise.__all__ == sorted(tierwise.__all__)
    for name in tierwise.__all__:
        assert getattr(tierwise, name) is not None, name


def test_plan_end_to_end_through_the_public_api() -> None:
    from tests.conftest import EXAMPLES

    result = tierwise.make_plan(tierwise.load_spec(EXAMPLES[0]))
    assert isinstance(result, tierwise.PlanResult)


def test_importing_tierwise_does_not_load_the_solver() -> None:
    code = "import sys, tierwise; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
