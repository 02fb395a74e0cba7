"""The weak test: is a group's importance distinguishable from noise?

On held-out rows, shuffling a feature that the target does not depend on
changes each row's loss by zero on average, however much the proxy overfitted
to it (the shuffled values are as unrelated to the row as the real ones). So a
group's per-row loss increases are tested against zero, one-sided, with a
Student-t test over the held-out rows, and the p-values of all groups go
through the Benjamini-Hochberg procedure. No Keras, no forests.

With cross-fitting the rows are not quite independent: the forest that scores
fold k was fitted on the other folds, so a chance association between a noise
column and the target in the whole sample raises every fold's increases a
little together. On pure noise (``benchmarks/bench_power.py --only folds``;
classification and regression, 300 x 500 to 3,000 x 50, 2 to 10 folds) this
widened the pooled t statistic's variance by a factor of 1.06 to 1.25 (1.08 to
1.18 at the default five folds), about the same whatever the number of folds:
with fewer folds each pair of folds correlates more (0.02 to 0.05 at five,
0.17 to 0.19 at two on 1,000 rows). Untreated, that made the test liberal in
the far tail that a test of hundreds of groups reaches (4 runs in 20 with a
noise column kept at 1,000 x 100). With folds the t statistic is divided by
``sqrt(FOLD_VARIANCE)`` = ``sqrt(1.2)``, which covers every measurement at
five folds; the largest measured, 1.25 (two folds, regression, 1,000 x 100),
is 4% above it.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import false_discovery_control, ttest_1samp
from scipy.stats import t as student_t

__all__ = ["FOLD_VARIANCE", "PAIRWISE_FOLD_VARIANCE", "row_p_values", "either_p_value", "discoveries"]

#: Variance of the pooled t statistic of cross-fitted folds on pure noise, relative to independent rows.
FOLD_VARIANCE = 1.2
#: The same for the pairwise companion (a linear model on the features and their products). A noise
#: column enters one term and as many products as there are other columns, so the chance association
#: the folds share is larger: on pure noise its pooled variance was 1.69 to 1.93 (regression, 1,000 x 30,
#: ridge alpha 1 to 100 or chosen by cross-validation), 1.24 at 500 x 30 and 1.10 for classes at
#: 1,000 x 30 (``benchmarks/bench_power.py --only folds``).
PAIRWISE_FOLD_VARIANCE = 2.0


def row_p_values(row_deltas: np.ndarray, n_folds: int = 1, fold_variance: float = FOLD_VARIANCE) -> np.ndarray:
    """One-sided p-values that each row of ``row_deltas`` has a mean above zero.

    Args:
        row_deltas: ``(n_sets, n_rows)`` per-row loss increases.
        n_folds: How many cross-fitted forests scored the rows (1: one split).
            With folds (K > 1) the t statistic is divided by
            ``sqrt(fold_variance)``, whatever K.
        fold_variance: The widening with folds: ``FOLD_VARIANCE`` for the
            forest and the linear companion, ``PAIRWISE_FOLD_VARIANCE`` for
            the pairwise one.

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
