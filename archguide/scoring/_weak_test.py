"""The weak test: is a group's importance distinguishable from noise?

On held-out rows, shuffling a feature that the target does not depend on
changes each row's loss by zero on average, however much the proxy overfitted
to it (the shuffled values are as unrelated to the row as the real ones). So a
group's per-row loss increases are tested against zero, one-sided, with a
Student-t test over the held-out rows, and the p-values of all groups go
through the Benjamini-Hochberg procedure. No Keras, no forests.

With cross-fitting the rows are not quite independent: the model that scores
fold k was fitted on the other folds, so a chance association between a noise
column and the target in the whole sample raises every fold's increases a
little together. So with folds each test's t statistic is divided by the square
root of its measured widening, the variance of the pooled t statistic on pure
noise relative to independent rows (``benchmarks/bench_power.py --only folds``;
classification and regression, 500 x 30 to 3,000 x 50, five folds, 20 runs
each; classification again at 500 x 30 to 3,000 x 20):

- the forest: 1.07 to 1.51, so ``FOLD_VARIANCE`` = 1.55;
- the linear companion: 1.89 to 2.05 from 1,000 x 30 to 3,000 x 50 (one
  coefficient per column: a fold's coefficient holds the other folds' chance
  association, so pairs of folds correlate by 0.22 to 0.26), so
  ``LINEAR_FOLD_VARIANCE`` = 2.1;
- the pairwise companion: 1.10 to 2.12 (the most with many rows for few
  columns: classification at 3,000 x 20), so ``PAIRWISE_FOLD_VARIANCE`` = 2.15.

Until these were measured one widening of 1.2 served every test; it had been
measured on wide tables (300 x 500 to 1,000 x 100), and it left the test liberal
on tables of 20 to 50 columns.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, ttest_1samp
from scipy.stats import t as student_t

__all__ = [
    "FOLD_VARIANCE",
    "LINEAR_FOLD_VARIANCE",
    "PAIRWISE_FOLD_VARIANCE",
    "row_p_values",
    "either_p_value",
    "discoveries",
]

#: Variance of the forest's pooled t statistic of cross-fitted folds on pure noise, relative to independent rows.
FOLD_VARIANCE = 1.55
#: The same for the linear companion.
LINEAR_FOLD_VARIANCE = 2.1
#: The same for the pairwise companion (a linear model on the features and their pairwise products).
PAIRWISE_FOLD_VARIANCE = 2.15


def row_p_values(row_deltas: np.ndarray, n_folds: int = 1, fold_variance: float = FOLD_VARIANCE) -> np.ndarray:
    """One-sided p-values that each row of ``row_deltas`` has a mean above zero.

    Args:
        row_deltas: ``(n_sets, n_rows)`` per-row loss increases.
        n_folds: How many cross-fitted forests scored the rows (1: one split).
            With folds (K > 1) the t statistic is divided by
            ``sqrt(fold_variance)``, whatever K.
        fold_variance: The widening with folds: ``FOLD_VARIANCE`` for the
            forest, ``LINEAR_FOLD_VARIANCE`` and ``PAIRWISE_FOLD_VARIANCE``
            for the companions.

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
        t = ttest_1samp(scaled[varies], 0.0, axis=1).statistic
        p[varies] = student_t.sf(t / np.sqrt(fold_variance if n_folds > 1 else 1.0), df=n_rows - 1)
    return p


def either_p_value(*p_values: np.ndarray) -> np.ndarray:
    """A p-value per group that any of several tests rejects: Simes' combination of them.

    With the ``m`` tests' p-values of a group sorted, ``p_(1) <= ... <= p_(m)``,
    it is ``min_i m * p_(i) / i``: for two tests ``min(2 * smaller, larger)``,
    never above Bonferroni's ``m * smallest``, and the largest alone when every
    test sees the group. Simes' test holds its level for positively dependent
    tests, such as several proxies' tests on the same held-out rows. On pure
    noise (classification and regression, 300 x 500 to 5,000 x 50, 30 to 40
    runs each) the combined p-values of the forest and the linear companion
    fell below 0.01 for 0.4% to 0.9% of the noise columns (Bonferroni's
    ``2 * smaller``: 0.4% to 1.1%).
    """
    stacked = np.sort(np.vstack([np.asarray(p, dtype=float) for p in p_values]), axis=0)
    m = stacked.shape[0]
    ranks = np.arange(1, m + 1)[:, None]
    return np.minimum(1.0, (m * stacked / ranks).min(axis=0))


def discoveries(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Which p-values the Benjamini-Hochberg procedure rejects at false discovery rate ``alpha``."""
    if len(p_values) == 0:
        return np.zeros(0, dtype=bool)
    return false_discovery_control(p_values, method="bh") <= alpha
