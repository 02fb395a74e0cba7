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

This module holds the search space and the build; how a trial trains is in
:mod:`archguide.tuning._trials`, and the chief of a distributed search in
:mod:`archguide.tuning.distributed`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras_tuner
from sklearn.model_selection import KFold, StratifiedKFold

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number
from archguide._distributed import distributed_role
from archguide.exceptions import ConfigError, DataError
from archguide.model.builder import build_model
from archguide.model.callbacks import LR_SCHEDULES
from archguide.model.importance import METHODS
from archguide.planning import GROUPINGS, WEAK_MODES, plan_architecture
from archguide.tuning._trials import (
    _NO_RESCORING,
    OBJECTIVE,
    Fold,
    ObjectiveError,
    _TrialFitting,
    _tuner_objective,
    fold_of,
)
from archguide.tuning.distributed import serve_chief

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


def _choices(name: str, values, allowed) -> list:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    if not values:
        raise ConfigError(f"Received an empty choice for {name}; expected some of {list(allowed)}.")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"Received an invalid choice for {name}: {bad!r}. Allowed: {list(allowed)}.")
    return values


class ImportanceHyperModel(_TrialFitting, keras_tuner.HyperModel):
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
