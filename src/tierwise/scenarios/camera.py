"""Camera-like classifier: scikit-learn's digits (1,797 real 8x8 handwritten digits, UCI).

It stands in for a camera's on-device vision: a small image in, a class out. The edge model
is a two-layer MLP with enough weights (~300k) that INT8 pays off in size and speed; the
cloud model is a calibrated RBF-kernel SVM, more accurate on this data.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tierwise.scenarios.base import Scenario, calibrated_svm

PIXEL_MAX = 16.0


class DigitsScenario(Scenario):
    name: ClassVar[str] = "digits"
    example: ClassVar[str] = "camera"
    summary: ClassVar[str] = "8x8 handwritten digits (real, sklearn); MLP 512x512 edge, SVM cloud"
    synthetic: ClassVar[bool] = False

    def load(self) -> tuple[NDArray[np.float32], NDArray[Any]]:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return (np.asarray(x) / PIXEL_MAX).astype(np.float32), np.asarray(y)

    def edge_model(self) -> Any:
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier((512, 512), alpha=1e-3, max_iter=300, random_state=0)

    def cloud_model(self) -> Any:
        # gamma fitted to pixels in [0, 1] (sklearn's 'scale' would give ~0.08: 1 point worse)
        return calibrated_svm(10.0, gamma=0.32, scale=False)
