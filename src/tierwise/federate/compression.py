"""Update compression: each site sends its update quantized to a few bits, the cloud expands it.

The update (local model - global model) is what crosses the WAN, and it is small and
zero-centred, so an affine b-bit code per layer loses little. The site packs all layers'
codes into one bit-packed byte array plus a low value and a step per layer; with 8 bits
the upload is about a quarter of float32. Flower has no such mod, so this module provides
both halves: a ClientApp mod (`compress_update_mod`) and a Strategy wrapper
(`DecompressUpdates`) that restores full updates before Flower's own aggregation runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy
from numpy.typing import NDArray

from tierwise.federate.model_record import WEIGHTS, vector

CONFIG_KEY = "compress-bits"
SEGMENTS_KEY = "compress-segments"
PACKED, LOW, STEP, BITS = "packed", "low", "step", "bits"


def quantize(delta: list[NDArray[np.float32]], bits: int) -> dict[str, NDArray[np.generic]]:
    """Code every tensor on `bits` bits between its own min and max; pack all codes."""
    levels = (1 << bits) - 1
    lows, steps, codes = [], [], []
    for tensor in delta:
        flat = tensor.astype(np.float32).ravel()
        low = float(flat.min()) if flat.size else 0.0
        high = float(flat.max()) if flat.size else 0.0
        step = (high - low) / levels if high > low else 1.0
        codes.append(np.rint((flat - low) / step).astype(np.uint32))
        lows.append(low)
        steps.append(step)
    code = np.concatenate(codes) if codes else np.zeros(0, np.uint32)
    # big-endian bit planes of each code, then 8 bits to a byte
    planes = ((code[:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint32)) & 1).astype(np.uint8)
    return {
        PACKED: np.packbits(planes.ravel()),
        LOW: np.asarray(lows, np.float32),
        STEP: np.asarray(steps, np.float32),
        BITS: np.asarray([bits], np.uint8),
    }


def dequantize(
    payload: dict[str, NDArray[np.generic]], shapes: list[tuple[int, ...]]
) -> list[NDArray[np.float32]]:
    """Invert `quantize` given the tensors' shapes (the cloud knows them: it sent them)."""
    bits = int(payload[BITS][0])
    sizes = [int(np.prod(s)) for s in shapes]
    total = sum(sizes)
    planes = np.unpackbits(payload[PACKED].astype(np.uint8))[: total * bits].reshape(total, bits)
    code = planes.astype(np.uint32) @ (1 << np.arange(bits - 1, -1, -1, dtype=np.uint32))
    out, start = [], 0
    lows = payload[LOW].astype(np.float32)
    steps = payload[STEP].astype(np.float32)
    for i, (shape, size) in enumerate(zip(shapes, sizes, strict=True)):
        values = lows[i] + steps[i] * code[start : start + size].astype(np.float32)
        out.append(values.reshape(shape).astype(np.float32))
        start += size
    return out


def compress_update_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """ClientApp mod: when the round's config asks for it, send the update quantized."""
    config = _single_config(msg)
    if config is None or CONFIG_KEY not in config:
        return call_next(msg, ctxt)
    bits = int(cast(int, config[CONFIG_KEY]))
    segments = [int(n) for n in cast(list[int], config[SEGMENTS_KEY])]
    base = vector(next(iter(msg.content.array_records.values())))
    reply = call_next(msg, ctxt)
    if reply.has_error() or len(reply.content.array_records) != 1:
        return reply
    name, record = next(iter(reply.content.array_records.items()))
    payload = quantize(split(vector(record) - base, segments), bits)
    reply.content.array_records[name] = ArrayRecord({k: Array(v) for k, v in payload.items()})
    return reply


class DecompressUpdates(Strategy):
    """Wraps a Flower strategy: asks sites for b-bit updates, expands them before aggregating.

    `segments` are the lengths of the model's layers inside the parameter vector; each
    gets its own scale, since weights and biases move by different amounts.
    """

    def __init__(self, strategy: Strategy, bits: int, segments: list[int]) -> None:
        self.strategy = strategy
        self.bits = bits
        self.segments = segments
        self._sent: dict[int, NDArray[np.float32]] = {}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        config[CONFIG_KEY] = self.bits
        config[SEGMENTS_KEY] = list(self.segments)
        self._sent[server_round] = vector(arrays)
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        base = self._sent.pop(server_round)
        shapes: list[tuple[int, ...]] = [(n,) for n in self.segments]
        expanded = []
        for reply in replies:
            if not reply.has_error() and len(reply.content.array_records) == 1:
                name, record = next(iter(reply.content.array_records.items()))
                delta = np.concatenate(dequantize({k: record[k].numpy() for k in record}, shapes))
                reply.content.array_records[name] = ArrayRecord({WEIGHTS: Array(base + delta)})
            expanded.append(reply)
        return self.strategy.aggregate_train(server_round, expanded)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.strategy.summary()


def split(values: NDArray[np.float32], segments: list[int]) -> list[NDArray[np.float32]]:
    if sum(segments) != values.size:
        raise ValueError(f"segments {segments} do not cover {values.size} values")
    return list(np.split(values, np.cumsum(segments)[:-1]))


def _single_config(msg: Message) -> ConfigRecord | None:
    records = msg.content.config_records
    return next(iter(records.values())) if len(records) == 1 else None
