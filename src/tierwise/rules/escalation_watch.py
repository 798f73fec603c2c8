"""Is a cascade escalating what the plan said it would? A binomial test over a sliding window.

The plan sizes the cloud, the WAN and the bill for a share of hard rows (the calibration
curve's point). On the field that share moves when the input distribution moves — the
first visible sign of drift — so the agent keeps the last `window` rows' hard/easy flags and
tests them against the planned share with an exact two-sided binomial test (the
"minimum-likelihood" p-value: the probability of any count no more likely than the one
seen). It says *drifted* when p < `alpha`; with the defaults (1,000 rows, alpha 0.001) a
planned 5% is left alone between 2.9% and 7.4%, and a stable stream raises a false
alarm about once per 1,000 independent windows.

Pure numpy, exact (log-factorials precomputed once per window size), for the agent and the
simulator alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_WINDOW = 1000
DEFAULT_ALPHA = 1e-3
MIN_ROWS = 200  # fewer rows say too little about a share of a few percent


@dataclass(frozen=True)
class EscalationCheck:
    planned: float
    observed: float
    rows: int
    p_value: float
    drifted: bool


class EscalationWatch:
    """The hard share of the last `window` rows against the plan's `planned` share."""

    def __init__(
        self, planned: float, window: int = DEFAULT_WINDOW, alpha: float = DEFAULT_ALPHA
    ) -> None:
        if not 0 <= planned <= 1:
            raise ValueError(f"planned share must be in [0, 1], got {planned}")
        self.planned = planned
        self.alpha = alpha
        self._ring = np.zeros(window, dtype=bool)
        self._seen = 0
        self._log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, window + 1)))])

    def observe(self, hard_rows: int, rows: int) -> None:
        """One request: `rows` rows, of which `hard_rows` were hard."""
        size = len(self._ring)
        n = min(rows, size)
        flags = np.arange(n) < hard_rows  # a batch's hard rows, then its easy ones
        self._ring[(self._seen + np.arange(n)) % size] = flags
        self._seen += n

    def check(self) -> EscalationCheck:
        n = min(self._seen, len(self._ring))
        k = int(self._ring[:n].sum())
        observed = k / n if n else 0.0
        p_value = self._p_value(k, n) if n >= MIN_ROWS else 1.0
        return EscalationCheck(self.planned, observed, n, p_value, p_value < self.alpha)

    def _p_value(self, k: int, n: int) -> float:
        p = self.planned
        if p in (0.0, 1.0):
            return 1.0 if k == round(p * n) else 0.0
        counts = np.arange(n + 1)
        lf = self._log_factorial
        log_pmf = (
            lf[n] - lf[counts] - lf[n - counts] + counts * np.log(p) + (n - counts) * np.log1p(-p)
        )
        pmf = np.exp(log_pmf)
        return float(min(1.0, pmf[pmf <= pmf[k] * (1 + 1e-9)].sum()))
