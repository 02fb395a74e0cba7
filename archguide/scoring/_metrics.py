"""Held-out scores the permutation engine measures drops of, computed on many copies at once.

Each batched metric takes the true targets and the predictions of ``k``
stacked copies of the held-out rows and returns ``k`` scores, the same numbers
scikit-learn's scorer of that name gives copy by copy. Each also has a per-row
loss, whose increase under shuffling is what the weak test of
:func:`~archguide.score_features` averages and tests row by row.
No Keras.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

__all__ = ["BATCHED_METRICS", "Metric", "default_metric", "row_loss_for"]


def _regression_metric(fn, sign):
    def score(y_true, pred):  # pred: (k, n_eval) -> k scores
        return sign * fn(np.broadcast_to(y_true[:, None], pred.T.shape), pred.T, multioutput="raw_values")

    return score


def _accuracy(y_true, pred):
    return (pred == y_true).mean(axis=1)


def _balanced_accuracy(y_true, pred):
    return np.array([balanced_accuracy_score(y_true, p) for p in pred])


def _neg_log_loss(y_true, proba):  # proba: (k, n_eval, n_classes), y_true: class indices
    return -_log_loss_rows(y_true, proba).mean(axis=1)


def _neg_brier(y_true, proba):  # as sklearn's brier_score_loss: halved for two classes
    loss = _brier_rows(y_true, proba).mean(axis=1)
    return -(0.5 * loss if proba.shape[2] < 3 else loss)


def _roc_auc(y_true, proba):
    return np.array([roc_auc_score(y_true, p[:, 1]) for p in proba])


# Per-row losses: (y_true, predictions of k copies) -> (k, n_eval); larger is worse.
def _squared_rows(y_true, pred):
    return (pred - y_true) ** 2


def _absolute_rows(y_true, pred):
    return np.abs(pred - y_true)


def _error_rows(y_true, pred):
    return (pred != y_true).astype(np.float64)


def _balanced_error_rows(y_true, pred):
    # balanced accuracy = mean over classes of per-class recall = a weighted mean of per-row hits
    counts = np.bincount(y_true)
    weight = len(y_true) / (np.count_nonzero(counts) * counts[y_true])
    return (pred != y_true) * weight


def _brier_rows(y_true, proba):
    onehot = np.eye(proba.shape[2])[y_true]
    return ((proba - onehot[None]) ** 2).sum(axis=2)


def _log_loss_rows(y_true, proba):
    picked = np.take_along_axis(proba, np.broadcast_to(y_true[None, :, None], proba.shape[:2] + (1,)), axis=2)
    eps = np.finfo(proba.dtype).eps
    return -np.log(np.clip(picked[..., 0], eps, 1.0))


class Metric(NamedTuple):
    applies_to: str  # "regression" | "classification" | "binary"
    response: str  # "predict" | "proba"
    score: object  # (y_true, stacked predictions) -> k scores
    row_loss: object  # (y_true, stacked predictions) -> (k, n_eval) losses


BATCHED_METRICS = {
    "r2": Metric("regression", "predict", _regression_metric(r2_score, 1.0), _squared_rows),
    "neg_mean_squared_error": Metric(
        "regression", "predict", _regression_metric(mean_squared_error, -1.0), _squared_rows
    ),
    "neg_mean_absolute_error": Metric(
        "regression", "predict", _regression_metric(mean_absolute_error, -1.0), _absolute_rows
    ),
    "accuracy": Metric("classification", "predict", _accuracy, _error_rows),
    "balanced_accuracy": Metric("classification", "predict", _balanced_accuracy, _balanced_error_rows),
    "neg_brier_score": Metric("classification", "proba", _neg_brier, _brier_rows),
    "neg_log_loss": Metric("classification", "proba", _neg_log_loss, _log_loss_rows),
    # The area under the curve is not a mean over rows: its rows are tested on the Brier score.
    "roc_auc": Metric("binary", "proba", _roc_auc, _brier_rows),
}


def default_metric(task: str) -> str:
    """``"r2"`` for regression, ``"neg_brier_score"`` for classification."""
    return "r2" if task == "regression" else "neg_brier_score"


def row_loss_for(metric, task: str) -> tuple[str, object]:
    """``(response, per-row loss)`` the weak test uses for ``metric``.

    A batched metric uses its own per-row loss; any other scorer (a name
    outside the registry or a callable) the task's default: squared error for
    regression, the Brier score for classification.
    """
    if isinstance(metric, str) and metric in BATCHED_METRICS:
        entry = BATCHED_METRICS[metric]
        return entry.response, entry.row_loss
    entry = BATCHED_METRICS[default_metric(task)]
    return entry.response, entry.row_loss
