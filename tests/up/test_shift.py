"""`--shift`: parsing, checking against the plan's sites, the transformation, the report."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.errors import UsageError
from tierwise.up.report import SiteResult
from tierwise.up.shift import Shift, check_shift, parse_shift, shifted
from tierwise.up.shift_report import shift_section


def test_a_shift_names_site_feature_time_and_how() -> None:
    shift = parse_shift("plant-north:safety-stop@20s,gain=1.3,noise=0.5")
    assert shift == Shift("plant-north", "safety-stop", 20.0, gain=1.3, noise=0.5)
    assert shift.describe() == "plant-north/safety-stop from 20s: x1.3, noise 0.5 sd"
    assert parse_shift("a:b@1min,offset=-1").offset == -1.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("plant-north@20s,gain=2", "expected SITE:FEATURE@TIME"),
        ("a:b@20s,gian=2", "'gian=2' is not one of gain, offset, noise=N"),
        ("a:b@20s,gain=x", "gain='x' is not a number"),
        ("a:b@20s", "changes nothing"),
        ("a:b@20s,noise=-1", "noise must be 0 or more"),
        ("a:b@soon,gain=2", "soon"),
    ],
)
def test_a_bad_shift_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_shift(text)


def test_the_site_must_serve_the_feature_through_its_agent_within_the_run() -> None:
    served = {"north": {"stop", "maintenance"}, "south": set()}
    check_shift(Shift("north", "stop", 5.0, gain=2), served, 60.0)
    with pytest.raises(UsageError, match="no site 'west'; sites: north, south"):
        check_shift(Shift("west", "stop", 5.0, gain=2), served, 60.0)
    with pytest.raises(UsageError, match=r"south does not serve 'stop' .*it does: none"):
        check_shift(Shift("south", "stop", 5.0, gain=2), served, 60.0)
    with pytest.raises(UsageError, match="at 60s, after the run's 60s"):
        check_shift(Shift("north", "stop", 60.0, gain=2), served, 60.0)


def test_the_transformation_is_gain_offset_and_noise_in_column_sds() -> None:
    x = np.random.default_rng(0).normal(5.0, [1.0, 10.0], size=(20_000, 2)).astype(np.float32)
    out = shifted(x, {"gain": 2.0, "offset": 1.0, "noise": 0.0}, seed=1)
    np.testing.assert_allclose(out, 2 * x + x.std(axis=0), rtol=1e-5, atol=1e-4)
    noisy = shifted(x, {"gain": 1.0, "offset": 0.0, "noise": 0.5}, seed=1)
    assert np.std(noisy - x, axis=0) == pytest.approx(0.5 * x.std(axis=0), rel=0.03)


def test_the_section_splits_the_timeline_at_the_shift_and_counts_other_alarms() -> None:
    def line(t: float, correct: int) -> dict[str, object]:
        w = {"answered": 10, "correct": correct, "labelled": 10, "wanted_cloud": 1}
        return {"t": t, "features": {"stop": w}}

    devices = {"run_started_wall": 1000.0, "timeline": [line(1, 9), line(2, 9), line(3, 5)]}
    verdict = {"site": "n", "feature": "stop", "drifted": True, "since": 1004.5}
    other = {"site": "s", "feature": "stop", "drifted": True, "since": 1003.0}
    sites = {"n": SiteResult(devices, drift=[verdict]), "s": SiteResult({}, drift=[other])}
    section = shift_section(Shift("n", "stop", 2.0, gain=2).as_dict(), sites)
    assert section["before"]["accuracy"] == 0.9
    assert section["after"]["accuracy"] == 0.5
    assert section["before"]["escalated"] == 0.1
    assert section["detected_after_s"] == 2.5
    assert section["false_alarms"] == ["s/stop"]


def test_with_the_loop_the_section_has_a_third_phase_from_when_the_new_version_serves() -> None:
    def line(t: float, correct: int, versions: dict[str, int]) -> dict[str, object]:
        w = {"answered": 10, "correct": correct, "labelled": 10, "versions": versions}
        return {"t": t, "features": {"stop": w}}

    timeline = [
        line(1, 9, {"1": 10}),
        line(2, 9, {"1": 10}),
        line(3, 5, {"1": 10}),
        line(4, 7, {"1": 6, "2": 4}),  # the canary installs v2 during this second
        line(5, 8, {"2": 10}),
        line(6, 10, {"2": 10}),
    ]
    devices = {"run_started_wall": 1000.0, "timeline": timeline}
    verdict = {"site": "n", "feature": "stop", "drifted": False, "since": 1005.5}
    sites = {"n": SiteResult(devices, drift=[verdict])}
    events = [
        {"at": 1002.5, "feature": "stop", "step": "detected", "sites": ["n"], "detail": ""},
        {"at": 1003.9, "feature": "stop", "step": "canary", "sites": ["n"], "detail": ""},
        {"at": 1002.0, "feature": "other", "step": "detected", "sites": ["n"], "detail": ""},
    ]
    section = shift_section(Shift("n", "stop", 2.0, gain=2).as_dict(), sites, {"events": events})
    assert section["before"]["accuracy"] == 0.9
    assert section["after"]["accuracy"] == 0.6  # seconds 3 and 4, before v2 answered most
    assert section["retrained"]["accuracy"] == 0.9  # seconds 5 and 6
    assert section["recovered_after_s"] == 3.0
    assert section["detected_after_s"] == 0.5  # from the loop's event (the verdict cleared)
    assert [(e["step"], e["after_shift_s"]) for e in section["loop"]] == [
        ("detected", 0.5),
        ("canary", 1.9),
    ]


def test_a_verdict_the_loop_cleared_is_said_so() -> None:
    from rich.console import Console

    from tierwise.up.shift_report import render_shift

    verdict = {"drifted": False, "version": 2, "column": "x3", "psi": 0.01, "threshold": 0.25}
    section = {
        **Shift("n", "stop", 2.0, gain=2).as_dict(),
        "before": {"accuracy": 0.9, "escalated": 0.0, "answered": 10},
        "after": {"accuracy": 0.6, "escalated": 0.0, "answered": 10},
        "drift": verdict,
        "detected_after_s": 0.5,
        "false_alarms": [],
    }
    console = Console(record=True, width=200)
    render_shift(section, console)
    text = console.export_text()
    assert "0.5s after the shift; cleared by the end (v2: worst x3 PSI 0.01 <= 0.25)" in text
