"""Which rows fit each proxy forest and which are held out: one split, or K folds (cross-fitting).

Below ``CROSS_FIT_BELOW`` rows :func:`~archguide.score_features`
cross-fits: K forests, each fitted on the other folds and scored on its own,
so that every row is held out once. Classification splits are stratified,
and a class that a subsample rounds away gets a row back. No Keras.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from archguide.exceptions import DataError
from archguide.schema import format_names

__all__ = ["CROSS_FIT_BELOW", "n_folds_for", "row_splits"]

#: ``cv="auto"`` cross-fits below this many rows (from here on one split holds out 1,000 rows or more).
CROSS_FIT_BELOW = 5_000
_SEED_MAX = np.iinfo(np.int32).max


def n_folds_for(cv, n_rows: int, test_size: float, class_counts: np.ndarray | None = None) -> int:
    """How many proxy forests: 1 for a single split, K for K-fold cross-fitting.

    ``cv="auto"`` cross-fits below ``CROSS_FIT_BELOW`` rows with
    ``round(1 / test_size)`` folds (5 by default). An integer asks for that
    many folds, ``None`` for one split. Classes cap the folds: a stratified
    fold needs a row of every class, so K is at most the smallest class's size.
    """
    if cv is None:
        return 1
    k = max(2, round(1 / test_size)) if cv == "auto" else int(cv)
    if cv == "auto" and n_rows >= CROSS_FIT_BELOW:
        return 1
    if class_counts is not None:
        k = min(k, int(class_counts.min()))
    return max(1, min(k, n_rows // 2))


def row_splits(y, task, n_rows, *, n_folds, test_size, max_train_samples, max_eval_samples, seed):
    """``[(train_rows, eval_rows), ...]``: one split, or K folds whose held-out parts cover every row once.

    Classification splits are stratified. Each part is subsampled to at most
    ``max_train_samples`` / ``max_eval_samples`` rows (stratified; a class the
    subsample rounds away gets a row back where one is spare).

    Raises:
        DataError: a class has a single row, or too few rows to be in both parts.
    """
    stratify = None
    if task != "regression":
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            rare = labels[counts < 2]
            raise DataError(
                f"Classes {format_names(rare.tolist())} of y have a single row; every class needs at least two "
                "(one to fit the proxy, one held out). Drop those rows or merge the classes."
            )
        stratify = y
    if n_folds == 1:
        return [_split(y, task, n_rows, test_size, max_train_samples, max_eval_samples, seed)]
    kind = KFold if stratify is None else StratifiedKFold
    rng = np.random.RandomState(seed)
    splits = []
    for train, evaluate in kind(n_folds, shuffle=True, random_state=seed).split(np.zeros(n_rows), y):
        train = _subsample(train, max_train_samples, stratify, rng)
        evaluate = _subsample(evaluate, max_eval_samples, stratify, rng)
        splits.append((np.sort(train), np.sort(evaluate)))
    return splits


def _subsample(rows: np.ndarray, size: int | None, stratify, rng: np.random.RandomState) -> np.ndarray:
    if size is None or len(rows) <= size:
        return rows
    if stratify is None:
        return rng.choice(rows, size, replace=False)
    labels = stratify[rows]
    seed = rng.randint(_SEED_MAX)
    try:
        picked, rest = train_test_split(rows, train_size=size, stratify=labels, random_state=seed)
    except ValueError:  # a class too small to stratify
        picked, rest = train_test_split(rows, train_size=size, random_state=seed)
    missing = np.setdiff1d(labels, stratify[picked])
    extra = [rest[stratify[rest] == label][0] for label in missing]
    return np.concatenate([picked, np.asarray(extra, dtype=picked.dtype)])


def _split(y, task, n_rows, test_size, max_train_samples, max_eval_samples, seed):
    n_eval = max(2, int(round(test_size * n_rows)))
    n_train = n_rows - n_eval
    if max_eval_samples is not None:
        n_eval = min(n_eval, max_eval_samples)
    if max_train_samples is not None:
        n_train = min(n_train, max_train_samples)
    stratify = None
    if task != "regression":
        labels = np.unique(y)
        if min(n_train, n_eval) < len(labels):
            raise DataError(
                f"y has {len(labels)} classes but only {n_rows} rows: too few to keep every class in both the "
                f"training and the held-out rows. Pass more rows, or a larger max_eval_samples/test_size."
            )
        stratify = y
    train, evaluate = train_test_split(
        np.arange(n_rows), train_size=n_train, test_size=n_eval, stratify=stratify, random_state=seed
    )
    if stratify is not None and n_train + n_eval < n_rows:
        train, evaluate = _keep_every_class(train, evaluate, y, seed)
    return np.sort(train), np.sort(evaluate)


def _keep_every_class(train, evaluate, y, seed):
    """Add a row of each class a subsampled part lacks, from the rows no part uses.

    A stratified subsample rounds a rare class's share to zero rows, and a
    forest that never saw a class has no probability column for it. Where no
    unused row is left, a row moves over from the other part if that keeps
    two or more there.
    """
    rng = np.random.RandomState(seed)
    parts = [list(train), list(evaluate)]
    used = np.zeros(len(y), dtype=bool)
    used[parts[0] + parts[1]] = True
    for label in np.unique(y):
        for side in (0, 1):
            part, other = parts[side], parts[1 - side]
            if np.any(y[part] == label):
                continue
            spare = np.flatnonzero(~used & (y == label))
            if spare.size:
                row = int(rng.choice(spare))
                used[row] = True
                part.append(row)
            else:
                mine = [r for r in other if y[r] == label]
                if len(mine) >= 2:
                    other.remove(mine[0])
                    part.append(mine[0])
    return np.asarray(parts[0]), np.asarray(parts[1])
