"""The `federated:` block of a training job: defaults, and combinations refused with a line."""

from __future__ import annotations

import pytest
from tests.conftest import EXAMPLES

from tierwise.errors import SpecError
from tierwise.federate.settings import default_min_sites, resolve
from tierwise.spec import load_spec, parse_spec

from .support import job


def test_every_field_has_a_default() -> None:
    factory = next(p for p in EXAMPLES if p.name == "factory.yaml")
    spec = load_spec(factory)
    assert spec.training[0].federated is None
    settings = resolve(spec.training[0], ["a", "b", "c"], factory.parent, 64, 10)
    assert settings.min_sites == 2
    assert settings.round_timeout == 60.0
    assert not settings.dp


@pytest.mark.parametrize(
    ("block", "complaint"),
    [
        ("{compression_bits: 8, secagg: {}}", "compression_bits cannot be combined with secagg"),
        ("{compression_bits: 8, dp: {clip: 1.0}}", "compression_bits cannot be combined with dp"),
        ("{dp: {}, secagg: {}}", "dp and secagg cannot be combined yet"),
        ("{round_timeout: 0}", "round_timeout must be positive"),
        ("{round_timeout: fast}", "expected a duration"),
        ("{dirichlet_alpha: 0}", "greater than 0"),
        ("{compression_bits: 1}", "greater than or equal to 2"),
        ("{dp: {delta: 2}}", "less than 1"),
        ("{federated_typo: 1}", "unknown field"),
    ],
)
def test_a_bad_block_names_file_line_and_field(block: str, complaint: str) -> None:
    text = _FACTORY + f"    federated: {block}\n"
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source="f.yaml")
    message = str(caught.value)
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if t.startswith("    federated:"))
    assert f"f.yaml:{line} training[0].federated" in message
    assert complaint in message


def test_default_quorum_is_half_the_sites_but_at_least_two() -> None:
    assert [default_min_sites(n) for n in (2, 3, 4, 10)] == [2, 2, 2, 5]


def test_the_job_helper_builds_a_valid_block() -> None:
    assert job(rounds=3).federated is not None


_FACTORY = next(p for p in EXAMPLES if p.name == "factory.yaml").read_text(encoding="utf-8")
