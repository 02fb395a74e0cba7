"""The weak test: is a group's importance distinguishable from noise?

On held-out rows, shuffling a feature that the target does not depend on
changes each row's loss by zero on average, however much the proxy overfitted
to it (the shuffled values are as unrelated to the row as the real ones). So a
group's per-row loss increases are tested against zero, one-sided, with a
Student-t test over the held-out rows, and the p-values of all groups go
through the Benjamini-Hochberg procedure. No Keras, no forests.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, ttest_1samp

__all__ = ["row_p_values", "discoveries"]


def row_p_values(row_deltas: np.ndarray) -> np.ndarray:
    """One-sided p-values that each row of ``row_deltas`` has a mean above zero.

    Args:
        row_deltas: ``(n_sets, n_rows)`` per-row loss increases.

    Returns:
        ``n_sets`` p-values. A set whose increases are all equal (a column the
        proxy never reads changes no row) gets 1 unless they are positive.
    """
    n_sets, n_rows = row_deltas.shape
    if n_rows < 2:
        return np.ones(n_sets)
    # The t statistic does not depend on the scale: scaled to at most 1, huge losses do not overflow.
    scale = np.abs(row_deltas).max(axis=1)
    scaled = row_deltas / np.where(scale > 0, scale, 1.0)[:, None]
    p = np.where(scaled.mean(axis=1) > 0, 0.0, 1.0)
    varies = scaled.std(axis=1) > 1e-12
    if varies.any():
        p[varies] = ttest_1samp(scaled[varies], 0.0, axis=1, alternative="greater").pvalue
    return p


def discoveries(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Which p-values the Benjamini-Hochberg procedure rejects at false discovery rate ``alpha``."""
    if len(p_values) == 0:
        return np.zeros(0, dtype=bool)
    return false_discovery_control(p_values, method="bh") <= alpha
