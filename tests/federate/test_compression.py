from __future__ import annotations

import numpy as np

from tierwise.federate.compression import dequantize, quantize, split


def test_8_bit_codes_are_within_half_a_step_and_a_quarter_of_the_bytes() -> None:
    rng = np.random.default_rng(0)
    layers = [rng.normal(0, s, n).astype(np.float32) for s, n in ((0.05, 2048), (0.01, 32))]
    payload = quantize(layers, bits=8)
    back = dequantize(payload, [(2048,), (32,)])
    for original, restored, step in zip(layers, back, payload["step"], strict=True):
        assert np.max(np.abs(original - restored)) <= step / 2 + 1e-7
    sent = sum(a.nbytes for a in payload.values())
    assert sent <= 0.26 * sum(a.nbytes for a in layers)


def test_fewer_bits_pack_tighter_and_lose_more() -> None:
    values = [np.linspace(-1, 1, 1000, dtype=np.float32)]
    errors, sizes = [], []
    for bits in (4, 8, 12):
        payload = quantize(values, bits)
        sizes.append(payload["packed"].nbytes)
        errors.append(float(np.max(np.abs(dequantize(payload, [(1000,)])[0] - values[0]))))
    assert sizes == [500, 1000, 1500]
    assert errors[0] > errors[1] > errors[2]


def test_constant_layers_survive() -> None:
    payload = quantize([np.zeros(7, np.float32), np.full(3, 2.5, np.float32)], 8)
    back = dequantize(payload, [(7,), (3,)])
    assert np.array_equal(back[0], np.zeros(7))
    assert np.allclose(back[1], 2.5)


def test_split_checks_the_segments() -> None:
    parts = split(np.arange(10, dtype=np.float32), [4, 6])
    assert [p.size for p in parts] == [4, 6]
