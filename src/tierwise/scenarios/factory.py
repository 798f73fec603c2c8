"""Factory: bearing and shaft faults from vibration — SYNTHETIC, labelled (see vibration.py).

The edge model is a tiny MLP (one hidden layer of 8: about 1,100 weights, a sensor node's
budget); the cloud model a calibrated RBF-kernel SVM. Five classes: healthy, imbalance,
misalignment, outer-race and inner-race bearing faults.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tierwise.scenarios import vibration
from tierwise.scenarios.base import Scenario, calibrated_svm, scaled_mlp

WINDOWS_PER_CLASS = 1000


class VibrationScenario(Scenario):
    name: ClassVar[str] = "vibration"
    example: ClassVar[str] = "factory"
    summary: ClassVar[str] = "bearing/shaft faults (SYNTHETIC generator); MLP-8 edge, SVM cloud"
    synthetic: ClassVar[bool] = True

    def load(self) -> tuple[NDArray[np.float32], NDArray[Any]]:
        return vibration.generate(WINDOWS_PER_CLASS, seed=0)

    def edge_model(self) -> Any:
        return scaled_mlp((8,), alpha=1e-2, max_iter=500)

    def cloud_model(self) -> Any:
        return calibrated_svm(10.0)
