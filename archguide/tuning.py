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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras_tuner

from archguide._backend import import_keras
from archguide.builder import DATA_LOSS_METRIC, build_model
from archguide.callbacks import ImportanceRescoring
from archguide.exceptions import ConfigError, DataError
from archguide.network import METHODS
from archguide.planning import GROUPINGS, WEAK_MODES, plan_architecture

keras = import_keras()

__all__ = ["OBJECTIVE", "ImportanceHyperModel"]

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
_NO_RESCORING = "none"  # KerasTuner's Choice takes no None
MIN_UNITS = 4  # plan_architecture's min_units


def _range(name: str, bounds, default, *, low=None, positive=False, integer=False) -> tuple:
    """Check one ``(min, max)`` bound pair: ordered, containing the default, in the allowed domain."""
    try:
        lo, hi = bounds
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
        scores: The :class:`~archguide.scoring.FeatureScores` to plan from.
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
        patience: Epochs without improvement of the validation data loss before a trial stops.
        seed: Seed of the weights' initialisers (None: Keras' global seed).
        name, tunable: As ``keras_tuner.HyperModel``.

    Attributes:
        objective: The objective to pass to a tuner: ``val_data_loss``, minimised.

    Raises:
        ConfigError: a range that is malformed, inverted or outside its domain; a choice
            that is empty or unknown.
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
        patience: int = 20,
        seed: int | None = None,
        name: str | None = None,
        tunable: bool = True,
    ):
        super().__init__(name=name, tunable=tunable)
        if not hasattr(scores, "features") or not hasattr(scores, "weak"):
            raise DataError(
                f"ImportanceHyperModel needs FeatureScores (from score_features). Received: {type(scores).__name__}"
            )
        self.scores, self.task, self.n_outputs, self.patience, self.seed = scores, task, n_outputs, patience, seed
        self.ranges = {
            "total_units": _range("total_units", total_units, DEFAULTS["total_units"], low=1, integer=True),
            "n_tiers": _range("n_tiers", n_tiers, DEFAULTS["n_tiers"], low=1, integer=True),
            "depth": _range("depth", depth, DEFAULTS["depth"], low=1, integer=True),
            "alpha": _range("alpha", alpha, DEFAULTS["alpha"], low=0.0),
            "l1": _range("l1", l1, DEFAULTS["l1"], positive=True),
            "l1_power": _range("l1_power", l1_power, DEFAULTS["l1_power"], low=0.0),
            "dropout": _range("dropout", dropout, DEFAULTS["dropout"], low=0.0),
            "learning_rate": _range("learning_rate", learning_rate, DEFAULTS["learning_rate"], positive=True),
            "rescoring_period": _range("rescoring_period", rescoring_period, 1, low=1, integer=True),
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

    def hyperparameters(self, hp) -> dict[str, Any]:
        """Draw (or read) every option of one trial: a dict of the plan's and training's values."""
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
        return values

    def build(self, hp):
        """Plan from the scores with this trial's options and build the (compiled) model."""
        v = self.hyperparameters(hp)
        total_units = v["total_units"]
        if v["grouping"] == "groups":  # a branch per group needs at least MIN_UNITS units each
            total_units = max(total_units, MIN_UNITS * len(self.scores.groups))
        plan = plan_architecture(
            self.scores,
            total_units=total_units,
            grouping=v["grouping"],
            n_tiers=v["n_tiers"],
            depth=v["depth"],
            alpha=v["alpha"],
            l1=v["l1"],
            l1_power=v["l1_power"],
            weak=v["weak"],
        )
        return build_model(
            plan,
            task=self.task,
            n_outputs=self.n_outputs,
            dropout=v["dropout"],
            learning_rate=v["learning_rate"],
            seed=self.seed,
        )

    def fit(self, hp, model, *args, **kwargs):
        """``model.fit`` with re-scoring and early stopping on the penalty-free validation loss.

        ``validation_data`` is required: the re-scoring and the stopping both read it.

        Raises:
            DataError: no ``validation_data``.
        """
        validation = kwargs.get("validation_data")
        if validation is None:
            raise DataError(
                "ImportanceHyperModel.fit needs validation_data=(X_val, y_val): the re-scoring and the early "
                "stopping read held-out rows (pass it to tuner.search)."
            )
        v = self.hyperparameters(hp)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if v["rescoring"] != _NO_RESCORING:
            callbacks.append(
                ImportanceRescoring(
                    validation_data=tuple(validation)[:2],
                    method=v["rescoring"],
                    every_n_epochs=v["rescoring_period"],
                    l1_power=v["l1_power"],
                    random_state=self.seed,
                )
            )
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_" + DATA_LOSS_METRIC, mode="min", patience=self.patience, restore_best_weights=True
            )
        )
        return model.fit(*args, callbacks=callbacks, **kwargs)


def _ordered(values: list, default) -> list:
    """``values`` with the default first when it is one of them (an empty HyperParameters takes the first)."""
    return [default, *[v for v in values if v != default]] if default in values else values
