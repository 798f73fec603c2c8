"""Clinical/wearable classifier: scikit-learn's breast_cancer (569 real cases, Wisconsin).

It stands in for a health device that must flag a case locally and may ask a larger model
when unsure. The edge model is a depth-3 decision tree (seven comparisons: fits any
microcontroller; no INT8 variant, as trees have nothing ONNX Runtime quantizes); the cloud
model is a calibrated RBF-kernel SVM on standardized features.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tierwise.scenarios.base import SEED, Scenario, calibrated_svm


class BreastCancerScenario(Scenario):
    name: ClassVar[str] = "breast-cancer"
    example: ClassVar[str] = "wearable"
    summary: ClassVar[str] = "Wisconsin breast cancer (real, sklearn); depth-3 tree edge, SVM cloud"
    synthetic: ClassVar[bool] = False

    def load(self) -> tuple[NDArray[np.float32], NDArray[Any]]:
        from sklearn.datasets import load_breast_cancer

        data = load_breast_cancer()
        labels = np.asarray(data.target_names)[data.target]  # "malignant" / "benign"
        return np.asarray(data.data, dtype=np.float32), labels

    def edge_model(self) -> Any:
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=3, random_state=SEED)

    def cloud_model(self) -> Any:
        return calibrated_svm(3.0)
