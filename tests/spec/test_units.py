from __future__ import annotations

import pytest

from tierwise.spec.units import (
    BANDWIDTH,
    COMPUTE,
    DURATION,
    FLOPS,
    PRICE_PER_CALL,
    PRICE_PER_GB,
    PRICE_PER_HOUR,
    PRICE_PER_MONTH,
    RATE,
    SECONDS_PER_MONTH,
    SIZE,
    fmt_duration,
)


@pytest.mark.parametrize(
    ("unit", "text", "value"),
    [
        (DURATION, "20ms", 0.02),
        (DURATION, "1.5s", 1.5),
        (DURATION, "250us", 250e-6),
        (DURATION, "5min", 300.0),
        (DURATION, "7d", 7 * 86400.0),
        (SIZE, "4KB", 4000.0),
        (SIZE, "2MiB", 2 * 1024.0**2),
        (SIZE, "1.5 GB", 1.5e9),
        (BANDWIDTH, "20Mbps", 20e6),
        (BANDWIDTH, "1Gbps", 1e9),
        (RATE, "20/s", 20.0),
        (RATE, "6/min", 0.1),
        (RATE, "1/week", 1 / (7 * 86400)),
        (FLOPS, "8.7GFLOP", 8.7e9),
        (COMPUTE, "200GFLOP/s", 200e9),
        (COMPUTE, "40TOPS", 40e12),
        (PRICE_PER_GB, "$0.09/GB", 0.09e-9),
        (PRICE_PER_MONTH, "$150/month", 150.0),
        (PRICE_PER_MONTH, "$1200/year", 100.0),
        (PRICE_PER_HOUR, "$0.50/h", 0.5),
        (PRICE_PER_CALL, "$0.20/1k", 0.2e-3),
    ],
)
def test_units_parse_to_base_units(unit: object, text: str, value: float) -> None:
    assert unit.parse(text) == pytest.approx(value)  # type: ignore[attr-defined]


def test_price_per_month_from_hourly_uses_the_mean_month() -> None:
    assert PRICE_PER_MONTH.parse("$1/h") == pytest.approx(SECONDS_PER_MONTH / 3600)


@pytest.mark.parametrize("bad", ["fast", "20", "20 parsecs", "ms", "", "-5ms", True, [1]])
def test_duration_refuses_what_is_not_a_duration(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a duration like 20ms"):
        DURATION.parse(bad)


def test_bare_zero_is_accepted_for_any_quantity() -> None:
    assert SIZE.parse(0) == 0.0


def test_money_needs_a_dollar_sign() -> None:
    with pytest.raises(ValueError, match=r"expected a price per GB like \$0.09/GB"):
        PRICE_PER_GB.parse("0.09/GB")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0005, "500us"), (0.0123, "12.3ms"), (4.2, "4.2s"), (7200.0, "2.0h")]
)
def test_durations_print_in_the_shortest_readable_unit(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text
