"""How an estimator trains its network: the data pipeline, the Keras fit, re-plans and the refit.

:class:`_Training` is one of the parts :class:`~archguide.estimators.estimator._ImportanceGuidedEstimator`
is made of; it reads the estimator's parameters and sets ``batch_size_``.
"""

from __future__ import annotations

import math
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from archguide._backend import import_keras
from archguide.exceptions import ArchguideWarning, TrainingError
from archguide.model.builder import DATA_LOSS_METRIC, build_model
from archguide.model.callbacks import training_callbacks
from archguide.model.replanning import (
    ReplanTrigger,
    missing_features,
    moved_features,
    plan_record,
    replan_from,
    warm_start,
    with_freed,
)
from archguide.planning import ArchitecturePlan

keras = import_keras()

NETWORK = "archguide_network"
PREDICT_BATCH = 4096
#: Most training steps per call of Keras' compiled step (``steps_per_execution``); see ``_steps_per_execution``.
_MAX_STEPS_PER_EXECUTION = 16
_FEED = "dataset"  # how ArrayRows feeds Keras: "dataset" (one iterator per fit) or "arrays" (Keras' own, per epoch)


def _batch_size(batch_size: int | str, n_rows: int) -> int:
    """Rows per step: ``batch_size``, or with ``"auto"`` the largest power of two up to ``n_rows / 16``,
    between 16 and 64 (at least 16 steps an epoch from 256 training rows up; 64 from 1,024)."""
    if batch_size != "auto":
        return int(batch_size)
    return int(min(64, max(16, 2 ** math.floor(math.log2(max(n_rows, 1) / 16)))))


def _steps_per_execution(n_rows: int, batch_size: int) -> int:
    """The largest divisor of the steps per epoch up to ``_MAX_STEPS_PER_EXECUTION``.

    Keras runs ``steps_per_execution`` steps per call of its compiled step function, saving a trip
    through Python per step (a 5-epoch fit on 10^5 rows: 14.9 s against 24.1, benchmarks "Fit time"). The training
    pipeline repeats (``ArrayRows.fit_arguments``), so a call that ran past the epoch's last step would eat into the
    next epoch's rows: a divisor keeps every epoch one pass over the rows.
    """
    steps = math.ceil(n_rows / batch_size)
    return max(d for d in range(1, min(steps, _MAX_STEPS_PER_EXECUTION) + 1) if steps % d == 0)


@dataclass
class Prepared:
    """What a fit trains from, however the data came (a table in memory or a streamed dataset).

    Attributes:
        encoding, scores, task: The fitted encoding, the first scores and the task.
        seeds: The split, scoring, model and re-scoring seeds.
        rows: The training rows (:class:`ArrayRows` or a dataset's).
        validation: ``(X_val, y_val)``, encoded, in memory.
        validation_indices: The validation rows' positions.
        every_row: Returns the rows a refit trains on (training and validation rows).
        n_features: Source columns.
        feature_names: Their names (an object array), or None for an array without names.
    """

    encoding: Any
    scores: Any
    task: str
    seeds: tuple[int, int, int, int]
    rows: Any
    validation: tuple[np.ndarray, np.ndarray]
    validation_indices: np.ndarray
    every_row: Callable[[], Any]
    n_features: int
    feature_names: np.ndarray | None


class ArrayRows:
    """Training rows held in memory: the encoded features and the network's target.

    The estimators train on an object like this one or like
    :class:`~archguide.estimators._streaming.StreamedRows` (a dataset read piece by piece): ``n``
    rows, :meth:`fit_arguments` for ``Model.fit`` and :meth:`sample`, the rows the residual check
    and the sensitivity check read.
    """

    failure = None  # a streamed pipeline's error, raised after Model.fit; arrays never fail

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y

    @property
    def n(self) -> int:
        return len(self.X)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        return self.X, self.y

    def fit_arguments(self, batch_size: int, seed: int) -> dict[str, Any]:
        """The training-data arguments of ``Model.fit``, as one ``tf.data`` pipeline built once per fit.

        Given arrays, Keras builds a new ``tf.data`` pipeline for every epoch (about 50 ms of CPU each on a
        small table, more than the pass itself). Here the training rows are one repeated pipeline, iterated
        once per fit with ``steps_per_epoch``: each epoch still sees every row once, in a new order (a full
        shuffle, seeded by ``seed``).
        """
        if _FEED != "dataset" or keras.backend.backend() != "tensorflow":
            return {"x": self.X, "y": self.y, "batch_size": batch_size, "shuffle": True}
        import tensorflow as tf

        rows = tf.data.Dataset.from_tensor_slices((self.X, self.y))
        rows = rows.shuffle(len(self.X), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        return {
            "x": rows.repeat().prefetch(tf.data.AUTOTUNE),
            "steps_per_epoch": math.ceil(len(self.X) / batch_size),
            "shuffle": False,  # shuffled above, anew each epoch
        }


def _validation_arguments(validation_data, batch_size: int) -> dict[str, Any]:
    """``validation_data`` for ``Model.fit``: one cached pipeline in batches of up to ``PREDICT_BATCH`` rows
    (the mean loss is the same as Keras' own, in fewer steps)."""
    if validation_data is None:
        return {}
    if _FEED != "dataset" or keras.backend.backend() != "tensorflow":
        return {"validation_data": validation_data}
    import tensorflow as tf

    X_val, y_val = validation_data
    val_batch = min(PREDICT_BATCH, max(batch_size, len(X_val)))
    return {"validation_data": tf.data.Dataset.from_tensor_slices((X_val, y_val)).batch(val_batch).cache()}


class _StopOnNonFinite(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite, and remember where."""

    def __init__(self):
        super().__init__()
        self.failed_at = None
        self._epoch = 0

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failed_at = (self._epoch, batch)
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


class _EpochProgress(keras.callbacks.Callback):
    """One progress bar over epochs (``verbose=1``): the validation data loss, the best so far and the
    training rows per second of the last epoch."""

    def __init__(self, epochs: int, description: str, n_rows: int, monitor: str = "val_" + DATA_LOSS_METRIC):
        super().__init__()
        self.epochs, self.description, self.n_rows, self.monitor = epochs, description, n_rows, monitor

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", mininterval=0.5, leave=True)
        self._best = float("inf")

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val = logs.get(self.monitor)
        postfix = {}
        if val is not None:
            self._best = min(self._best, float(val))
            postfix = {self.monitor: f"{float(val):.4g}", "best": f"{self._best:.4g}"}
        postfix["rows/s"] = f"{self.n_rows / max(time.perf_counter() - self._started, 1e-9):,.0f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_train_end(self, logs=None):
        self._bar.total = self._bar.n  # stopped early: the bar ends full
        self._bar.refresh()
        self._bar.close()


class _Training:
    """Train the planned network (a part of the estimators; not public)."""

    def _network(self, plan: ArchitecturePlan, task: str, seed: int, n_rows: int):
        """The compiled network of ``plan``, to be trained on ``n_rows`` rows."""
        return build_model(
            plan,
            task=task,
            n_outputs=self._n_outputs(task),
            dropout=self.dropout,
            ensemble_size=self.ensemble_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            steps_per_execution=_steps_per_execution(n_rows, self.batch_size_),
            seed=seed,
            name=NETWORK,
        )

    def _keras_fit(self, network, rows, callbacks, seed: int, **kwargs):
        """``network.fit`` on ``rows`` (:class:`ArrayRows` or a dataset's) with Keras' seeds set for the run,
        and NumPy's and Python's global states restored."""
        stopper = _StopOnNonFinite()
        numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
        try:
            keras.utils.set_random_seed(seed)  # the shuffles of model.fit come from the backend's global seed
            with warnings.catch_warnings(record=True) as caught:  # only what the caller's filters let through
                warnings.simplefilter("always", ArchguideWarning)  # ours are decided on below
                if self.verbose == 1:
                    callbacks = [*callbacks, _EpochProgress(kwargs["epochs"], "training", rows.n)]
                data = rows.fit_arguments(self.batch_size_, seed)
                data.update(_validation_arguments(kwargs.pop("validation_data", None), self.batch_size_))
                try:
                    fitted = network.fit(
                        **data, verbose=2 if self.verbose == 2 else 0, callbacks=[*callbacks, stopper], **kwargs
                    )
                except Exception:
                    if rows.failure is not None:  # the dataset's own error, not the pipeline's wrapping of it
                        raise rows.failure from None
                    raise
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002
            random.setstate(python_state)
        if stopper.failed_at is None:  # after a divergence, warnings about NaN scores would only repeat it
            for caught_warning in caught:
                warnings.warn(caught_warning.message, caught_warning.category, stacklevel=4)
        else:
            epoch, batch = stopper.failed_at
            raise TrainingError(
                f"Training diverged: the loss became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}. "
                f"Try a smaller learning_rate (now {self.learning_rate}), a smaller l1 (now {self.l1}), or check X "
                "for columns of extreme magnitude."
            )
        return {k: [float(v) for v in values] for k, values in fitted.history.items()}

    def _train(self, plan, scores, task, rows, validation, *, model_seed: int, rescoring_seed: int):
        """Train the planned network; with ``replan``, re-plan from its importance at most ``max_replans`` times.

        Returns ``(network, history, the ImportanceRescoring of each segment, plans, kept)``: ``history``
        runs over every epoch of every segment, with ``history["plan"]`` the index in ``plans`` of the plan
        trained at each epoch; ``plans`` holds :func:`~archguide.model.replanning.plan_record` entries; the
        network is the one of ``plans[kept]``, the segment with the lowest held-out data loss (a re-plan
        that does no better than the network it replaced is discarded).
        """
        plans = [plan_record(0, plan, scores, [], "scores")]
        history: dict[str, list[float]] = {}
        rescorings, old, kept = [], None, None  # kept: (best held-out data loss, network, its plan's index)
        while True:
            network = self._network(plan, task, model_seed, rows.n)
            if old is not None:
                warm_start(network, old, plan, plans[-2]["plan"])
            done = len(history.get(DATA_LOSS_METRIC, []))
            callbacks, rescoring, trigger = self._segment_callbacks(
                validation, plan, scores, len(plans), done, rescoring_seed
            )
            segment = self._keras_fit(
                network, rows, callbacks, model_seed + done, validation_data=validation,
                epochs=done + self.epochs, initial_epoch=done,
            )  # fmt: skip
            n_run = _extend(history, segment, done, len(plans) - 1 if self.replan else None)
            if rescoring is not None:
                rescorings.append(rescoring)
            # A re-planned network is kept only if it beats every network before it on the held-out rows.
            reached = min(segment["val_" + DATA_LOSS_METRIC])
            if kept is None or reached < kept[0]:
                kept = (reached, network, len(plans) - 1)
            step = (
                None
                if len(plans) > self.max_replans
                else self._next_plan(trigger, network, plan, scores, *rows.sample(), task, model_seed)
            )
            if step is None:
                break
            plan, scores, moved, reason = step
            old = network
            plans.append(plan_record(done + n_run, plan, scores, moved, reason))
            self._say(f"re-plan at epoch {done + n_run} ({reason}): {', '.join(moved[:8])} moved")
        _, network, index = kept
        return network, history, rescorings, plans, index

    def _segment_callbacks(self, validation, plan, scores, n_plans: int, first_epoch: int, seed: int):
        """``(callbacks, rescoring, trigger)`` of one plan's training: re-scoring, the learning-rate schedule and
        early stopping (:func:`~archguide.model.callbacks.training_callbacks`), and with ``replan=True`` a
        :class:`~archguide.model.replanning.ReplanTrigger` (None otherwise)."""
        callbacks, rescoring = training_callbacks(
            validation,
            method=self.rescoring,
            every_n_epochs=self.rescoring_period,
            l1_power=self.l1_power,
            random_state=seed,
            lr_patience=self.lr_patience,
            patience=self.patience,
            min_improvement=self.min_improvement,
            lr_schedule=self.lr_schedule,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            first_epoch=first_epoch,
        )
        trigger = None
        if self.replan is True and n_plans <= self.max_replans:
            trigger = ReplanTrigger(rescoring, plan, scores)
            callbacks.insert(1, trigger)  # after the re-scoring it reads, before early stopping
        return callbacks, rescoring, trigger

    def _next_plan(self, trigger, network, plan, scores, X_tr, y_tr, task, seed):
        """``(plan, scores, moved, reason)`` to train next, or None when the fit ends here."""
        if trigger is not None and trigger.new_plan_ is not None:
            new_plan, new_scores, moved = trigger.new_plan_, trigger.new_scores_, trigger.moved_
            reason = "network importance"
        elif self.replan:  # "residuals", or True when the network's importance moved nothing
            reason = "residuals"
            new_plan, new_scores, moved = self._residual_replan(network, plan, scores, X_tr, y_tr, task, seed)
        else:
            return None
        return (new_plan, new_scores, moved, reason) if moved else None

    def _residual_replan(self, network, plan, scores, X_tr, y_tr, task, seed):
        """``(plan, scores, moved)`` after the residual check (:func:`~archguide.model.replanning.missing_features`);
        ``moved`` is empty when no weak feature's signal is left in the residuals."""
        missing, importance = missing_features(network, X_tr, y_tr, scores, plan.weak, task, random_state=seed)
        if not missing:
            return plan, scores, []
        new_scores = with_freed(scores, importance, plan.weak)
        new_plan = replan_from(plan, new_scores)
        return new_plan, new_scores, moved_features(plan, new_plan) or missing

    def _refit(self, plan, task, rows, strengths, rates, *, model_seed: int):
        """A fresh network trained on ``rows`` (every row) for the best epoch count, with the final strengths
        held fixed.

        It replays the first run's learning rate, epoch by epoch (``rates``).
        """
        network = self._network(plan, task, model_seed, rows.n)
        network.get_layer("gate").set_strengths(strengths)
        replay = keras.callbacks.LearningRateScheduler(lambda epoch, _: float(rates[epoch]))
        history = self._keras_fit(network, rows, [replay], model_seed, epochs=len(rates))
        return network, history


def _extend(history: dict[str, list[float]], segment: dict[str, list[float]], done: int, plan_index) -> int:
    """Append one segment's epochs to ``history`` (earlier epochs a key lacks are NaN); with ``plan_index``,
    ``history["plan"]`` notes the plan of each epoch. Returns the segment's epoch count."""
    n_run = len(segment[DATA_LOSS_METRIC])
    for key, values in segment.items():
        history.setdefault(key, [float("nan")] * done).extend(values)
    if plan_index is not None:
        history.setdefault("plan", []).extend([float(plan_index)] * n_run)
    return n_run
