"""Re-scoring features while a network trains, and moving the penalties with the scores.

The source notes suggest "regularly re-evaluating feature importance after a
few epochs ... and adjust the network accordingly". :class:`ImportanceRescoring`
does that: every ``every_n_epochs`` epochs it measures importance on held-out
rows with :func:`~archguide.network_importance`, smooths it, and sets
the model's :class:`~archguide.FeatureGate` strengths with the same rule
as the plan (:func:`~archguide.planning.l1_strengths`).

Because the callback moves the penalty, ``val_loss`` (which includes it) moves
too. Watch the data loss instead: models compiled by
:func:`~archguide.build_model` report it as ``data_loss`` /
``val_data_loss``::

    keras.callbacks.EarlyStopping(monitor="val_data_loss", restore_best_weights=True)
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number, check_seed
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.model.builder import DATA_LOSS_METRIC
from archguide.model.importance import METHODS, aligned_input, input_gate, network_importance
from archguide.planning import l1_strengths

keras = import_keras()

__all__ = ["ImportanceRescoring"]

#: The learning-rate schedules of :func:`training_callbacks`.
LR_SCHEDULES = ("plateau", "cosine")
#: Keys the callback adds to the epoch ``logs`` (kept by History and CSVLogger).
LOG_KEYS = ("importance_tau", "gate_penalty", "n_overfit_features")


class ImportanceRescoring(keras.callbacks.Callback):
    """Re-score features during training and update the input gate's L1 strengths.

    Every ``every_n_epochs`` epochs, on at most ``max_rows`` validation rows:

    1. score the features with ``method`` (see :func:`~archguide.network_importance`);
       predictions that are not finite skip the re-scoring with a warning;
    2. smooth: ``s = smoothing * s_previous + (1 - smoothing) * score``;
    3. if the model has a :class:`~archguide.FeatureGate` and
       ``update_penalties``, set its strengths to
       ``l1_strengths(s, l1=l1, l1_power=l1_power)``.

    The scale ``l1=None`` resolves, when training begins, to: the ``l1`` the
    gate was built with (:func:`~archguide.build_model` keeps the
    plan's ``l1`` in the gate); for a gate made without one, the smallest
    *positive* strength it holds. A gate with neither leaves nothing to scale
    by: pass ``l1``, or ``update_penalties=False``. The scale used is kept in
    ``l1_``.

    Each re-scoring draws fresh shuffles (and the row sample is drawn once per
    ``fit``) from one generator made from ``random_state`` when training
    begins: an integer seed gives the same run every time, and the smoothing
    averages the shuffles of successive re-scorings.

    It adds to the epoch logs (so ``History`` and ``CSVLogger`` keep them; put
    a ``CSVLogger`` after this callback): ``importance_tau``, Kendall's tau
    between this re-scoring's ranking and the previous one's (1 = unchanged);
    ``gate_penalty``, the gate's current penalty; and with ``training_data``,
    ``n_overfit_features``. Between re-scorings the last values are repeated;
    before there is one (``importance_tau`` needs two re-scorings) the value is NaN.

    With ``training_data`` it also scores training rows and flags features
    whose training sensitivity exceeds ``overfit_ratio`` times their held-out
    importance (and is at least 1% of the largest training sensitivity): a
    "sensitive" input can be one the network overfits. With ``log_dir`` it
    writes each feature's importance and strength to TensorBoard.

    Args:
        validation_data: ``(X_val, y_val)`` held-out rows: an array in the
            model's input order, or a DataFrame matched to the gate's
            feature names by column name.
        method: A :func:`~archguide.network_importance` method.
        every_n_epochs: Re-score every this many epochs (at least 1).
        update_penalties: Set the gate's strengths from the scores.
        smoothing: Weight of the previous smoothed scores, in [0, 1).
        max_rows: Score a fixed random sample of at most this many rows.
        training_data: Optional ``(X_train, y_train)`` for the overfitting check.
        log_dir: Optional TensorBoard log directory.
        verbose: Print a line per re-scoring.
        l1: Strength scale (see above). l1_power: as in the plan's rule.
        n_repeats: Shuffles per feature for ``method="permutation"`` at each
            re-scoring. One by default: every re-scoring draws new shuffles and
            the smoothing averages them, so more per re-scoring mostly costs
            time (see ``benchmarks/bench_rescoring.py``).
        overfit_ratio: Training/held-out ratio above which a feature is flagged.
        random_state: Seed (int), ``numpy.random.RandomState`` or None for
            the row sample and the shuffles.

    Attributes:
        history_: pd.DataFrame, one row per re-scoring: ``epoch`` and one
            column per feature (the smoothed importance).
        importance_: The latest smoothed importance (pd.Series by feature),
            None before the first re-scoring; ``n_rescorings_``: how many so far.
        raw_history_: The same, before smoothing.
        strengths_history_: The strengths set at each re-scoring.
        training_history_: With ``training_data``: training-row importance.
        overfit_features_: Features flagged at the last re-scoring.
        l1_: The strength scale used (see above); None without a gate.

    Raises:
        ConfigError: unknown method, ``every_n_epochs`` < 1, or another option
            out of range (at construction); at the start of training, no
            scale for the strengths (see above).
        DataError: at the start of training, if the validation data does not
            match the model's input (both shapes, or the mismatched column
            names, are named) or the model does not take one 2-D input.
    """

    def __init__(
        self,
        validation_data,
        *,
        method: str = "gradient",
        every_n_epochs: int = 1,
        update_penalties: bool = True,
        smoothing: float = 0.5,
        max_rows: int = 2048,
        training_data=None,
        log_dir: str | None = None,
        verbose: int = 0,
        l1: float | None = None,
        l1_power: float = 1.0,
        n_repeats: int = 1,
        overfit_ratio: float = 3.0,
        random_state=0,
    ):
        super().__init__()
        check_choice("method", method, METHODS)
        check_int("every_n_epochs", every_n_epochs)
        check_int("max_rows", max_rows)
        check_int("n_repeats", n_repeats)
        check_number("smoothing", smoothing, high=1.0)
        if smoothing == 1.0:  # 1 would never let a new score in
            raise ConfigError(
                f"Received an invalid value for smoothing, expected a number in [0, 1). Received: smoothing={smoothing}"
            )
        check_number("l1_power", l1_power)
        check_number("overfit_ratio", overfit_ratio, low=1.0)
        if l1 is not None:
            check_number("l1", l1)
        check_seed(random_state)
        self.validation_data = self._pair(validation_data, "validation_data")
        self.training_data = None if training_data is None else self._pair(training_data, "training_data")
        self.method = method
        self.every_n_epochs = every_n_epochs
        self.update_penalties = update_penalties
        self.smoothing = smoothing
        self.max_rows = max_rows
        self.log_dir = log_dir
        self.verbose = verbose
        self.l1 = l1
        self.l1_power = l1_power
        self.n_repeats = n_repeats
        self.overfit_ratio = overfit_ratio
        self.random_state = random_state
        self._reset()

    @staticmethod
    def _pair(data, argument):
        if not isinstance(data, (tuple, list)) or len(data) != 2:
            raise DataError(f"{argument} must be a pair (X, y). Received: {type(data).__name__}")
        return data[0], data[1]

    def _reset(self):
        self._rows = {"history": [], "raw": [], "strengths": [], "training": []}
        self.overfit_features_: list[str] = []
        self._smoothed = None
        self._previous = None
        # a key from the first epoch on (History and CSVLogger need the same keys every epoch),
        # NaN until there is a value; no overfitting count without training rows
        keys = LOG_KEYS if self.training_data is not None else LOG_KEYS[:2]
        self._last_logs = dict.fromkeys(keys, float("nan"))
        self._writer = None
        self.l1_ = None

    history_ = property(lambda self: pd.DataFrame(self._rows["history"]), doc="Smoothed importance per re-scoring.")
    raw_history_ = property(lambda self: pd.DataFrame(self._rows["raw"]), doc="Importance before smoothing.")
    strengths_history_ = property(lambda self: pd.DataFrame(self._rows["strengths"]), doc="Strengths set.")
    training_history_ = property(lambda self: pd.DataFrame(self._rows["training"]), doc="Training-row importance.")
    importance_ = property(
        lambda self: self._smoothed, doc="The latest smoothed importance (pd.Series); None before the first re-scoring."
    )
    n_rescorings_ = property(lambda self: len(self._rows["history"]), doc="Re-scorings so far in this fit.")

    def __deepcopy__(self, memo):
        # KerasTuner deep-copies callbacks for every trial: share the (read-only) data and
        # leave the model and the state behind, so a copy is light and starts fresh.
        clone = copy.copy(self)
        clone.set_model(None)
        clone._reset()
        memo[id(self)] = clone
        return clone

    # ------------------------------------------------------------------ keras hooks

    def on_train_begin(self, logs=None):
        self._reset()
        # One generator per fit: every re-scoring draws new shuffles from it.
        self._rng = check_seed(self.random_state)
        self._features, self._X, self._y = self._sample(self.validation_data, "validation_data")
        if self.training_data is not None:
            _, self._Xt, self._yt = self._sample(self.training_data, "training_data")
        self._gate = input_gate(self.model)  # a gate elsewhere than at the input is left alone
        self.l1_ = self._strength_scale()
        if self.log_dir is not None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)

    def _strength_scale(self) -> float | None:
        if self._gate is None:
            return None
        if self.l1 is not None:
            return float(self.l1)
        if self._gate.l1 is not None:
            return float(self._gate.l1)
        strengths = self._gate.get_strengths()
        if np.any(strengths > 0):
            return float(strengths[strengths > 0].min())
        if self.update_penalties:
            raise ConfigError(
                "ImportanceRescoring(l1=None) takes its scale from the gate, but the gate was built without an l1 "
                "and all its strengths are 0. Pass l1=..., or update_penalties=False."
            )
        return None

    def _sample(self, data, argument):
        X, y = data
        names, X = aligned_input(self.model, X, argument=f"{argument}[0]")
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(X):
            raise DataError(f"{argument} has {len(X)} rows in X but {y.size} values in y.")
        if len(X) > self.max_rows:
            rows = np.sort(self._rng.choice(len(X), self.max_rows, replace=False))
            X, y = X[rows], y[rows]
        return names, X, y

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if (epoch + 1) % self.every_n_epochs == 0:
            self._rescore(epoch)
        if self._gate is not None:
            self._last_logs["gate_penalty"] = self._gate.penalty()
        logs.update(self._last_logs)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # ------------------------------------------------------------------ the work

    def _score(self, X, y):
        return network_importance(
            self.model,
            X,
            y,
            method=self.method,
            n_repeats=self.n_repeats,
            random_state=self._rng,
            feature_names=self._features,
        )

    def _rescore(self, epoch: int) -> None:
        raw = self._score(self._X, self._y)
        if not np.all(np.isfinite(raw.to_numpy())):
            warnings.warn(
                f"ImportanceRescoring: importance is not finite at epoch {epoch + 1} (the model's predictions "
                "or weights are not finite); skipping this re-scoring, training goes on.",
                ArchguideWarning,
                stacklevel=2,
            )
            return
        smoothed = raw if self._smoothed is None else self.smoothing * self._smoothed + (1 - self.smoothing) * raw
        if self._previous is not None:
            # one feature has no ranking to agree on (SciPy would warn of a small sample): tau is undefined
            tau = (
                kendalltau(self._previous.to_numpy(), smoothed.to_numpy()).statistic if len(smoothed) > 1 else math.nan
            )
            self._last_logs["importance_tau"] = float(tau) if math.isfinite(tau) else float("nan")
        self._previous = self._smoothed = smoothed

        row = {"epoch": epoch + 1}
        self._rows["history"].append({**row, **smoothed.to_dict()})
        self._rows["raw"].append({**row, **raw.to_dict()})
        if self._gate is not None and self.update_penalties and self.l1_ is not None:
            strengths = l1_strengths(
                smoothed.abs() if self.method == "olden" else smoothed, l1=self.l1_, l1_power=self.l1_power
            )
            self._gate.set_strengths([strengths[f] for f in self._features])
        if self._gate is not None:
            self._rows["strengths"].append({**row, **dict(zip(self._features, self._gate.get_strengths().tolist()))})
        if self.training_data is not None:
            train = self._score(self._Xt, self._yt)
            self._rows["training"].append({**row, **train.to_dict()})
            floor = 0.01 * max(float(train.max()), 0.0)
            held_out = np.maximum(raw.to_numpy(), 0.0)
            flagged = (train.to_numpy() > self.overfit_ratio * held_out) & (train.to_numpy() > floor)
            self.overfit_features_ = [f for f, bad in zip(self._features, flagged) if bad]
            self._last_logs["n_overfit_features"] = float(len(self.overfit_features_))
        if self._writer is not None:
            self._write_tensorboard(epoch + 1, smoothed)
        if self.verbose:
            top = ", ".join(f"{f}={v:.3g}" for f, v in smoothed.nlargest(3).items())
            print(f"ImportanceRescoring epoch {epoch + 1}: top {top}; tau {self._last_logs['importance_tau']:.3f}")

    def _write_tensorboard(self, step: int, smoothed: pd.Series) -> None:
        import tensorflow as tf

        strengths = self._gate.get_strengths() if self._gate is not None else None
        with self._writer.as_default(step=step):
            for i, (feature, value) in enumerate(smoothed.items()):
                tf.summary.scalar(f"importance/{feature}", float(value))
                if strengths is not None:
                    tf.summary.scalar(f"l1_strength/{feature}", float(strengths[i]))
        self._writer.flush()


def cosine_schedule(learning_rate: float, epochs: int, first_epoch: int = 0):
    """Keras' ``LearningRateScheduler`` along Keras' ``CosineDecay``, epoch by epoch.

    The rate is ``learning_rate`` at ``first_epoch`` and falls to
    ``learning_rate * (1 + cos(pi * (epochs - 1) / epochs)) / 2`` at the last of
    ``epochs`` epochs (the schedule of Loshchilov and Hutter's SGDR, without restarts).
    A run that continues past them keeps that last rate.
    """
    decay = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs)

    def rate(epoch: int, _current: float) -> float:
        return float(decay(min(max(epoch - first_epoch, 0), epochs - 1)))

    return keras.callbacks.LearningRateScheduler(rate)


class _RelativeEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' ``EarlyStopping`` whose patience restarts only on a relative improvement.

    The patience restarts when the monitored loss falls at least ``min_improvement``
    (a fraction) below its value at the last restart; the weights restored are
    still the lowest-loss epoch's, whatever the size of its improvement (Keras'
    absolute ``min_delta`` moves both together, and reads a loss's scale).
    Watches a loss (``mode="min"``).
    """

    def __init__(self, min_improvement: float, **kwargs):
        super().__init__(mode="min", **kwargs)
        self.min_improvement = min_improvement

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._mark = math.inf  # the loss when the patience last restarted

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None:
            return
        current = float(current)
        if self.best is None or current < self.best:
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        if current < self._mark * (1.0 - self.min_improvement):
            self._mark, self.wait = current, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True


def training_callbacks(
    validation_data,
    *,
    method: str | None,
    every_n_epochs: int,
    l1_power: float,
    random_state,
    lr_patience: int | None,
    patience: int,
    lr_schedule: str = "plateau",
    learning_rate: float | None = None,
    epochs: int | None = None,
    first_epoch: int = 0,
    min_improvement: float = 0.0,
) -> tuple[list, ImportanceRescoring | None]:
    """The callbacks the estimators and ``ImportanceHyperModel`` train with, in this order.

    ``ImportanceRescoring`` on ``validation_data`` (none when ``method`` is None); the
    learning rate's schedule: with ``lr_schedule="plateau"``, ``ReduceLROnPlateau`` halving
    the rate after ``lr_patience`` epochs without improvement (none when it is None), with
    ``"cosine"``, :func:`cosine_schedule` from ``learning_rate`` over the ``epochs`` that
    start at ``first_epoch``; and ``EarlyStopping`` after ``patience`` epochs, restoring the
    best weights (with ``min_improvement > 0``, an epoch counts as an improvement for the
    patience only when the loss fell by that fraction since the patience last restarted;
    the weights restored are still the best epoch's). Early stopping and the plateau watch
    the validation loss without the L1 penalty.

    Returns:
        ``(callbacks, the ImportanceRescoring or None)``.
    """
    monitor = "val_" + DATA_LOSS_METRIC
    callbacks, rescoring = [], None
    if method is not None:
        rescoring = ImportanceRescoring(
            validation_data=validation_data,
            method=method,
            every_n_epochs=every_n_epochs,
            l1_power=l1_power,
            random_state=random_state,
        )
        callbacks.append(rescoring)
    if lr_schedule == "cosine":
        callbacks.append(cosine_schedule(learning_rate, epochs, first_epoch))
    elif lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode="min", factor=0.5, patience=lr_patience, min_lr=1e-6
            )
        )
    stopping = {"monitor": monitor, "patience": patience, "restore_best_weights": True}
    if min_improvement > 0:
        callbacks.append(_RelativeEarlyStopping(min_improvement, **stopping))
    else:
        callbacks.append(keras.callbacks.EarlyStopping(mode="min", **stopping))
    return callbacks, rescoring
