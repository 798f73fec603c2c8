"""Loaded cloud models by (package, version), the least recently used evicted first.

A leaf of the cloud package: the app builds one cache (`app.py`), the request context holds
it (`context.py`), and cloud inference fills it (`inference.py`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

DEFAULT_CACHED_MODELS = 8


class Predictor(Protocol):
    """A loaded model: a batch of rows in, one output row per input row out."""

    @property
    def input_width(self) -> int: ...

    def predict(self, inputs: Any) -> Any: ...


class ModelCache:
    """Loaded models by (package, version), least recently used evicted first."""

    def __init__(self, capacity: int = DEFAULT_CACHED_MODELS) -> None:
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, int], Predictor] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def get(self, key: tuple[str, int], load: Callable[[], Predictor]) -> Predictor:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per model even when many requests arrive at once
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = load()
            with self._lock:
                self._models[key] = model
                while len(self._models) > self.capacity:
                    self._models.popitem(last=False)
                self._loading.pop(key, None)
            return model
