"""The edge model's predictions for the requests of one loop turn, in one call per model and rule.

An ONNX Runtime call costs about as much for one row as for dozens (its fixed cost is the
call, not the arithmetic, for the small models an edge runs), so the rows of requests that
are ready together go through `predict` as one (n, features) batch and are split back per
request: each gets what it would alone, to float32 rounding (a batch's kernels sum in
another order than one row's: a few ulps). A model whose rows depend on the rows sharing
their call (`LocalModel.row_independent` false: dynamic INT8 quantization scales by the
whole batch) is called per request, and so is a request whose rows do not fit the model:
its error stays its own. If a shared call fails, each request is retried alone for the
same reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from tierwise.edge.turn_batch import TurnBatch
from tierwise.spec.tiers import EscalationRule

if TYPE_CHECKING:  # the router uses this module
    from tierwise.edge.router import Floats2D, LocalModel

__all__ = ["MAX_BATCH_ROWS", "LocalBatcher"]

MAX_BATCH_ROWS = 1024  # rows per shared call at most (a device may send this many alone)

Prediction = tuple[NDArray[np.float64], NDArray[np.float64]]  # (outputs, confidence)


@dataclass(frozen=True)
class _Call:
    model: LocalModel
    rule: EscalationRule
    rows: Floats2D


class LocalBatcher:
    """`predict` as `LocalModel.predict`, awaited: calls queued in one turn share a call."""

    def __init__(self) -> None:
        self._turn: TurnBatch[_Call, Prediction] = TurnBatch(predict_together)

    @property
    def largest(self) -> int:
        """The most requests predicted in one turn so far."""
        return self._turn.largest

    def predict(
        self, model: LocalModel, rows: Floats2D, rule: EscalationRule
    ) -> asyncio.Future[Prediction]:
        return self._turn.submit(_Call(model, rule, rows))


def predict_together(calls: list[_Call]) -> list[Prediction | BaseException]:
    """Each call's (outputs, confidence) or its own error, in order; calls to the same model
    and rule with rows of its width share one `predict` (up to MAX_BATCH_ROWS rows)."""
    outcomes: list[Prediction | BaseException | None] = [None] * len(calls)
    groups: dict[tuple[int, EscalationRule], list[int]] = {}
    for i, call in enumerate(calls):
        rows = call.rows
        shareable = (
            call.model.row_independent
            and rows.ndim == 2
            and rows.shape[1] == call.model.input_width
        )
        if shareable:
            groups.setdefault((id(call.model), call.rule), []).append(i)
        else:
            outcomes[i] = _alone(call)
    for members in groups.values():
        for chunk in _chunks(members, calls):
            if len(chunk) == 1:
                outcomes[chunk[0]] = _alone(calls[chunk[0]])
                continue
            first = calls[chunk[0]]
            try:
                rows = np.concatenate([calls[i].rows for i in chunk])
                outputs, confidence = first.model.predict(rows, first.rule)
            except Exception:  # someone's rows the model refuses: each alone, errors their own
                for i in chunk:
                    outcomes[i] = _alone(calls[i])
                continue
            start = 0
            for i in chunk:
                end = start + len(calls[i].rows)
                outcomes[i] = (outputs[start:end], confidence[start:end])
                start = end
    return [outcome for outcome in outcomes if outcome is not None]  # each one is set


def _alone(call: _Call) -> Prediction | BaseException:
    try:
        return call.model.predict(call.rows, call.rule)
    except Exception as exc:
        return exc


def _chunks(members: list[int], calls: list[_Call]) -> list[list[int]]:
    """`members` in order, cut so no chunk exceeds MAX_BATCH_ROWS rows (a bigger call alone)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for i in members:
        n = len(calls[i].rows)
        if current and rows + n > MAX_BATCH_ROWS:
            chunks.append(current)
            current, rows = [], 0
        current.append(i)
        rows += n
    if current:
        chunks.append(current)
    return chunks
