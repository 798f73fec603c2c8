"""SYNTHETIC, LABELLED: a physics-inspired generator of machine vibration windows with known faults.

No public vibration dataset ships inside a Python package, so the factory scenario generates
its data. Each window is what an accelerometer on a motor's bearing housing would record:

- every machine: shaft rotation at 1x and 2x the shaft frequency, broadband sensor noise;
- imbalance: a strong 1x component (centrifugal force grows with the mass offset);
- misalignment: strong 2x and 3x components (the coupling flexes twice per turn);
- outer-race fault: an impact each time a ball rolls over the defect, at the ball-pass
  frequency outer race (BPFO), each impact ringing the housing's structural resonance;
- inner-race fault: impacts at BPFI, amplitude-modulated once per turn as the defect rotates
  in and out of the load zone.

Bearing geometry is the SKF 6205 of the Case Western Reserve University bearing data set
(9 balls, ball 7.94 mm, pitch 39.04 mm, contact angle 0): BPFO = 3.585 x, BPFI = 5.415 x shaft
frequency. Severity and noise are drawn per window, so some faults are faint and some windows
are genuinely ambiguous: no model reaches 100%.

Features (what a gateway computes from one window; the model input): shaft speed, band
log-energies of the spectrum, the low-frequency spectrum around the shaft orders, and the
envelope spectrum (the classic bearing-fault view: impacts show as lines at BPFO or BPFI).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

CLASSES = ("healthy", "imbalance", "misalignment", "outer-race", "inner-race")
SAMPLE_RATE = 12_000.0  # Hz, as the CWRU drive-end recordings
WINDOW = 2048  # samples: 171 ms
BALLS, BALL_D, PITCH_D = 9, 7.94, 39.04
BPFO_ORDER = BALLS / 2 * (1 - BALL_D / PITCH_D)  # 3.585
BPFI_ORDER = BALLS / 2 * (1 + BALL_D / PITCH_D)  # 5.415
BANDS = 48  # spectrum band energies, 0-6 kHz
LOW_BINS = 24  # FFT bins 1..24 (~6-140 Hz): the shaft orders
ENVELOPE_BINS = 64  # envelope spectrum, FFT bins 1..64 (~6-375 Hz): fault lines
FEATURES = 1 + BANDS + LOW_BINS + ENVELOPE_BINS


def generate(n_per_class: int, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.str_]]:
    """`n_per_class` windows of each class as feature vectors, and their labels (shuffled)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), n_per_class)
    rng.shuffle(labels)
    speeds = rng.uniform(20.0, 40.0, len(labels))  # shaft frequency: 1,200-2,400 rpm
    signals = np.stack([_window(int(c), fr, rng) for c, fr in zip(labels, speeds, strict=True)])
    return features(signals, speeds), np.asarray(CLASSES)[labels]


def _window(fault: int, fr: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """One raw window of a machine with `fault` (index into CLASSES) turning at `fr` Hz."""
    t = np.arange(WINDOW) / SAMPLE_RATE
    a1 = rng.uniform(0.1, 0.3)
    a2 = a1 * rng.uniform(0.1, 0.4)
    a3 = a1 * rng.uniform(0.0, 0.1)
    noise = rng.uniform(0.05, 0.25)
    if fault == 1:  # imbalance
        a1 *= rng.uniform(2.5, 6.0)
    elif fault == 2:  # misalignment
        a2 = a1 * rng.uniform(0.6, 1.8)
        a3 = a1 * rng.uniform(0.2, 0.7)
    phases = rng.uniform(0, 2 * np.pi, 3)
    x = (
        a1 * np.sin(2 * np.pi * fr * t + phases[0])
        + a2 * np.sin(2 * np.pi * 2 * fr * t + phases[1])
        + a3 * np.sin(2 * np.pi * 3 * fr * t + phases[2])
        + rng.normal(0.0, noise, WINDOW)
    )
    if fault in (3, 4):
        order = BPFO_ORDER if fault == 3 else BPFI_ORDER
        strength = noise * rng.uniform(2.5, 8.0)
        x += _impacts(t, fr, order, strength, modulated=fault == 4, rng=rng)
    return np.asarray(x, dtype=np.float64)


def _impacts(
    t: NDArray[np.float64],
    fr: float,
    order: float,
    strength: float,
    modulated: bool,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """A train of decaying resonance rings at `order` x shaft frequency, with 1-2% slip."""
    period = 1.0 / (order * fr)
    resonance = rng.uniform(2_500.0, 3_500.0)
    damping = rng.uniform(0.03, 0.08)
    ring_t = np.arange(int(0.01 * SAMPLE_RATE)) / SAMPLE_RATE
    ring = np.exp(-damping * 2 * np.pi * resonance * ring_t) * np.sin(
        2 * np.pi * resonance * ring_t
    )
    out = np.zeros_like(t)
    at = rng.uniform(0, period)
    phase = rng.uniform(0, 2 * np.pi)
    while at < t[-1]:
        i = int(at * SAMPLE_RATE)
        amp = strength * (1 + np.cos(2 * np.pi * fr * at + phase)) / 2 if modulated else strength
        end = min(len(t), i + len(ring))
        out[i:end] += amp * ring[: end - i]
        at += period * (1 + rng.normal(0, 0.015))
    return out


def features(signals: NDArray[np.float64], speeds: NDArray[np.float64]) -> NDArray[np.float32]:
    """Model inputs from raw windows [N, WINDOW] and shaft frequencies [N] (Hz)."""
    window = np.hanning(WINDOW)
    spectrum = np.abs(np.fft.rfft(signals * window, axis=1)) / WINDOW
    freqs = np.fft.rfftfreq(WINDOW, 1 / SAMPLE_RATE)
    edges = np.linspace(0, SAMPLE_RATE / 2, BANDS + 1)
    bands = np.stack(
        [
            (spectrum[:, (freqs >= lo) & (freqs < hi)] ** 2).sum(axis=1)
            for lo, hi in itertools.pairwise(edges)
        ],
        axis=1,
    )
    low = spectrum[:, 1 : 1 + LOW_BINS]
    envelope = _envelope_spectrum(signals)[:, 1 : 1 + ENVELOPE_BINS]
    out = np.concatenate(
        [
            (speeds / 40.0)[:, None],
            np.log10(bands + 1e-9) / 4 + 1,
            np.log10(low + 1e-6) / 3 + 1,
            np.log10(envelope + 1e-6) / 3 + 1,
        ],
        axis=1,
    )
    return out.astype(np.float32)


def _envelope_spectrum(signals: NDArray[np.float64]) -> NDArray[np.float64]:
    """|analytic signal| of the 2-5 kHz band (where impacts ring), then its spectrum."""
    full = np.fft.fft(signals, axis=1)
    all_freqs = np.fft.fftfreq(WINDOW, 1 / SAMPLE_RATE)
    keep = (all_freqs >= 2_000) & (all_freqs <= 5_000)  # positive band only: analytic signal
    analytic = np.fft.ifft(np.where(keep, 2 * full, 0), axis=1)
    envelope = np.abs(analytic)
    envelope -= envelope.mean(axis=1, keepdims=True)
    return np.abs(np.fft.rfft(envelope * np.hanning(WINDOW), axis=1)) / WINDOW
