"""How a trial of :class:`~archguide.ImportanceHyperModel` trains: its folds, callbacks and objective.

The search space and the build are in :mod:`archguide.tuning.hypermodel`; this part fits a built
model on held-out rows (a validation split or folds) with re-scoring and early stopping, and checks
that the tuner's objective is among the metrics the trial reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras_tuner
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from archguide._backend import import_keras
from archguide.exceptions import ConfigError, DataError
from archguide.model.builder import DATA_LOSS_METRIC
from archguide.model.callbacks import LOG_KEYS, training_callbacks
from archguide.schema import column_mismatch

keras = import_keras()

#: What every trial reports and the tuner minimises: the validation loss without the L1 penalty.
OBJECTIVE = keras_tuner.Objective("val_" + DATA_LOSS_METRIC, direction="min")
_NO_RESCORING = "none"  # KerasTuner's Choice takes no None


class ObjectiveError(ConfigError, keras_tuner.errors.FatalValueError):
    """The tuner's objective is not among the metrics the trials report (stops the search at once).

    A :class:`~archguide.exceptions.ConfigError`; also KerasTuner's ``FatalValueError``, so that the
    tuner stops instead of retrying the same mistake trial after trial.
    """


class _CheckObjective(keras.callbacks.Callback):
    """After the first epoch, stop the search if the tuner's objective is not in the logged metrics."""

    def __init__(self, objective):
        super().__init__()
        self.objective = objective

    def on_epoch_end(self, epoch, logs=None):
        if self.objective is None or self.objective.has_value(logs or {}):
            self.objective = None  # checked once: the same metrics come every epoch
            return
        wanted = [o.name for o in getattr(self.objective, "objectives", [self.objective])]
        raise ObjectiveError(
            f"The tuner's objective {', '.join(map(repr, wanted))} is not among the metrics the model reports: "
            f"{sorted(logs or {})}. ImportanceHyperModel reports {OBJECTIVE.name!r} (the validation loss without "
            "the L1 penalty): pass objective=hypermodel.objective to the tuner."
        )


def _tuner_objective(callbacks):
    """The objective of the tuner running this trial: KerasTuner passes it in its checkpoint callback."""
    for callback in callbacks:
        objective = getattr(callback, "objective", None)
        if isinstance(objective, keras_tuner.Objective) and hasattr(objective, "has_value"):
            return objective
    return None


class _TrialFitting:
    """Fit one trial's model (a part of :class:`~archguide.ImportanceHyperModel`; not public)."""

    def fit(self, hp, model, *args, **kwargs):
        """``model.fit`` with re-scoring and early stopping on the penalty-free validation loss.

        Without ``cv``, held-out rows are required (the re-scoring and the stopping read them):
        ``validation_data``, or ``validation_split`` as in ``model.fit`` (the last rows for
        regression, as Keras takes them; a stratified, seeded draw for classes, so that every
        class is held out). With ``cv``, ``x`` and ``y`` are split into folds and neither must be
        given; the return value is then one ``History`` per fold (KerasTuner averages them). A
        ``sample_weight`` weights the training rows, and the held-out rows too: the validation
        loss, early stopping and the trial's score are weighted as the training loss is.
        A DataFrame ``x`` is matched to the scores' features by name (in any order); an array
        must have one column per scored feature. Of the re-scoring's diagnostics, the History
        keeps those with a value at every epoch (``gate_penalty``; ``importance_tau`` only when
        it has one from the first epoch on), so that no trial metric is NaN.

        Raises:
            DataError: neither ``validation_data`` nor ``validation_split`` (without ``cv``), or
                either (with it); a ``validation_split`` outside (0, 1); ``x`` whose features are
                not the scored ones.
            ObjectiveError: the tuner's objective is not among the reported metrics.
        """
        args, kwargs = list(args), dict(kwargs)
        x = args.pop(0) if args else kwargs.pop("x", None)
        y = args.pop(0) if args else kwargs.pop("y", None)
        if args:
            raise DataError("ImportanceHyperModel.fit takes x and y by position; pass every other argument by name.")
        x = self._features(x, "x")
        validation = kwargs.pop("validation_data", None)
        split = kwargs.pop("validation_split", None) or None
        callbacks = list(kwargs.pop("callbacks", None) or [])
        objective = _tuner_objective(callbacks)
        if self.cv is None:
            if validation is None and split is not None:
                weights = kwargs.pop("sample_weight", None)
                fold = self._split_off(x, y, split, weights)
                return self._fit_folds(hp, model, [fold], callbacks, objective, kwargs, single=True)
            if validation is None:
                raise DataError(
                    "ImportanceHyperModel.fit needs validation_data=(X_val, y_val) or validation_split=0.2: the "
                    "re-scoring and the early stopping read held-out rows (pass either to tuner.search, or use cv=K)."
                )
            validation = tuple(validation)
            validation = (self._features(validation[0], "validation_data"), *validation[1:])
            return self._fit_one(hp, model, x, y, validation, callbacks, objective, kwargs)
        if validation is not None or split is not None:
            raise DataError(
                f"ImportanceHyperModel(cv={self.cv!r}) holds out its own folds: pass x and y to search "
                "without validation_data or validation_split."
            )
        if y is None:
            raise DataError("ImportanceHyperModel.fit with cv needs y.")
        y = np.asarray(y)
        weights = kwargs.pop("sample_weight", None)
        stratify = y.reshape(len(y), -1).argmax(1) if self.task == "multiclass" and y.ndim == 2 else y
        splits = self.cv.split(x, stratify if self.task != "regression" else None)
        folds = (fold_of(self.scores, x, y, train, val, weights) for train, val in splits)  # one fold in memory
        return self._fit_folds(hp, model, folds, callbacks, objective, kwargs, single=False)

    def _fit_folds(self, hp, model, folds, callbacks, objective, kwargs, *, single: bool):
        """Train one network per :class:`Fold` (the first is ``model``): a ``History``, or one per fold.

        Each fold plans from its own scores, trains on its rows (weighted by its weights) and is
        validated on its held-out rows (weighted by theirs). With several folds, Hyperband's later
        rounds start each fold from scratch: a warm start from one fold's weights would have seen
        the other folds' held-out rows.
        """
        kwargs = dict(kwargs)
        if not single:
            kwargs.pop("initial_epoch", None)
        warm_started = "tuner/trial_id" in hp.values
        histories = []
        for i, fold in enumerate(folds):
            fresh = i > 0 or (warm_started and not single)
            fold_model = self._build_for(hp, fold.scores) if fresh else model
            fold_kwargs = dict(kwargs)
            validation = (fold.x_val, fold.y_val)
            if fold.weights is not None:
                fold_kwargs["sample_weight"] = fold.weights
            if fold.val_weights is not None:  # the held-out rows are weighted as the training rows are
                validation = (*validation, fold.val_weights)
            histories.append(
                self._fit_one(hp, fold_model, fold.x, fold.y, validation, callbacks, objective, fold_kwargs)
            )
            del fold_model
        return histories[0] if single else histories

    def _split_off(self, x, y, split, weights) -> Fold:
        """Keras' ``validation_split`` for one trial, as a :class:`Fold` of the hypermodel's scores."""
        if isinstance(split, bool) or not isinstance(split, (int, float)) or not 0 < split < 1:
            raise DataError(f"validation_split must be a fraction in (0, 1). Received: validation_split={split!r}")
        if y is None or not hasattr(x, "shape"):
            raise DataError("validation_split needs x and y as arrays (for a dataset, pass validation_data).")
        y = np.asarray(y)
        n = len(y)
        labels = y.reshape(n, -1).argmax(1) if self.task == "multiclass" and y.ndim == 2 else y.reshape(n)
        train = val = None
        if self.task != "regression":
            _, counts = np.unique(labels, return_counts=True)
            n_val = int(math.ceil(split * n))
            if counts.min() >= 2 and len(counts) <= n_val <= n - len(counts):
                splitter = StratifiedShuffleSplit(1, test_size=n_val, random_state=self.seed)
                train, val = (np.sort(part) for part in next(splitter.split(np.zeros((n, 1)), labels)))
        if train is None:  # as Keras: the last rows, unshuffled
            split_at = int(math.ceil(n * (1.0 - split)))
            train, val = np.arange(split_at), np.arange(split_at, n)
        if len(train) == 0 or len(val) == 0:
            raise DataError(f"validation_split={split} of {n} rows leaves no training or no validation rows.")
        return fold_of(self.scores, np.asarray(x), y, train, val, weights)

    def _fit_one(self, hp, model, x, y, validation, callbacks, objective, kwargs):
        v = self.hyperparameters(hp)
        ours, _ = training_callbacks(
            validation[:2],
            method=None if v["rescoring"] == _NO_RESCORING else v["rescoring"],
            every_n_epochs=v["rescoring_period"],
            l1_power=v["l1_power"],
            random_state=self.seed,
            lr_patience=self.lr_patience,
            patience=self.patience,
            min_improvement=self.min_improvement,
            lr_schedule=self.lr_schedule,
            learning_rate=v["learning_rate"],
            epochs=kwargs.get("epochs", 1) - kwargs.get("initial_epoch", 0),
            first_epoch=kwargs.get("initial_epoch", 0),
        )
        callbacks = [_CheckObjective(objective), *callbacks, *ours]
        history = model.fit(x, y, validation_data=validation, callbacks=callbacks, **kwargs)
        # KerasTuner keeps every logged metric of the best epoch in the trial; a diagnostic without a value
        # at some epoch (importance_tau before the second re-scoring) would be a NaN metric, so leave it out.
        for key in LOG_KEYS:
            if key in history.history and not np.all(np.isfinite(history.history[key])):
                del history.history[key]
        return history

    def _features(self, x, argument: str):
        """``x`` as the scored features: a DataFrame matched by name (any order), an array by width."""
        features = list(self.scores.features)
        if x is None:
            raise DataError(f"ImportanceHyperModel.fit needs {argument}.")
        if isinstance(x, pd.DataFrame):
            columns = [str(c) for c in x.columns]
            problems = column_mismatch(features, columns)
            if problems:
                raise DataError(
                    f"{argument} has columns that are not the scored features: {problems}. Columns are matched by "
                    "name, in any order."
                )
            x = x.iloc[:, [columns.index(f) for f in features]]
            if not all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in x.dtypes):
                raise DataError(
                    f"{argument} has non-numeric columns; the network takes encoded numbers (the estimators' tune "
                    "encodes raw columns)."
                )
            return x.to_numpy(dtype="float32")
        if not hasattr(x, "shape"):
            return x  # a tf.data.Dataset or a generator: Keras checks its shape
        if len(x.shape) != 2 or x.shape[1] != len(features):
            raise DataError(
                f"{argument} has shape {tuple(x.shape)}, but the scores hold {len(features)} features: expected "
                f"(n_samples, {len(features)})."
            )
        return x


@dataclass(frozen=True, eq=False)
class Fold:
    """One fold of a :class:`FoldedHyperModel`: scores taken on its training rows only, and its rows.

    Attributes:
        scores: FeatureScores from the fold's training rows (never from ``x_val``).
        x, y: The fold's training rows, encoded as the scores' features.
        x_val, y_val: Its held-out rows, encoded the same way.
        weights, val_weights: Optional sample weights of each part.
    """

    scores: Any
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    weights: np.ndarray | None = None
    val_weights: np.ndarray | None = None


def fold_of(scores, x, y, train, val, weights=None) -> Fold:
    """The :class:`Fold` of rows ``train`` and held-out rows ``val`` of ``x``, ``y`` (and ``weights``)."""
    weights = None if weights is None else np.asarray(weights)
    return Fold(
        scores,
        x[train],
        y[train],
        x[val],
        y[val],
        None if weights is None else weights[train],
        None if weights is None else weights[val],
    )
