"""Shuffled and modified copies of a block of rows, for batched importance.

Shared by the feature scorer (a scikit-learn proxy) and the network measures
(a Keras model): both stack many modified copies of the same rows and predict
them in a few large calls. No Keras here.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

# A predict call gets at most this many matrix cells (about 64 MB of float32).
CHUNK_CELLS = 16_000_000


def effective_permutations(n_rows: int, n_repeats: int, random_state) -> list[np.ndarray]:
    """The row orders that ``sklearn.inspection.permutation_importance`` applies, repeat by repeat.

    scikit-learn draws one seed, gives every column a RandomState with that
    seed, and shuffles its column in place once per repeat, so repeat ``r``
    sees the composition of the first ``r`` shuffles. Reproducing that lets
    the batched computation return scikit-learn's numbers exactly.
    """
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    rs = check_random_state(seed)
    shuffling = np.arange(n_rows)
    current = np.arange(n_rows)
    perms = []
    for _ in range(n_repeats):
        rs.shuffle(shuffling)
        current = current[shuffling]
        perms.append(current)
    return perms


def copies_per_chunk(X: np.ndarray) -> int:
    """How many copies of ``X`` one stacked predict call may hold."""
    return max(1, CHUNK_CELLS // max(1, X.shape[0] * X.shape[1]))


def stacked_copies(X: np.ndarray, edits) -> np.ndarray:
    """``X`` once per edit, stacked; edit ``(cols, values)`` sets ``copy[:, cols] = values``.

    ``values`` is anything that broadcasts to ``X[:, cols]``: shuffled rows of
    those columns, or their means. ``X`` itself is not modified.
    """
    n = X.shape[0]
    stacked = np.tile(X, (len(edits), 1))
    for i, (cols, values) in enumerate(edits):
        stacked[i * n : (i + 1) * n, cols] = values
    return stacked
