"""The labelled generators: deterministic, well-formed, and physically what they claim to be."""

from __future__ import annotations

import numpy as np
import pytest

from tierwise.scenarios import transactions, vibration


def test_vibration_windows_are_balanced_finite_and_seeded() -> None:
    x, y = vibration.generate(20, seed=3)
    assert x.shape == (100, vibration.FEATURES)
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert {
        str(c): int(n) for c, n in zip(*np.unique(y, return_counts=True), strict=True)
    } == dict.fromkeys(vibration.CLASSES, 20)
    again, _ = vibration.generate(20, seed=3)
    other, _ = vibration.generate(20, seed=4)
    np.testing.assert_array_equal(x, again)
    assert not np.array_equal(x, other)


def test_bearing_fault_frequencies_are_those_of_the_cwru_bearing() -> None:
    # SKF 6205: BPFO 3.585x and BPFI 5.415x shaft speed (CWRU bearing data center figures)
    assert pytest.approx(3.5848, abs=1e-3) == vibration.BPFO_ORDER
    assert pytest.approx(5.4152, abs=1e-3) == vibration.BPFI_ORDER


@pytest.mark.parametrize(("fault", "order"), [(3, vibration.BPFO_ORDER), (4, vibration.BPFI_ORDER)])
def test_race_faults_show_as_envelope_lines_at_their_frequency(fault: int, order: float) -> None:
    """The classic diagnosis works on the generated signal: envelope peak at BPFO or BPFI."""
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(vibration.WINDOW, 1 / vibration.SAMPLE_RATE)
    hits = 0
    for _ in range(20):
        fr = float(rng.uniform(20, 40))
        signal = vibration._window(fault, fr, rng)
        envelope = vibration._envelope_spectrum(signal[None, :])[0]
        band = (freqs > 40) & (freqs < 400)
        peak = freqs[band][np.argmax(envelope[band])]
        # the fault line or (for the modulated inner race) a sideband one shaft order away
        hits += min(abs(peak - order * fr), abs(abs(peak - order * fr) - fr)) < 2 * freqs[1]
    assert hits >= 16


def test_imbalance_raises_the_once_per_turn_component() -> None:
    rng = np.random.default_rng(1)

    def one_x(fault: int) -> float:
        fr = 30.0
        spectrum = np.abs(np.fft.rfft(vibration._window(fault, fr, rng) * np.hanning(2048)))
        return float(spectrum[round(fr * vibration.WINDOW / vibration.SAMPLE_RATE)])

    healthy = np.mean([one_x(0) for _ in range(20)])
    imbalanced = np.mean([one_x(1) for _ in range(20)])
    assert imbalanced > 2.5 * healthy


def test_transactions_are_labelled_seeded_and_well_formed() -> None:
    x, y = transactions.generate(4000, seed=5)
    assert x.shape == (4000, transactions.FEATURES)
    assert np.isfinite(x).all()
    assert set(np.unique(y)) == {"legit", "fraud"}
    assert abs(np.mean(y == "fraud") - transactions.FRAUD_RATE) < 0.02
    categories = x[:, 4 : 4 + len(transactions.CATEGORIES)]
    np.testing.assert_array_equal(categories.sum(axis=1), 1.0)
    np.testing.assert_array_equal(x, transactions.generate(4000, seed=5)[0])


def test_fraud_patterns_differ_from_honest_spending_as_described() -> None:
    x, y = transactions.generate(6000, seed=0)
    fraud, legit = x[y == "fraud"], x[y == "legit"]
    foreign, present, recent = -1, -2, -3
    assert fraud[:, foreign].mean() > 3 * legit[:, foreign].mean()
    assert fraud[:, recent].mean() > legit[:, recent].mean()
    assert fraud[:, present].mean() < legit[:, present].mean()
