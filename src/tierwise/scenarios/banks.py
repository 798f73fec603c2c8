"""Banks: card fraud — SYNTHETIC, labelled transactions (see transactions.py).

The edge model (what a bank's own gateway runs) is a logistic regression: fast, and blind to
the interactions between features that mark a fraud pattern; the cloud model a calibrated
RBF-kernel SVM that sees them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from tierwise.scenarios import transactions
from tierwise.scenarios.base import Scenario, calibrated_svm

TRANSACTIONS = 6000


class TransactionsScenario(Scenario):
    name: ClassVar[str] = "transactions"
    example: ClassVar[str] = "banks"
    summary: ClassVar[str] = "card fraud (SYNTHETIC generator); logistic edge, SVM cloud"
    synthetic: ClassVar[bool] = True

    def load(self) -> tuple[NDArray[np.float32], NDArray[Any]]:
        return transactions.generate(TRANSACTIONS, seed=0)

    def edge_model(self) -> Any:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))

    def cloud_model(self) -> Any:
        return calibrated_svm(3.0)
