"""Importance-aware search spaces for KerasTuner.

:class:`ImportanceHyperModel` is a ``keras_tuner.HyperModel`` whose every trial is an
importance-guided network: ``build(hp)`` draws the plan's options (budget of units, tiers or
groups, depth, allocation exponent, L1 scale and power, weak handling), dropout and the
learning rate, then plans from the scores and builds; ``fit(hp, model, ...)`` adds the
re-scoring callback (its method and period drawn too) and early stopping on the penalty-free
validation loss, so each trial re-scores while it trains. Use it with any KerasTuner tuner::

    hypermodel = ImportanceHyperModel(scores)
    tuner = keras_tuner.RandomSearch(hypermodel, objective=hypermodel.objective, max_trials=20)
    tuner.search(X_train, y_train, validation_data=(X_val, y_val), epochs=200)

KerasTuner clears the Keras session before each trial's build, so a long search does not grow.

KerasTuner has no cross-validation for Keras models; ``ImportanceHyperModel(scores, cv=5)`` scores
each trial by the mean over five folds of the best epoch's validation data loss (pass ``x`` and
``y`` to ``search``, no ``validation_data``). The scores decide the plan, the weak flags and the
penalties: scores taken on rows that a trial is later validated on make its score optimistic.
``ImportanceGuidedRegressor.tune`` (and ``archguide tune``) therefore encode and score each fold's
training rows apart (:class:`FoldedHyperModel`), and without folds score only the training rows.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras_tuner
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, StratifiedShuffleSplit

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number
from archguide._distributed import distributed_role, oracle_address
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.model.builder import DATA_LOSS_METRIC, build_model
from archguide.model.callbacks import LOG_KEYS, LR_SCHEDULES, training_callbacks
from archguide.model.importance import METHODS
from archguide.planning import GROUPINGS, WEAK_MODES, plan_architecture
from archguide.schema import column_mismatch

keras = import_keras()

__all__ = [
    "OBJECTIVE",
    "Fold",
    "FoldedHyperModel",
    "fold_of",
    "ImportanceHyperModel",
    "ObjectiveError",
    "distributed_role",
    "serve_chief",
]

#: The tuner objective the trials report: the validation loss without the L1 penalty.
OBJECTIVE = keras_tuner.Objective("val_" + DATA_LOSS_METRIC, direction="min")

#: name -> (default, the plan_architecture / build_model / ImportanceRescoring default).
DEFAULTS = {
    "total_units": 128,
    "grouping": "tiers",
    "n_tiers": 3,
    "depth": 2,
    "alpha": 1.0,
    "l1": 1e-3,
    "l1_power": 1.0,
    "weak": "penalize",
    "dropout": 0.0,
    "learning_rate": 1e-3,
    "rescoring": "gradient",
    "rescoring_period": 1,
}
_TASKS = ("regression", "binary", "multiclass")
_NO_RESCORING = "none"  # KerasTuner's Choice takes no None
MIN_UNITS = 4  # plan_architecture's min_units


def _range(name: str, bounds, *, low=None, positive=False, integer=False) -> tuple:
    """Check one ``(min, max)`` bound pair: two numbers, ordered, in the allowed domain.

    A number written as text (YAML 1.1 reads ``1e-5`` as a string) is read as the number.
    """
    try:
        lo, hi = (_number_from_text(v) if not integer else v for v in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"Received an invalid value for {name}, expected (min, max). Received: {bounds!r}") from None
    numbers = (int,) if integer else (int, float)
    if not all(isinstance(v, numbers) and not isinstance(v, bool) and math.isfinite(v) for v in (lo, hi)):
        kind = "integers" if integer else "finite numbers"
        raise ConfigError(f"Received an invalid value for {name}, expected two {kind}. Received: {bounds!r}")
    if lo > hi:
        raise ConfigError(f"Received an inverted range for {name}: min {lo} is above max {hi}.")
    if (positive and lo <= 0) or (low is not None and lo < low):
        floor = "above 0" if positive else f"at least {low}"
        raise ConfigError(f"Received an invalid value for {name}, expected bounds {floor}. Received: {bounds!r}")
    return lo, hi


def _number_from_text(value):
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


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


def _choices(name: str, values, allowed) -> list:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise ConfigError(f"Received an empty choice for {name}; expected some of {list(allowed)}.")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"Received an invalid choice for {name}: {bad!r}. Allowed: {list(allowed)}.")
    return values


class ImportanceHyperModel(keras_tuner.HyperModel):
    """A KerasTuner search space over importance-guided architectures.

    Every bound is a ``(min, max)`` pair and every choice a list. A range's default is the
    plan's default where the range allows (else the nearest end), a choice's is the plan's
    default when listed (else the first): with the default bounds,
    ``build(keras_tuner.HyperParameters())`` gives the same model as
    ``build_model(plan_architecture(scores))``. A pair with min == max fixes the value. With
    ``grouping="groups"``, a budget below 4 units per group is raised to that minimum.

    Args:
        scores: The :class:`~archguide.FeatureScores` to plan from.
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        n_outputs: Regression targets, or classes for ``"multiclass"``.
        total_units: Range of the first-layer unit budget (log scale).
        grouping: Choices among ``"tiers"`` and ``"groups"``.
        n_tiers: Range of tiers (with ``grouping="tiers"``).
        depth: Range of Dense layers per branch.
        alpha: Range of the allocation exponent (units follow importance ** alpha).
        l1: Range of the L1 scale (log scale).
        l1_power: Range of how steeply the strength follows importance.
        weak: Choices among ``"penalize"`` and ``"drop"``.
        dropout: Range of the dropout rate.
        learning_rate: Range of Adam's learning rate (log scale).
        rescoring: Choices of the re-scoring method (``None`` for none).
        rescoring_period: Range of epochs between re-scorings.
        head_units: Widths of the shared head, fixed (default: the plan's).
        embedding, embeddable: The plans' numeric embeddings, fixed (see
            :func:`~archguide.planning.plan_architecture`; default none).
        category_embedding, categorical: The plans' category embeddings,
            fixed (see :func:`~archguide.planning.plan_architecture`; default none).
        ensemble_size: Members of each trial's TabM-mini ensemble, fixed (see
            :func:`~archguide.build_model`; default 1, none).
        weight_decay: AdamW's decoupled weight decay, fixed (default 0: Adam).
        label_smoothing: Label smoothing for classes, fixed (default 0: none).
        patience: Epochs without improvement of the validation data loss before a trial stops.
        min_improvement: The fraction by which the validation data loss must fall to count as an
            improvement for ``patience`` (the estimators' parameter of that name; 0: any fall).
        lr_patience: Epochs without improvement before the learning rate is halved
            (``ReduceLROnPlateau``, as the estimators do); None: a constant rate.
        lr_schedule: ``"plateau"`` (halve by ``lr_patience``) or ``"cosine"`` (half a cosine
            from the trial's learning rate towards 0 over the epochs of each ``fit``;
            ``lr_patience`` unused), fixed.
        cv: None (``search`` is given ``validation_data``), a number of folds (at least 2;
            stratified for classification) or a scikit-learn splitter such as
            ``KFold(5, shuffle=True)``. With folds, each trial trains one network per fold from
            scratch, each re-scored and stopped on its own held-out fold, and the trial's score
            is the mean over folds of the best epoch's metrics. Hyperband's later rounds
            then train each fold from scratch too (a warm start from one fold's weights would
            have seen the other folds' held-out rows).
        seed: Seed of the weights' initialisers (None: Keras' global seed).
        name, tunable: As ``keras_tuner.HyperModel``.

    Attributes:
        objective: The objective to pass to a tuner: ``val_data_loss``, minimised.

    Raises:
        ConfigError: a range that is malformed, inverted or outside its domain; a choice
            that is empty or unknown; a bad ``task``, ``cv`` or patience.
        DataError: ``scores`` are not :class:`~archguide.FeatureScores`.
    """

    objective = OBJECTIVE

    def __init__(
        self,
        scores,
        *,
        task: str = "regression",
        n_outputs: int = 1,
        total_units: Sequence[int] = (32, 512),
        grouping: Sequence[str] = ("tiers", "groups"),
        n_tiers: Sequence[int] = (2, 5),
        depth: Sequence[int] = (1, 3),
        alpha: Sequence[float] = (0.5, 2.0),
        l1: Sequence[float] = (1e-5, 1e-1),
        l1_power: Sequence[float] = (0.5, 2.0),
        weak: Sequence[str] = ("penalize", "drop"),
        dropout: Sequence[float] = (0.0, 0.5),
        learning_rate: Sequence[float] = (1e-4, 1e-2),
        rescoring: Sequence[str | None] = ("gradient", "permutation", None),
        rescoring_period: Sequence[int] = (1, 5),
        head_units: Sequence[int] | None = None,
        embedding: int = 0,
        embeddable: Sequence[str] | None = None,
        category_embedding: int = 0,
        categorical: Mapping[str, Sequence[str]] | None = None,
        ensemble_size: int = 1,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        patience: int = 20,
        min_improvement: float = 0.0,
        lr_patience: int | None = None,
        lr_schedule: str = "plateau",
        cv=None,
        seed: int | None = None,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        if not hasattr(scores, "features") or not hasattr(scores, "weak"):
            raise DataError(
                f"ImportanceHyperModel needs FeatureScores (from score_features). Received: {type(scores).__name__}"
            )
        check_choice("task", task, _TASKS)
        check_int("n_outputs", n_outputs, low=2 if task == "multiclass" else 1)
        check_int("patience", patience, low=0)
        check_number("min_improvement", min_improvement, high=1.0, open_high=True)
        check_int("lr_patience", lr_patience, allow_none=True)
        check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
        self.lr_schedule = lr_schedule
        self.scores, self.task, self.n_outputs, self.seed = scores, task, n_outputs, seed
        self.patience, self.lr_patience, self.head_units = patience, lr_patience, head_units
        self.min_improvement = min_improvement
        check_int("embedding", embedding, low=0)
        self.embedding, self.embeddable = embedding, None if embeddable is None else list(embeddable)
        check_int("category_embedding", category_embedding, low=0)
        self.category_embedding = category_embedding
        self.categorical = None if categorical is None else {str(c): list(v) for c, v in categorical.items()}
        check_int("ensemble_size", ensemble_size)
        self.ensemble_size = ensemble_size
        check_number("weight_decay", weight_decay)
        self.weight_decay = weight_decay
        check_number("label_smoothing", label_smoothing, high=1.0, open_high=True)
        self.label_smoothing = label_smoothing
        self.cv = _check_cv(cv, task, seed)
        self.ranges = {
            "total_units": _range("total_units", total_units, low=1, integer=True),
            "n_tiers": _range("n_tiers", n_tiers, low=1, integer=True),
            "depth": _range("depth", depth, low=1, integer=True),
            "alpha": _range("alpha", alpha, low=0.0),
            "l1": _range("l1", l1, positive=True),
            "l1_power": _range("l1_power", l1_power, low=0.0),
            "dropout": _range("dropout", dropout, low=0.0),
            "learning_rate": _range("learning_rate", learning_rate, positive=True),
            "rescoring_period": _range("rescoring_period", rescoring_period, low=1, integer=True),
        }
        if self.ranges["dropout"][1] >= 1.0:
            raise ConfigError(f"Received an invalid value for dropout, expected rates below 1. Received: {dropout!r}")
        self.choices = {
            "grouping": _ordered(_choices("grouping", grouping, GROUPINGS), DEFAULTS["grouping"]),
            "weak": _ordered(_choices("weak", weak, WEAK_MODES), DEFAULTS["weak"]),
            "rescoring": [
                _NO_RESCORING if m is None else m
                for m in _ordered(_choices("rescoring", rescoring, (*METHODS, None)), "gradient")
            ],
        }

    # ------------------------------------------------------------------ the space

    def _number(self, hp, name: str, *, log: bool = False, integer: bool = False):
        lo, hi = self.ranges[name]
        default = min(max(DEFAULTS[name], lo), hi)  # the plan's default where the range allows
        if lo == hi:
            return hp.Fixed(name, lo)
        kwargs = {"default": default, "sampling": "log" if log else "linear"}
        if integer:
            return hp.Int(name, lo, hi, **kwargs)
        return hp.Float(name, lo, hi, **kwargs)

    def _choice(self, hp, name: str):
        values = self.choices[name]
        return values[0] if len(values) == 1 else hp.Choice(name, values, default=values[0])

    def hyperparameters(self, hp, scores=None) -> dict[str, Any]:
        """Draw (or read) every option of one trial: a dict of the plan's and training's values.

        The values are the ones the trial plans with: with ``grouping="groups"``, ``total_units``
        is raised to 4 per feature group (of ``scores``, default the hypermodel's) where the draw
        is below that.
        """
        scores = self.scores if scores is None else scores
        grouping = self._choice(hp, "grouping")
        values = {
            "total_units": self._number(hp, "total_units", log=True, integer=True),
            "grouping": grouping,
            "n_tiers": self._number(hp, "n_tiers", integer=True) if grouping == "tiers" else DEFAULTS["n_tiers"],
            "depth": self._number(hp, "depth", integer=True),
            "alpha": self._number(hp, "alpha"),
            "l1": self._number(hp, "l1", log=True),
            "l1_power": self._number(hp, "l1_power"),
            "weak": self._choice(hp, "weak"),
            "dropout": self._number(hp, "dropout"),
            "learning_rate": self._number(hp, "learning_rate", log=True),
            "rescoring": self._choice(hp, "rescoring"),
        }
        values["rescoring_period"] = (
            self._number(hp, "rescoring_period", integer=True) if values["rescoring"] != _NO_RESCORING else 1
        )
        if grouping == "groups":  # a branch per group needs at least MIN_UNITS units each
            values["total_units"] = max(values["total_units"], MIN_UNITS * len(scores.groups))
        return values

    def build(self, hp):
        """Plan from the scores with this trial's options and build the (compiled) model."""
        return self._build_for(hp, self.scores)

    def _build_for(self, hp, scores):
        v = self.hyperparameters(hp, scores)
        plan = plan_architecture(
            scores,
            total_units=v["total_units"],
            grouping=v["grouping"],
            n_tiers=v["n_tiers"],
            depth=v["depth"],
            alpha=v["alpha"],
            l1=v["l1"],
            l1_power=v["l1_power"],
            weak=v["weak"],
            head_units=self.head_units,
            embedding=self.embedding,
            embeddable=self.embeddable,
            category_embedding=self.category_embedding,
            categorical=self.categorical,
        )
        return build_model(
            plan,
            task=self.task,
            n_outputs=self.n_outputs,
            dropout=v["dropout"],
            ensemble_size=self.ensemble_size,
            learning_rate=v["learning_rate"],
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            seed=self.seed,
        )

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


class FoldedHyperModel(ImportanceHyperModel):
    """An :class:`ImportanceHyperModel` over folds that were each encoded and scored apart.

    Each fold plans from its own scores (taken on its own training rows), trains on them and is
    re-scored, stopped and scored on its own held-out rows, so that no trial is ranked on rows
    that chose its plan, weak flags or penalties. The trial's score is the mean over folds (one
    fold: a plain train/validation split). Pass nothing but ``epochs``, ``batch_size`` and the
    like to ``tuner.search``: the folds carry the data. This is what
    ``ImportanceGuidedRegressor.tune`` searches with.

    Args:
        folds: :class:`Fold` objects (at least one).
        **kwargs: As :class:`ImportanceHyperModel` (but ``cv``): the search space and training
            options.
    """

    def __init__(self, folds: Sequence[Fold], **kwargs):
        folds = list(folds)
        if not folds:
            raise ConfigError("FoldedHyperModel needs at least one fold.")
        if kwargs.get("cv") is not None:
            raise ConfigError("FoldedHyperModel's folds are its cross-validation; leave cv out.")
        super().__init__(folds[0].scores, **kwargs)
        self.folds = folds

    def fit(self, hp, model, *args, **kwargs):
        """Train one network per fold (the first is ``model``); one ``History`` per fold."""
        if args or any(kwargs.get(k) is not None for k in ("x", "y", "validation_data", "validation_split")):
            raise DataError("FoldedHyperModel's folds hold the data: pass only training options to tuner.search.")
        kwargs = {k: v for k, v in kwargs.items() if k not in ("x", "y", "validation_data", "validation_split")}
        callbacks = list(kwargs.pop("callbacks", None) or [])
        objective = _tuner_objective(callbacks)
        return self._fit_folds(hp, model, self.folds, callbacks, objective, kwargs, single=len(self.folds) == 1)


def _check_cv(cv, task: str, seed):
    """A scikit-learn splitter from ``cv`` (None stays None)."""
    if cv is None or (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        return cv
    check_int("cv", cv, low=2, allow_none=True)
    splitter = KFold if task == "regression" else StratifiedKFold
    return splitter(n_splits=cv, shuffle=True, random_state=seed)


def _ordered(values: list, default) -> list:
    """``values`` with the default first when it is one of them (an empty HyperParameters takes the first)."""
    return [default, *[v for v in values if v != default]] if default in values else values


# ---------------------------------------------------------------------- distributed search


def serve_chief(tuner, *, worker_timeout: float = 3600.0, timeout: float | None = None, poll: float = 1.0) -> int:
    """Serve ``tuner``'s oracle to the workers until the search ends: the chief's ``search``, with bounded waits.

    KerasTuner's chief (``tuner.search`` with ``KERASTUNER_TUNER_ID=chief``) waits for every
    worker to finish, without limit: a worker that dies keeps its trial running, and the chief
    waits forever. This is the same gRPC service, with two bounds. A worker not heard from for
    ``worker_timeout`` seconds (workers report at every epoch's end, and ask for a trial after
    each) is given up: its trial ends as ``FAILED`` and the chief no longer waits for it; if no
    worker has asked for a trial within ``worker_timeout`` of the start, the chief returns. After
    ``timeout`` seconds in all, every trial still running ends as ``FAILED`` and the chief
    returns. A search that ends in any of these ways is reported by one
    :class:`~archguide.exceptions.ArchguideWarning` that says why and which workers were given up.

    Args:
        tuner: A KerasTuner tuner built in the chief process (``KERASTUNER_TUNER_ID=chief``).
        worker_timeout: Seconds of silence after which a worker is given up.
        timeout: Seconds after which the search is ended (None: no limit).
        poll: Seconds between checks.

    Returns:
        The number of workers given up, for silence or at the timeout.

    Raises:
        ConfigError: this process is not the chief.
    """
    if distributed_role() != "chief":
        raise ConfigError(
            "serve_chief runs in the chief process: set KERASTUNER_TUNER_ID=chief, KERASTUNER_ORACLE_IP and "
            "KERASTUNER_ORACLE_PORT."
        )
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    oracle = tuner.oracle
    servicer = _watchful_servicer(oracle)
    tuner.save()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    address = oracle_address()
    if not server.add_insecure_port(address):
        raise ConfigError(f"The chief could not listen on {address} (KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT).")
    server.start()
    start, given_up, ending = time.monotonic(), [], None
    try:
        while True:
            time.sleep(poll)
            now = time.monotonic()
            for tuner_id, last in list(servicer.last_seen.items()):
                if tuner_id not in given_up and tuner_id in oracle.tuner_ids and now - last > worker_timeout:
                    _give_up(oracle, tuner_id, f"worker {tuner_id!r} silent for {now - last:.0f} s")
                    given_up.append(tuner_id)
            if servicer.stop_triggered and oracle_chief.exit_chief(oracle):
                break
            if not servicer.last_seen and now - start > worker_timeout:
                ending = (
                    f"No worker asked for a trial in {worker_timeout:g} s (worker_timeout): the search ends with "
                    "no trials. Start workers with KERASTUNER_TUNER_ID=tuner0, tuner1, ... and the chief's address."
                )
                break
            if given_up and not oracle.tuner_ids and not oracle.ongoing_trials:
                ending = (
                    f"Every worker stopped answering ({', '.join(given_up)}; their running trials ended as FAILED): "
                    f"the search ends with {len(oracle.trials)} trials."
                )
                break
            if timeout is not None and now - start > timeout:
                running = sorted(oracle.tuner_ids)
                for tuner_id in running:
                    _give_up(oracle, tuner_id, f"the search's timeout ({timeout:g} s) passed")
                ending = (
                    f"The search's timeout ({timeout:g} s) passed: it ends with {len(oracle.trials)} trials; "
                    f"trials still running on {', '.join(running) or 'no worker'} ended as FAILED."
                )
                if given_up:
                    ending += f" Given up before, silent for {worker_timeout:g} s: {', '.join(given_up)}."
                given_up += running
                break
    finally:
        server.stop(grace=5)
    if ending is None and given_up:
        ending = f"Gave up {len(given_up)} worker(s) that stopped answering: {', '.join(given_up)}."
    if ending is not None:
        warnings.warn(ending, ArchguideWarning, stacklevel=2)
    return len(given_up)


def _give_up(oracle, tuner_id: str, reason: str) -> None:
    """End ``tuner_id``'s running trial as FAILED and stop waiting for that worker."""
    trial = oracle.ongoing_trials.get(tuner_id)
    if trial is not None:
        trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
        trial.message = reason
        oracle.end_trial(trial)
    oracle.tuner_ids.discard(tuner_id)


def _watchful_servicer(oracle):
    """KerasTuner's oracle service, noting when each worker was last heard from (``last_seen``)."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class WatchfulServicer(OracleServicer):
        def __init__(self, oracle):
            super().__init__(oracle)
            self.last_seen: dict[str, float] = {}

        def _heard(self, trial_id):
            for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
                if trial.trial_id == trial_id:
                    self.last_seen[tuner_id] = time.monotonic()

        def CreateTrial(self, request, context):  # gRPC's method names
            self.last_seen[request.tuner_id] = time.monotonic()
            return super().CreateTrial(request, context)

        def UpdateTrial(self, request, context):
            self._heard(request.trial_id)
            return super().UpdateTrial(request, context)

        def EndTrial(self, request, context):
            self._heard(request.trial.trial_id)
            return super().EndTrial(request, context)

    return WatchfulServicer(oracle)
