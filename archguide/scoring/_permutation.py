"""Shuffled and modified copies of a block of rows, for batched importance.

Shared by the feature scorer (a scikit-learn proxy) and the network measures
(a Keras model): both stack many modified copies of the same rows and predict
them in a few large calls. No Keras here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.metrics import get_scorer
from sklearn.utils import check_random_state

from archguide.scoring._metrics import BATCHED_METRICS, row_loss_for

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


class PermutationResult(NamedTuple):
    """What shuffling each column set of one block of held-out rows did.

    Attributes:
        baseline: The held-out score with nothing shuffled.
        drops: ``(n_sets, n_repeats)``: baseline minus the shuffled score.
        row_deltas: ``(n_sets, n_rows)``: each row's loss increase when its
            set is shuffled, averaged over the repeats (the per-row loss of
            the metric; see :func:`archguide.scoring._metrics.row_loss_for`).
    """

    baseline: float
    drops: np.ndarray
    row_deltas: np.ndarray


def permutation_drops(
    estimator,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    column_sets: list[list[int]],
    *,
    n_repeats: int,
    metric,
    task: str = "regression",
    random_state=None,
    n_classes: int | None = None,
    progress=None,
) -> PermutationResult:
    """Score drops and per-row loss increases when each set of columns is shuffled jointly, batched.

    Args:
        estimator: A fitted scikit-learn estimator.
        X_eval: Held-out rows, shape ``(n_eval, n_columns)``; not modified.
        y_eval: Held-out targets (class indices for classifiers).
        column_sets: Lists of column indices; each list is shuffled as one block.
        n_repeats: Shuffles per set.
        metric: A scikit-learn scorer name or callable. The names in
            ``BATCHED_METRICS`` are computed from stacked predictions; any
            other scorer is called once per shuffled copy (exact, slower).
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``: the per-row
            loss of a scorer outside the registry.
        random_state: Seed for the shuffles, as in ``permutation_importance``:
            the same seed gives scikit-learn's shuffles, so ``drops`` are its
            importances to the last digit.
        n_classes: For classifiers, the number of classes ``y_eval`` indexes;
            probability columns are laid out by the estimator's ``classes_``,
            so a class the estimator never saw gets probability 0.
        progress: Anything with ``update(n)`` (a tqdm bar), told of each copy.
    """
    n_eval = X_eval.shape[0]
    perms = effective_permutations(n_eval, n_repeats, random_state)
    jobs = [(s, r) for s in range(len(column_sets)) for r in range(n_repeats)]
    scores = np.empty(len(jobs))
    deltas = np.zeros((len(column_sets), n_eval))
    response, row_loss = row_loss_for(metric, task)
    if response == "proba" and not hasattr(estimator, "predict_proba"):  # a scorer on labels alone
        response, row_loss = "predict", BATCHED_METRICS["accuracy"].row_loss
    respond = aligned_proba(estimator, n_classes) if response == "proba" else estimator.predict
    batched = BATCHED_METRICS.get(metric) if isinstance(metric, str) else None
    if batched is not None and batched.response != response:  # no predictions of the kind it scores
        batched = None
    if batched is None:
        scorer = get_scorer(metric) if isinstance(metric, str) else metric

    def stacked(pred, k):
        return np.asarray(pred).reshape((k, n_eval) + np.shape(pred)[1:])

    base_pred = stacked(respond(X_eval), 1)
    base_loss = row_loss(y_eval, base_pred)[0]
    if batched is not None:
        baseline = float(batched.score(y_eval, base_pred)[0])
    else:
        baseline = float(scorer(estimator, X_eval, y_eval))
    # An estimator that predicts edited rows without their copies (the linear companion) is asked to.
    edited_predictor = getattr(estimator, "edited_predictor", None) if batched is not None else None
    edited = None if edited_predictor is None else edited_predictor(X_eval, response)
    per_chunk = copies_per_chunk(X_eval)
    for start in range(0, len(jobs), per_chunk):
        chunk = jobs[start : start + per_chunk]
        edits = [(column_sets[s], X_eval[perms[r][:, None], column_sets[s]]) for s, r in chunk]
        pred = None if edited is None else edited(edits)
        if pred is None:
            copies = stacked_copies(X_eval, edits)
            pred = respond(copies)
        pred = stacked(pred, len(chunk))
        if batched is not None:
            scores[start : start + len(chunk)] = batched.score(y_eval, pred)
        else:
            for i in range(len(chunk)):
                scores[start + i] = scorer(estimator, copies[i * n_eval : (i + 1) * n_eval], y_eval)
        np.add.at(deltas, [s for s, _ in chunk], row_loss(y_eval, pred) - base_loss)
        if progress is not None:
            progress.update(len(chunk))
    return PermutationResult(baseline, baseline - scores.reshape(len(column_sets), n_repeats), deltas / n_repeats)


def aligned_proba(estimator, n_classes: int | None):
    """``predict_proba`` with one column per class index ``0 .. n_classes - 1``.

    A classifier fitted on a sample that lacks a class returns fewer columns than
    there are classes; its ``classes_`` say which indices the columns are.
    """
    classes = np.asarray(getattr(estimator, "classes_", []))
    if n_classes is None or len(classes) == n_classes:
        return estimator.predict_proba

    def predict_proba(X):
        proba = estimator.predict_proba(X)
        full = np.zeros((len(proba), n_classes), dtype=proba.dtype)
        full[:, classes.astype(int)] = proba
        return full

    return predict_proba
