"""scikit-learn estimators that chain the whole pipeline, and their one-file artifact.

``fit`` validates the data, fits the in-model preprocessing
(:mod:`archguide.preprocessing`), scores the features
(:func:`~archguide.scoring.score_features`), plans
(:func:`~archguide.planning.plan_architecture`), builds
(:func:`~archguide.builder.build_model`) and trains with
:class:`~archguide.callbacks.ImportanceRescoring` and early stopping on the
penalty-free validation loss. The fitted ``model_`` takes raw columns;
``save`` writes it, with the plan, the scores and the histories, to one
``.keras`` file, and :func:`load` gives the estimator back.
"""

from __future__ import annotations

import json
import math
import numbers
import random
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import type_of_target

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number, check_seed, check_units
from archguide._files import atomic_write
from archguide.builder import DATA_LOSS_METRIC, build_model
from archguide.callbacks import LR_SCHEDULES, training_callbacks
from archguide.exceptions import ArchguideWarning, ConfigError, DataError, NotFittedError, TrainingError
from archguide.grouping import named_groups
from archguide.network import METHODS, WEIGHT_METHODS, network_importance
from archguide.planning import GROUPINGS, WEAK_MODES, ArchitecturePlan, plan_architecture
from archguide.preprocessing import SCALINGS, ColumnEncoding, check_pooling, dict_keys_not_names, frame_of
from archguide.replanning import (
    ReplanTrigger,
    missing_features,
    moved_features,
    plan_record,
    replan_from,
    restore_record,
    warm_start,
    with_freed,
)
from archguide.schema import as_table, check_target, column_mismatch
from archguide.scoring import MIN_ROWS, FeatureScores, named_correlation_groups, score_features

keras = import_keras()

__all__ = ["ImportanceGuidedClassifier", "ImportanceGuidedRegressor", "load"]

#: Version of the artifact's metadata layout.
ARTIFACT_FORMAT = 1
#: Training importance over held-out importance above which a column is flagged (``sensitivity_``);
#: the re-scoring callback's ``overfit_ratio`` default.
SENSITIVITY_RATIO = 3.0
_INFO_LAYER = "archguide_info"
_NETWORK = "archguide_network"
#: What ``replan`` accepts: the residual check, re-planning from the network's importance, or neither.
REPLANS = ("residuals", True, False)
_PREDICT_BATCH = 4096
#: Most training steps per call of Keras' compiled step (``steps_per_execution``); see ``_steps_per_execution``.
_MAX_STEPS_PER_EXECUTION = 16
_FEED = "dataset"  # how _fit_data feeds Keras: "dataset" (one iterator per fit) or "arrays" (Keras' own, per epoch)


#: Parameters added after artifacts were first saved, with the values an artifact without them was fitted with.
_BEFORE_SAVED = {
    "scaling": "standard",
    "embedding": 0,
    "ensemble_size": 1,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "min_improvement": 0.0,
}


def _embeddable(encoding: ColumnEncoding) -> list[str]:
    """The features an embedding may encode: numeric columns' values (not flags, levels or booleans)."""
    return [c.features[0] for c in encoding.columns if c.kind == "numeric"]


def _batch_size(batch_size: int | str, n_rows: int) -> int:
    """Rows per step: ``batch_size``, or with ``"auto"`` the largest power of two up to ``n_rows / 16``,
    between 16 and 64 (at least 16 steps an epoch from 256 training rows up; 64 from 1,024)."""
    if batch_size != "auto":
        return int(batch_size)
    return int(min(64, max(16, 2 ** math.floor(math.log2(max(n_rows, 1) / 16)))))


def _steps_per_execution(n_rows: int, batch_size: int) -> int:
    """The largest divisor of the steps per epoch up to ``_MAX_STEPS_PER_EXECUTION``.

    Keras runs ``steps_per_execution`` steps per call of its compiled step function, saving a trip
    through Python per step (a 5-epoch fit on 10^5 rows: 14.9 s against 24.1, README "Fit time"). The training
    pipeline repeats (``_fit_data``), so a call that ran past the epoch's last step would eat into the
    next epoch's rows: a divisor keeps every epoch one pass over the rows.
    """
    steps = math.ceil(n_rows / batch_size)
    return max(d for d in range(1, min(steps, _MAX_STEPS_PER_EXECUTION) + 1) if steps % d == 0)


def _categorical(encoding: ColumnEncoding) -> dict[str, list[str]]:
    """Categorical column -> its level features (the pooled one included, the missing flag not)."""
    return {
        c.name: list(c.features[: len(c.features) - c.missing_indicator])
        for c in encoding.columns
        if c.kind == "categorical"
    }


def _fit_data(X, y, batch_size: int, seed: int, validation_data=None) -> dict[str, Any]:
    """The data arguments of ``Model.fit``, as ``tf.data`` pipelines built once per fit.

    Given arrays, Keras builds a new ``tf.data`` pipeline for every epoch and for every validation pass
    (about 50 ms of CPU each on a small table, more than the pass itself). Here the training rows are one
    repeated pipeline, iterated once per fit with ``steps_per_epoch``: each epoch still sees every row
    once, in a new order (a full shuffle, seeded by ``seed``). The held-out rows are one pipeline in
    batches of up to ``_PREDICT_BATCH`` rows (the mean loss is the same, in fewer steps).
    """
    if _FEED != "dataset" or keras.backend.backend() != "tensorflow":
        return {"x": X, "y": y, "batch_size": batch_size, "shuffle": True, "validation_data": validation_data}
    import tensorflow as tf

    rows = tf.data.Dataset.from_tensor_slices((X, y))
    rows = rows.shuffle(len(X), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    data = {
        "x": rows.repeat().prefetch(tf.data.AUTOTUNE),
        "steps_per_epoch": math.ceil(len(X) / batch_size),
        "shuffle": False,  # shuffled above, anew each epoch
    }
    if validation_data is not None:
        X_val, y_val = validation_data
        val_batch = min(_PREDICT_BATCH, max(batch_size, len(X_val)))
        data["validation_data"] = tf.data.Dataset.from_tensor_slices((X_val, y_val)).batch(val_batch).cache()
    return data


@keras.saving.register_keras_serializable(package="archguide")
class ArtifactInfo(keras.layers.Layer):
    """Identity layer that carries an estimator's metadata (plain JSON) inside a saved model.

    Args:
        info: A JSON-safe dict: the estimator's class and parameters, the
            column encoding, the scores, the plan and the histories.
    """

    def __init__(self, info: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.info = dict(info or {})

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "info": self.info}


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
    """One progress bar over epochs (``verbose=1``), with the validation data loss and the best so far."""

    def __init__(self, epochs: int, description: str, monitor: str = "val_" + DATA_LOSS_METRIC):
        super().__init__()
        self.epochs, self.description, self.monitor = epochs, description, monitor

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.epochs, desc=self.description, unit="epoch", mininterval=0.5, leave=True)
        self._best = float("inf")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        val = logs.get(self.monitor)
        postfix = {}
        if val is not None:
            self._best = min(self._best, float(val))
            postfix = {self.monitor: f"{float(val):.4g}", "best": f"{self._best:.4g}"}
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def on_train_end(self, logs=None):
        self._bar.total = self._bar.n  # stopped early: the bar ends full
        self._bar.refresh()
        self._bar.close()


def _json_safe(value):
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return None  # a RandomState or another object: not kept in the file


class _ImportanceGuidedEstimator(BaseEstimator):
    """The shared machinery of the two estimators (not public)."""

    _task_family = "regression"

    def __init__(
        self,
        *,
        total_units: int = 128,
        grouping: str = "tiers",
        n_tiers: int = 3,
        depth: int = 2,
        head_units=None,
        l1: float = 1e-4,
        l1_power: float = 1.0,
        weak: str = "penalize",
        dropout: float = 0.0,
        scaling: str = "robust",
        min_frequency: int | float | None = None,
        max_categories: int | None = None,
        embedding: int = 0,
        category_embedding: int = 0,
        ensemble_size: int = 1,
        groups="auto",
        n_repeats: int = 5,
        rescoring: str | None = "permutation",
        rescoring_period: int = 1,
        epochs: int = 300,
        batch_size: int | str = "auto",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        validation_fraction: float = 0.2,
        patience: int = 20,
        min_improvement: float = 0.0,
        lr_patience: int | None = 10,
        lr_schedule: str = "plateau",
        refit: bool = False,
        replan: bool | str = "residuals",
        max_replans: int = 2,
        random_state=None,
        verbose: int = 0,
    ):
        self.total_units = total_units
        self.grouping = grouping
        self.n_tiers = n_tiers
        self.depth = depth
        self.head_units = head_units
        self.l1 = l1
        self.l1_power = l1_power
        self.weak = weak
        self.dropout = dropout
        self.scaling = scaling
        self.min_frequency = min_frequency
        self.max_categories = max_categories
        self.embedding = embedding
        self.category_embedding = category_embedding
        self.ensemble_size = ensemble_size
        self.groups = groups
        self.n_repeats = n_repeats
        self.rescoring = rescoring
        self.rescoring_period = rescoring_period
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.min_improvement = min_improvement
        self.lr_patience = lr_patience
        self.lr_schedule = lr_schedule
        self.refit = refit
        self.replan = replan
        self.max_replans = max_replans
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )

    @property
    def network_(self):
        """The trained network inside ``model_``: encoded features in, predictions out."""
        self._check_fitted()
        return self.model_.get_layer(_NETWORK)

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        for name in ("total_units", "n_tiers", "depth", "n_repeats", "rescoring_period", "epochs"):
            check_int(name, getattr(self, name))
        check_int("batch_size", self.batch_size, words=("auto",))
        check_int("patience", self.patience, low=0)
        check_number("min_improvement", self.min_improvement, high=1.0, open_high=True)
        check_int("lr_patience", self.lr_patience, allow_none=True)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("grouping", self.grouping, GROUPINGS)
        check_choice("weak", self.weak, WEAK_MODES)
        check_choice("scaling", self.scaling, SCALINGS)
        check_pooling(self.min_frequency, self.max_categories)
        check_int("embedding", self.embedding, low=0)
        check_int("category_embedding", self.category_embedding, low=0)
        check_int("ensemble_size", self.ensemble_size)
        check_choice("rescoring", self.rescoring, (*METHODS, None))
        if self.ensemble_size > 1 and self.rescoring in WEIGHT_METHODS:
            raise ConfigError(
                f"rescoring={self.rescoring!r} reads the weights of one network; it is undefined for an ensemble "
                f"(ensemble_size={self.ensemble_size}). Use 'gradient', 'permutation' or 'ablation'."
            )
        check_choice("verbose", self.verbose, (0, 1, 2))
        check_choice("refit", self.refit, (True, False))
        check_choice("replan", self.replan, REPLANS)
        check_int("max_replans", self.max_replans, low=0)
        if self.replan is True and self.rescoring is None:
            raise ConfigError(
                "replan=True re-plans from the network's re-scored importance and needs a rescoring method; "
                "received rescoring=None."
            )
        check_number("l1", self.l1)
        check_number("l1_power", self.l1_power)
        check_number("learning_rate", self.learning_rate, open_interval=True)
        check_number("weight_decay", self.weight_decay)
        check_number("label_smoothing", self.label_smoothing, high=1.0, open_high=True)
        if self.label_smoothing > 0 and self._task_family == "regression":
            raise ConfigError(
                f"label_smoothing applies to classes; a regressor takes 0. Received: {self.label_smoothing}"
            )
        check_number("validation_fraction", self.validation_fraction, high=1.0, open_interval=True)
        check_number("dropout", self.dropout, high=1.0, open_high=True)
        if self.head_units is not None:
            check_units("head_units", self.head_units)
        if self.groups is not None and self.groups != "auto" and not isinstance(self.groups, Mapping):
            raise ConfigError(
                "Received an invalid value for groups, expected 'auto', None or a dict {group: [columns]}. "
                f"Received: groups={self.groups!r}"
            )
        check_seed(self.random_state)

    def _target(self, y, n_rows: int):
        """(task, y for the scorer, y for the network); sets the target's fitted attributes."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fit

    def fit(self, X, y):
        """Score, plan, build and train on ``X`` and ``y``.

        Args:
            X: A DataFrame (its column names are the feature names; numeric,
                boolean and categorical columns, missing values allowed) or a
                2-D array. Read only, never modified.
            y: One value per row: a 1-D array, a list, a pandas Series (any
                index), or a column vector.

        Returns:
            self.

        Raises:
            DataError: ``X`` or ``y`` cannot be used (the message names the
                argument or columns), or fewer than 10 rows.
            ConfigError: a parameter is out of range.
            TrainingError: the loss became NaN or infinite during training.
        """
        self._check_params()
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)  # a failed refit must not leave a half-updated estimator
        table, task, y_score, y_net, seeds = self._validated(X, y)
        encoding, X_enc, scores = self._encode_and_score(table, task, y_score, seeds[1])
        split_seed, _, model_seed, rescoring_seed = seeds
        plan = plan_architecture(
            scores,
            total_units=self.total_units,
            grouping=self.grouping,
            n_tiers=self.n_tiers,
            depth=self.depth,
            l1=self.l1,
            l1_power=self.l1_power,
            weak=self.weak,
            head_units=self.head_units,
            embedding=self.embedding,
            embeddable=_embeddable(encoding),
            category_embedding=self.category_embedding,
            categorical=_categorical(encoding),
        )
        self._say(f"plan: {len(plan.branches)} branches, {plan.n_params(self._n_outputs(task))} parameters; training")

        train, val = self._split(y_score, task, table.n_rows, split_seed)
        self.batch_size_ = _batch_size(self.batch_size, len(train))
        network, history, rescorings, plans, kept = self._train(
            plan, scores, task, X_enc, y_net, train, val, model_seed=model_seed, rescoring_seed=rescoring_seed
        )
        if len(plans) == 1:
            history.pop("plan", None)  # one plan trained every epoch
        plans = [{**record, "kept": i == kept} for i, record in enumerate(plans)]
        plan = plans[kept]["plan"]
        start = plans[kept]["epoch"]  # the kept network's weights are the best of its own segment
        end = plans[kept + 1]["epoch"] if kept + 1 < len(plans) else len(history[DATA_LOSS_METRIC])
        best_epoch = start + int(np.argmin(history["val_" + DATA_LOSS_METRIC][start:end])) + 1
        sensitivity = self._sensitivity(network, scores, X_enc, y_net, train, val, rescoring_seed)
        refit_history = None
        if self.refit:
            strengths = network.get_layer("gate").get_strengths()
            rates = history.get("learning_rate", [self.learning_rate] * best_epoch)[:best_epoch]
            network, refit_history = self._refit(plan, task, X_enc, y_net, strengths, rates, model_seed=model_seed)

        self.n_epochs_ = len(history[DATA_LOSS_METRIC])
        self.best_epoch_ = best_epoch
        self.validation_indices_ = val
        self.refit_history_ = refit_history

        self.encoding_ = encoding
        self.scores_ = scores
        self.plan_ = plan
        self.plans_ = plans
        self.history_ = history
        self.rescoring_history_ = _stacked([r.history_ for r in rescorings])
        self.strengths_history_ = _stacked([r.strengths_history_ for r in rescorings])
        self.sensitivity_ = sensitivity
        self.n_features_in_ = table.n_features
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.model_ = self._assemble(encoding, network, task)
        return self

    def tune(
        self,
        X,
        y,
        *,
        max_trials: int = 20,
        tuner: str = "random",
        cv=None,
        search_space: Mapping[str, Any] | None = None,
        directory: str | Path | None = None,
        project_name: str = "archguide",
        overwrite: bool = False,
        worker_timeout: float = 3600.0,
        timeout: float | None = None,
    ):
        """Search importance-guided architectures with KerasTuner; return an estimator fitted with the best.

        :class:`~archguide.tuning.FoldedHyperModel` searches the plan's and the
        training's options: ``max_trials`` trials, each trained on ``fit``'s training
        rows and scored by its best penalty-free validation loss on ``fit``'s validation
        rows (or, with ``cv``, by the mean over folds of all rows). The ranking is honest:
        the column encoding and the scores (which choose the plan, the weak flags, the
        penalties and, with ``weak="drop"``, which features exist) are fitted on each
        split's training rows only, never on the rows a trial is validated on. Every trial
        uses this estimator's ``epochs``, ``batch_size``, ``patience``, ``min_improvement``, ``lr_patience``
        and ``lr_schedule``.
        The best trial's values are set on a clone of this estimator, which is fitted on
        all of ``X`` (scored on every row, as ``fit`` does) and returned; this estimator is
        left as it was.

        Args:
            X, y: As in ``fit``.
            max_trials: Trials to run.
            tuner: ``"random"`` (``keras_tuner.RandomSearch``), ``"bayesian"``
                (``keras_tuner.BayesianOptimization``) or ``"hyperband"`` (``max_epochs`` =
                this estimator's ``epochs``; Hyperband sets its own number of trials from it
                and ignores ``max_trials``). KerasTuner's Bayesian oracle draws at random
                until 3 trials per searched option have completed (36 here), so below that
                budget ``"bayesian"`` tries exactly what ``"random"`` tries with the same
                ``random_state``; measured, the default is the search that actually runs.
            cv: Folds per trial, or a scikit-learn splitter (see ``ImportanceHyperModel``).
            search_space: Bounds that replace ``ImportanceHyperModel``'s defaults, for
                example ``{"depth": (1, 2), "weak": ["drop"]}``. The allocation exponent
                ``alpha`` is not an estimator parameter and stays at 1.
            directory: Where KerasTuner keeps its trials (to resume a search, or to inspect
                it); None: a temporary directory, removed at the end.
            project_name: The search's name inside ``directory``.
            overwrite: Start over in an existing ``directory``/``project_name`` instead of
                resuming it. In a distributed search only the chief does; workers never
                delete the project directory.
            worker_timeout, timeout: Bounds of the chief's waits in a distributed search
                (see :func:`~archguide.tuning.serve_chief`), in seconds.

        Distributed search: KerasTuner's own chief/worker mode. Run the same call in
        every process, with the same data and an integer ``random_state``, and
        ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT`` and ``KERASTUNER_TUNER_ID``
        (``chief`` in one process, ``tuner0``, ``tuner1``, ... in the others) set. The
        chief serves the search to the workers (training nothing), waits for them
        (bounded: ``worker_timeout``, ``timeout``), then refits the best and returns
        it; a worker runs the trials the chief hands out and returns None.

        Returns:
            A new fitted estimator with the best trial's parameters; its
            ``tuning_results_`` is a DataFrame of the trials (one row each: the values
            tried, ``score`` and ``status``), best first. None on a distributed
            search's worker.

        Raises:
            DataError, ConfigError: as ``fit``; a search-space bound that is malformed,
                inverted or empty; a ``search_space`` key that is not searched.
        """
        import tempfile
        from contextlib import nullcontext

        import keras_tuner

        from archguide.tuning import DEFAULTS, FoldedHyperModel, _check_cv, distributed_role, fold_of, serve_chief

        self._check_params()
        role = distributed_role()
        check_int("max_trials", max_trials)
        check_choice("tuner", tuner, tuple(_TUNERS))
        space = dict(search_space or {})
        searchable = set(DEFAULTS) - {"alpha"}  # alpha is not an estimator parameter
        unknown = sorted(set(space) - searchable)
        if unknown:
            raise ConfigError(f"Received unknown search_space keys {unknown}; searchable: {sorted(searchable)}.")
        work = clone(self)
        table, task, y_score, y_net, seeds = work._validated(X, y)
        split_seed, score_seed, model_seed, rescoring_seed = seeds
        if cv is None:
            splits = [self._split(y_score, task, table.n_rows, split_seed)]
        else:
            splitter = _check_cv(cv, "regression" if task == "regression" else "binary", model_seed)
            labels = None if task == "regression" else y_score
            splits = [(np.sort(a), np.sort(b)) for a, b in splitter.split(np.zeros((table.n_rows, 1)), labels)]
        folds = []
        for train, val in splits:  # encoded and scored on the training rows only: held-out rows stay unseen
            encoding, X_enc, scores = work._encode_and_score(table, task, y_score, score_seed, rows=train)
            folds.append(fold_of(scores, X_enc, y_net, train, val))
        hypermodel = FoldedHyperModel(
            folds,
            task=task,
            n_outputs=work._n_outputs(task),
            alpha=(1.0, 1.0),
            head_units=self.head_units,
            embedding=self.embedding,
            embeddable=_embeddable(encoding),
            category_embedding=self.category_embedding,
            categorical=_categorical(encoding),
            ensemble_size=self.ensemble_size,
            weight_decay=self.weight_decay,
            label_smoothing=self.label_smoothing,
            patience=self.patience,
            min_improvement=self.min_improvement,
            lr_patience=self.lr_patience,
            lr_schedule=self.lr_schedule,
            seed=model_seed,
            **space,
        )
        # a scratch directory only where none is given (a worker that dies cannot leave it behind)
        root = tempfile.TemporaryDirectory(prefix="archguide-tune-") if directory is None else nullcontext(directory)
        with root as root_directory:
            kwargs = {"max_epochs": self.epochs} if tuner == "hyperband" else {"max_trials": max_trials}
            search = getattr(keras_tuner, _TUNERS[tuner])(
                hypermodel,
                objective=hypermodel.objective,
                directory=str(root_directory),
                project_name=project_name,
                overwrite=overwrite and role in (None, "chief"),  # a worker must not delete the chief's files
                seed=rescoring_seed % (2**31 - 1),
                **kwargs,
            )
            if role == "chief":
                serve_chief(search, worker_timeout=worker_timeout, timeout=timeout)
            else:
                ran = []
                search.on_trial_end = _noting(search.on_trial_end, ran)
                with warnings.catch_warnings():
                    # BayesianOptimization's Gaussian process fitted on a few noisy scores: expected, not actionable
                    warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn.gaussian_process")
                    batch_size = _batch_size(self.batch_size, min(len(train) for train, _ in splits))
                    search.search(epochs=self.epochs, batch_size=batch_size, verbose=self.verbose)
                if role is not None:
                    self._say(f"worker {role} ran trials {', '.join(ran) or 'none'}")
                    return None
            completed = [
                t
                for t in search.oracle.trials.values()
                if t.status == "COMPLETED" and t.score is not None and math.isfinite(t.score)
            ]
            if not completed:
                raise TrainingError(
                    f"The search completed no trial ({len(search.oracle.trials)} started); see KerasTuner's log "
                    "above for the failures."
                )
            best = min(completed, key=lambda t: t.score)  # the objective (validation data loss) is minimised
            params = _estimator_values(hypermodel, best.hyperparameters)
            results = _tuning_results(search, hypermodel)
        if params.get("rescoring") is None and params.get("replan") is True:
            params["replan"] = False  # the best trial trained without re-scoring: no network importance to re-plan from
        estimator = clone(self).set_params(**params)
        estimator.fit(X, y)
        estimator.tuning_results_ = results
        return estimator

    def _validated(self, X, y):
        """Validate ``X`` and ``y``: what ``fit`` and ``tune`` share (sets the target's attributes).

        Returns:
            ``(table, task, y_score, y_net, seeds)``; ``seeds`` are the split, scoring, model and
            re-scoring seeds drawn from ``random_state``.
        """
        table = as_table(X)
        if table.n_rows < MIN_ROWS:
            raise DataError(
                f"{type(self).__name__} needs at least {MIN_ROWS} rows (to score, train and validate). "
                f"Received {table.n_rows} sample{'s' if table.n_rows != 1 else ''}."
            )
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        shape = getattr(y, "shape", ())
        if len(shape) == 2 and shape[1] == 1 and not isinstance(y, pd.DataFrame):
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change the shape of y to "
                "(n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
        task, y_score, y_net = self._target(y, table.n_rows)
        rng = check_seed(self.random_state)
        seeds = tuple(int(s) for s in rng.randint(2**31 - 1, size=4))  # split, scoring, model, re-scoring
        return table, task, y_score, y_net, seeds

    def _encode_and_score(self, table, task: str, y_score, seed: int, rows=None):
        """Fit the encoding and score on ``rows`` (all when None); every row is encoded.

        Returns:
            ``(encoding, X_enc, scores)``: ``X_enc`` holds every row of ``table``, encoded as the
            encoding fitted on ``rows`` says; the scores (and the correlation groups) saw ``rows`` only.
        """
        encoding = ColumnEncoding.fit(
            table, rows, scaling=self.scaling, min_frequency=self.min_frequency, max_categories=self.max_categories
        )
        X_enc = encoding.encode(encoding.raw_inputs(table))
        self._say(f"{table.n_features} columns -> {X_enc.shape[1]} features; scoring")
        X_fit, y_fit = (X_enc, y_score) if rows is None else (X_enc[rows], y_score[rows])
        kept, test_size = self._scoring_rows(y_fit, task)
        # the user's labels (in classes_ order, the scorer's too), so that its messages name them
        y_labels = y_fit if task == "regression" else self.classes_[y_fit]
        scores = score_features(
            frame_of(X_fit if kept is None else X_fit[kept], encoding.features),
            y_labels if kept is None else y_labels[kept],
            task=task if task == "regression" else "classification",
            groups=self._feature_groups(encoding, X_fit),
            n_repeats=self.n_repeats,
            test_size=test_size,
            random_state=seed,
        )
        return encoding, X_enc, scores

    def _say(self, message: str) -> None:
        if self.verbose:
            print(f"{type(self).__name__}: {message}")

    @staticmethod
    def _n_outputs(task: str) -> int:
        return 1

    def _feature_groups(self, encoding: ColumnEncoding, X_enc: np.ndarray) -> dict[str, list[str]]:
        """Feature groups in the encoded features' names: one per source column, merged as ``groups`` says.

        Groups are named as :func:`~archguide.scoring.score_features` names
        them: a lone column by its name, columns scored together by ``"a+b"``
        (``"a+b#2"`` if a column is called ``"a+b"``), a hand-made group by its key.
        """
        names, by_column = encoding.names, encoding.groups
        if self.groups is None:
            named = [(n, [n]) for n in names]
        elif self.groups == "auto":
            # Numeric and boolean columns that correlate strongly are scored together, as score_features does.
            first = [encoding.features.index(c.features[0]) for c in encoding.columns]
            eligible = [j for j, c in enumerate(encoding.columns) if c.kind != "categorical"]
            named = list(named_correlation_groups(X_enc[:, first], names, eligible, 0.8).items())
        else:
            named = list(named_groups(self.groups, names, noun="column").items())
        return {group: [f for c in columns for f in by_column[c]] for group, columns in named}

    @staticmethod
    def _scoring_rows(y_score, task: str):
        """Rows to score on (None: all) and the scorer's held-out fraction.

        A class with a single row cannot be both fitted and held out by the
        scorer: its rows are left out of scoring (with a warning), and still
        trained on. With few rows per class, more are held out (up to half)
        so that every class is in both parts.
        """
        if task == "regression":
            return None, 0.2
        labels, counts = np.unique(y_score, return_counts=True)
        rows = None
        if counts.min() < 2:
            rare = labels[counts < 2]
            keep = np.isin(y_score, labels[counts >= 2])
            if len(labels) - len(rare) < 2:
                raise DataError(
                    f"y has {len(labels) - len(rare)} class(es) with two or more rows; scoring needs two such "
                    "classes (one row to fit the proxy and one held out per class)."
                )
            warnings.warn(
                f"{len(rare)} classes of y have a single row: they are left out of feature scoring (the network "
                "still trains on them).",
                ArchguideWarning,
                stacklevel=3,
            )
            rows = np.flatnonzero(keep)
            labels = labels[counts >= 2]
        n = len(y_score) if rows is None else len(rows)
        return rows, float(min(0.5, max(0.2, (len(labels) + 0.5) / n)))

    def _split(self, y_score, task: str, n_rows: int, seed: int):
        """Training and validation rows (stratified for classification when every class has two rows)."""
        n_val = max(1, int(round(self.validation_fraction * n_rows)))
        stratify = None
        if task != "regression":
            _, counts = np.unique(y_score, return_counts=True)
            if counts.min() >= 2 and len(counts) <= n_val <= n_rows - len(counts):
                stratify = y_score
        train, val = train_test_split(np.arange(n_rows), test_size=n_val, stratify=stratify, random_state=seed)
        return np.sort(train), np.sort(val)

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
            name=_NETWORK,
        )

    def _keras_fit(self, network, X, y, callbacks, seed: int, **kwargs):
        """``network.fit`` with Keras' seeds set for the run, and NumPy's and Python's global states restored."""
        stopper = _StopOnNonFinite()
        numpy_state, python_state = np.random.get_state(), random.getstate()  # noqa: NPY002
        try:
            keras.utils.set_random_seed(seed)  # the shuffles of model.fit come from the backend's global seed
            with warnings.catch_warnings(record=True) as caught:  # only what the caller's filters let through
                warnings.simplefilter("always", ArchguideWarning)  # ours are decided on below
                if self.verbose == 1:
                    callbacks = [*callbacks, _EpochProgress(kwargs["epochs"], "training")]
                data = _fit_data(X, y, self.batch_size_, seed, kwargs.pop("validation_data", None))
                fitted = network.fit(
                    **data, verbose=2 if self.verbose == 2 else 0, callbacks=[*callbacks, stopper], **kwargs
                )
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

    def _train(self, plan, scores, task, X_enc, y_net, train, val, *, model_seed: int, rescoring_seed: int):
        """Train the planned network; with ``replan``, re-plan from its importance at most ``max_replans`` times.

        Returns ``(network, history, the ImportanceRescoring of each segment, plans, kept)``: ``history``
        runs over every epoch of every segment, with ``history["plan"]`` the index in ``plans`` of the plan
        trained at each epoch; ``plans`` holds :func:`~archguide.replanning.plan_record` entries; the
        network is the one of ``plans[kept]``, the segment with the lowest held-out data loss (a re-plan
        that does no better than the network it replaced is discarded).
        """
        X_tr, y_tr, X_val, y_val = X_enc[train], y_net[train], X_enc[val], y_net[val]
        plans = [plan_record(0, plan, scores, [], "scores")]
        history: dict[str, list[float]] = {}
        rescorings, old, kept = [], None, None  # kept: (best held-out data loss, network, its plan's index)
        while True:
            network = self._network(plan, task, model_seed, len(X_tr))
            if old is not None:
                warm_start(network, old, plan, plans[-2]["plan"])
            callbacks, rescoring = training_callbacks(
                (X_val, y_val),
                method=self.rescoring,
                every_n_epochs=self.rescoring_period,
                l1_power=self.l1_power,
                random_state=rescoring_seed,
                lr_patience=self.lr_patience,
                patience=self.patience,
                min_improvement=self.min_improvement,
                lr_schedule=self.lr_schedule,
                learning_rate=self.learning_rate,
                epochs=self.epochs,
                first_epoch=len(history.get(DATA_LOSS_METRIC, [])),
            )
            trigger = None
            if self.replan is True and len(plans) <= self.max_replans:
                trigger = ReplanTrigger(rescoring, plan, scores)
                callbacks.insert(1, trigger)  # after the re-scoring it reads, before early stopping
            done = len(history.get(DATA_LOSS_METRIC, []))
            segment = self._keras_fit(
                network, X_tr, y_tr, callbacks, model_seed + done, validation_data=(X_val, y_val),
                epochs=done + self.epochs, initial_epoch=done,
            )  # fmt: skip
            n_run = len(segment[DATA_LOSS_METRIC])
            for key, values in segment.items():
                history.setdefault(key, [float("nan")] * done).extend(values)
            if self.replan:
                history.setdefault("plan", []).extend([float(len(plans) - 1)] * n_run)
            if rescoring is not None:
                rescorings.append(rescoring)
            # A re-planned network is kept only if it beats every network before it on the held-out rows.
            reached = min(segment["val_" + DATA_LOSS_METRIC])
            if kept is None or reached < kept[0]:
                kept = (reached, network, len(plans) - 1)
            if len(plans) > self.max_replans:
                break
            if trigger is not None and trigger.new_plan_ is not None:
                new_plan, new_scores, moved = trigger.new_plan_, trigger.new_scores_, trigger.moved_
                reason = "network importance"
            elif self.replan:  # "residuals", or True when the network's importance moved nothing
                reason = "residuals"
                new_plan, new_scores, moved = self._residual_replan(network, plan, scores, X_tr, y_tr, task, model_seed)
            else:
                break
            if not moved:
                break
            plan, scores, old = new_plan, new_scores, network
            plans.append(plan_record(done + n_run, plan, scores, moved, reason))
            self._say(f"re-plan at epoch {done + n_run} ({reason}): {', '.join(moved[:8])} moved")
        _, network, index = kept
        return network, history, rescorings, plans, index

    def _residual_replan(self, network, plan, scores, X_tr, y_tr, task, seed):
        """``(plan, scores, moved)`` after the residual check (:func:`~archguide.replanning.missing_features`);
        ``moved`` is empty when no weak feature's signal is left in the residuals."""
        missing, importance = missing_features(network, X_tr, y_tr, scores, plan.weak, task, random_state=seed)
        if not missing:
            return plan, scores, []
        new_scores = with_freed(scores, importance, plan.weak)
        new_plan = replan_from(plan, new_scores)
        return new_plan, new_scores, moved_features(plan, new_plan) or missing

    def _sensitivity(self, network, scores, X_enc, y_net, train, val, seed: int) -> pd.DataFrame:
        """Permutation importance of each source column on training rows and on the held-out rows.

        A column the network leans on for its training rows but not for the held-out ones is
        *sensitive* without being *important*: the network fits noise through it (see
        :func:`sensitive_not_important`).
        """
        rng = np.random.RandomState(seed)
        groups = {g: list(f) for g, f in scores.groups.items()}
        kwargs = {"method": "permutation", "groups": groups, "n_repeats": 3, "max_rows": 2000}
        held_out = network_importance(network, X_enc[val], y_net[val], random_state=rng, **kwargs)
        training = network_importance(network, X_enc[train], y_net[train], random_state=rng, **kwargs)
        flagged = sensitive_not_important(held_out, training)
        return pd.DataFrame({"held_out": held_out, "training": training, "flagged": flagged})

    def _refit(self, plan, task, X_enc, y_net, strengths, rates, *, model_seed: int):
        """A fresh network trained on every row for the best epoch count, with the final strengths held fixed.

        It replays the first run's learning rate, epoch by epoch (``rates``).
        """
        network = self._network(plan, task, model_seed, len(X_enc))
        network.get_layer("gate").set_strengths(strengths)
        replay = keras.callbacks.LearningRateScheduler(lambda epoch, _: float(rates[epoch]))
        history = self._keras_fit(network, X_enc, y_net, [replay], model_seed, epochs=len(rates))
        return network, history

    def _output_layers(self, outputs, task: str):
        return outputs

    def _assemble(self, encoding: ColumnEncoding, network, task: str):
        """The artifact: raw columns (a dict) -> encoding -> network -> output, with the metadata inside."""
        inputs = encoding.inputs()
        outputs = self._output_layers(network(encoding.encode_layers(inputs)), task)
        outputs = ArtifactInfo(self._info(task), name=_INFO_LAYER)(outputs)
        with dict_keys_not_names():
            return keras.Model(inputs, outputs, name="archguide_" + type(self).__name__)

    def _info(self, task: str) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "estimator": type(self).__name__,
            "params": {k: _json_safe(v) for k, v in self.get_params().items()},
            "task": task,
            "encoding": self.encoding_.to_dict(),
            "scores": self.scores_.to_dict(),
            "plan": self.plan_.to_dict(),
            "plans": [{**r, "plan": r["plan"].to_dict()} for r in self.plans_],
            "history": self.history_,
            "rescoring_history": json.loads(self.rescoring_history_.to_json(orient="split", double_precision=15)),
            "strengths_history": json.loads(self.strengths_history_.to_json(orient="split", double_precision=15)),
            "sensitivity": json.loads(self.sensitivity_.to_json(orient="split", double_precision=15)),
            "feature_names_in": None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_),
            "n_epochs": self.n_epochs_,
            "best_epoch": self.best_epoch_,
            "batch_size": self.batch_size_,
            "refit_history": self.refit_history_,
            **self._target_info(),
        }

    def _target_info(self) -> dict[str, Any]:
        return {}

    def _restore(self, model, info: Mapping[str, Any]) -> None:
        self.encoding_ = ColumnEncoding.from_dict(info["encoding"])
        self.scores_ = FeatureScores.from_dict(info["scores"])
        self.plan_ = ArchitecturePlan.from_dict(info["plan"])
        self.plans_ = [restore_record(r) for r in info.get("plans", [])] or [
            {"epoch": 0, "reason": "scores", "moved": [], "importances": {}, "weak": [], "plan": self.plan_}
        ]
        self.history_ = {k: list(v) for k, v in info["history"].items()}
        self.rescoring_history_ = _frame(info["rescoring_history"]).apply(pd.to_numeric)
        self.strengths_history_ = _frame(info.get("strengths_history")).apply(pd.to_numeric)
        sensitivity = _frame(info.get("sensitivity")).reindex(columns=["held_out", "training", "flagged"])
        sensitivity.index = pd.Index(sensitivity.index, dtype=object)
        self.sensitivity_ = sensitivity.astype({"held_out": float, "training": float, "flagged": bool})
        self.n_features_in_ = len(self.encoding_.columns)
        if info.get("feature_names_in") is not None:
            self.feature_names_in_ = np.asarray(info["feature_names_in"], dtype=object)
        self.n_epochs_ = int(info["n_epochs"])
        self.best_epoch_ = int(info["best_epoch"])
        self.batch_size_ = int(info.get("batch_size", self.batch_size))  # saved before "auto": the parameter
        refit_history = info.get("refit_history")
        self.refit_history_ = None if refit_history is None else {k: list(v) for k, v in refit_history.items()}
        self._restore_target(info)
        self.model_ = model

    def _restore_target(self, info: Mapping[str, Any]) -> None:
        pass

    # ------------------------------------------------------------------ predict

    def _raw_inputs(self, X) -> dict[str, np.ndarray]:
        """Validate ``X`` against the fitted columns and return the model's raw inputs."""
        self._check_fitted()
        names = self.encoding_.names
        fitted_names = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame) and fitted_names is not None:
            columns = [str(c) for c in X.columns]
            problems = column_mismatch(names, columns)
            if problems:
                raise DataError(
                    f"X has columns that are not the ones {type(self).__name__} was fitted with: "
                    f"{problems}. Columns are matched by name, in any order."
                )
            X = X.loc[:, [X.columns[columns.index(n)] for n in names]]
        table = as_table(X, allow_missing_columns=True)
        if table.n_features != len(names):
            raise DataError(
                f"X has {table.n_features} features, but {type(self).__name__} is expecting {len(names)} features "
                "as input."
            )
        if not (isinstance(X, pd.DataFrame) and fitted_names is not None):
            table = _renamed(table, names)
        self.encoding_.check_kinds(table)
        return self.encoding_.raw_inputs(table)

    def _forward(self, X) -> np.ndarray:
        """The model's output for each row of ``X``, whatever the order of the rows.

        CPU kernels may round a row's sums differently by its position in a batch (a last float32
        digit); rows are predicted in an order fixed by their content and put back, so that a row's
        prediction does not depend on where the user's table has it.
        """
        raw = self._raw_inputs(X)
        order = np.argsort(pd.util.hash_pandas_object(pd.DataFrame(raw), index=False).to_numpy(), kind="stable")
        out = np.asarray(
            self.model_.predict({k: v[order] for k, v in raw.items()}, batch_size=_PREDICT_BATCH, verbose=0)
        )
        restored = np.empty_like(out)
        restored[order] = out
        return restored

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        """Write the fitted estimator to one ``.keras`` file.

        The file holds the network with its preprocessing (it takes raw
        columns), the plan, the scores and the histories. Read it with
        :func:`archguide.load`, or with ``keras.models.load_model`` after
        ``import archguide``. The file is written to a temporary name first:
        if saving fails, an existing file at ``path`` is left as it was.

        Raises:
            NotFittedError: before ``fit``.
            ConfigError: ``path`` does not end in ``.keras``.
        """
        self._check_fitted()
        path = Path(path)
        if path.suffix != ".keras":
            raise ConfigError(
                f"Received an invalid value for path, expected a name ending in '.keras'. Received: {path}"
            )
        atomic_write(path, lambda tmp: self.model_.save(tmp))


def _noting(on_trial_end, ran: list):
    """``on_trial_end`` that also notes each trial's id in ``ran``."""

    def noted(trial):
        ran.append(trial.trial_id)
        return on_trial_end(trial)

    return noted


_TUNERS = {"bayesian": "BayesianOptimization", "random": "RandomSearch", "hyperband": "Hyperband"}


def _estimator_values(hypermodel, hp) -> dict[str, Any]:
    """A trial's values as the estimators' parameters (``alpha`` is not one; no re-scoring is None)."""
    values = hypermodel.hyperparameters(hp.copy())
    del values["alpha"]
    values["rescoring"] = None if values["rescoring"] == "none" else values["rescoring"]
    return values


def _tuning_results(search, hypermodel) -> pd.DataFrame:
    """One row per trial (the estimator's parameters it tried, its score and status), best first."""
    rows = []
    for trial in search.oracle.trials.values():
        values = _estimator_values(hypermodel, trial.hyperparameters)
        rows.append({"trial": trial.trial_id, **values, "score": trial.score, "status": trial.status})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("score", na_position="last", kind="stable").set_index("trial")


def sensitive_not_important(held_out: pd.Series, training: pd.Series) -> pd.Series:
    """Which features are sensitive (on training rows) but not important (on held-out rows).

    A feature is flagged when its training importance is more than ``SENSITIVITY_RATIO`` (3) times
    its held-out importance (negative counts as 0) and more than 1% of the largest training
    importance, and its held-out importance is below 10% of the largest held-out one. The last
    condition keeps a strong feature whose held-out estimate is low by chance (a few held-out rows
    make it noisy) from being called unimportant.
    """
    training_floor = 0.01 * max(float(training.max()), 0.0)
    held_out_ceiling = 0.1 * max(float(held_out.max()), 0.0)
    return (
        (training > SENSITIVITY_RATIO * held_out.clip(lower=0.0))
        & (training > training_floor)
        & (held_out < held_out_ceiling)
    )


def _stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The segments' histories one after the other (an empty frame when there are none)."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _frame(split) -> pd.DataFrame:
    """A DataFrame from ``to_json(orient="split")``'s content (an artifact before a key existed: empty)."""
    if not split:
        return pd.DataFrame()
    return pd.DataFrame(split["data"], columns=split["columns"], index=split["index"])


def _renamed(table, names):
    """``table`` with the fitted column names (X given by position)."""
    from dataclasses import replace

    mapping = dict(zip(table.names, names))
    return replace(
        table,
        names=tuple(names),
        kinds={mapping[k]: v for k, v in table.kinds.items()},
        categories={mapping[k]: v for k, v in table.categories.items()},
        missing_columns=frozenset(mapping[k] for k in table.missing_columns),
    )


class ImportanceGuidedRegressor(RegressorMixin, _ImportanceGuidedEstimator):
    """An importance-guided Keras network for regression, as a scikit-learn estimator.

    ``fit`` scores the features with a random-forest permutation proxy,
    plans branches whose widths follow importance with a per-feature L1
    penalty strongest for weak features, builds the network and trains it
    with :class:`~archguide.callbacks.ImportanceRescoring` moving the
    penalties, stopping early on the penalty-free validation loss and
    restoring the best weights. The target is standardised for training and
    the model predicts in its original units.

    The training default ``refit=False`` was chosen by
    ``benchmarks/bench_estimators.py --study``: four data sets (Friedman #1,
    diabetes and wine with noise columns, breast cancer), three seeds each.
    ``batch_size="auto"`` (was 64) and ``lr_patience=10`` (was 5; the
    learning rate halved by a plateau rather than along a cosine) were chosen
    on the peer suite's eleven real tables (``benchmarks/peers.py``, tables 5
    and 6): geometric-mean error / best 1.053 against 1.089 with noise
    columns and 1.187 against 1.238 as published for the batch size; 1.021
    against 1.053 and 1.165 against 1.187 for ``lr_patience=10`` (the cosine
    1.027 and 1.179). The figures are in the README.

    Args:
        total_units: First-layer units of all branches together (the budget).
        grouping: ``"tiers"`` or ``"groups"`` (see :func:`~archguide.planning.plan_architecture`).
        n_tiers: Tiers with ``grouping="tiers"``.
        depth: Dense layers per branch.
        head_units: Widths of the shared head (default: the plan's).
        l1: L1 strength of the most important feature; weaker ones get more.
            1e-4 with ``scaling="robust"`` (the defaults) against the former
            1e-3 with standard scaling on the suite of eleven real tables:
            geometric-mean error / best 1.089 against 1.170 with noise columns,
            1.238 against 1.308 as published (README, "Real tables").
        l1_power: How steeply the strength follows importance.
        weak: ``"penalize"`` or ``"drop"`` the features the scores call weak.
        dropout: Dropout rate after every hidden layer.
        scaling: How numeric columns enter the network: ``"robust"`` (the
            default: clamped to the 0.1% and 99.9% quantiles, median and
            interquartile range, then a smooth clip to ±3; see
            :mod:`archguide.preprocessing`) or ``"standard"`` (mean and
            standard deviation).
        min_frequency: Categories of a categorical column with fewer rows
            than this (a count), or than this fraction of the rows (a number
            in (0, 1)), share one feature, ``"<column>=<infrequent>"``, as in
            scikit-learn's ``OneHotEncoder``; a category first seen at
            prediction then sets it too. None (the default): every category
            seen in training has a feature of its own (an unseen one sets
            none); on a table with a 200-level column pooling lost to it
            (test MSE 1.98 at ``min_frequency=5`` against 1.50; README, "A
            high-cardinality column").
        max_categories: The most features a categorical column becomes (its
            missing-value flag aside): past it, only the most frequent
            ``max_categories - 1`` categories keep their own and the rest share
            ``"<column>=<infrequent>"``. Bounds the width a high-cardinality
            column (identifiers, zip codes) gives the network and its
            scoring. None (the default): no bound (``max_categories=32`` lost
            on the 200-level table, 2.53 against 1.50, at a third of the fit
            time).
        embedding: Periodic frequencies (PLR embeddings) of each numeric
            column in the most important branch; the next branches' get half as
            many each, weak columns none; 0 for no embeddings (see
            :func:`~archguide.planning.plan_architecture`).
        category_embedding: Width of the learned embedding that replaces a
            categorical column's one-hot kernel rows in the most important
            branch (a vector per level, read by the branch's first layer:
            :class:`~archguide.layers.CategoryEmbedding`); the next branches'
            get half the width each, none below 2; only where a branch reads
            more of the column's levels than the width; weak levels stay
            one-hot. 0 (the default): every level has its own kernel row,
            which is already an embedding as wide as the layer; width 8 did
            not beat it (geometric-mean error / best on the suite of real
            tables 1.024 against 1.021 with noise columns, 1.166 against
            1.171 as published; on the 200-level table 1.61 against 1.50
            test MSE at 2,000 rows, but 0.86 against 0.93 at 6,000, at twice
            the fit time: worth trying for a column of hundreds of levels).
        ensemble_size: Members of a TabM-mini ensemble sharing the network
            (1: none): each member scales the gated inputs by its own
            weights and has its own output layer, every other layer is
            shared, each member is trained on its own loss and the estimator
            predicts their mean (see :func:`~archguide.builder.build_model`).
            Weight-based re-scoring (``"weights"``, ``"garson"``, ``"olden"``)
            is undefined for an ensemble.
        groups: ``"auto"`` (strongly correlated numeric columns are scored
            together), None, or a dict ``{group: [columns]}``. A categorical
            column's one-hot features always form one group.
        n_repeats: Shuffles per group when scoring.
        rescoring: Re-scoring method during training (see
            :func:`~archguide.network.network_importance`), or None for
            none. The default, ``"permutation"``, reads the held-out rows:
            with scores made wrong on purpose it reached 1.075 of the oracle
            MLP's test MSE against the gradient's 1.175 (six seeds), and the
            same figures within their spread where the scores are right
            (README, "When the first guess is wrong").
        rescoring_period: Re-score every this many epochs.
        epochs: The most epochs to train one plan (a re-planned network may
            train as many again).
        batch_size: Rows per gradient step, or ``"auto"`` (the default): by
            the number of training rows, the largest power of two up to a
            sixteenth of them, between 16 and 64 (16 below 512 training rows,
            64 from 1,024): small tables get more steps an epoch.
        learning_rate: Adam's learning rate.
        weight_decay: Decoupled weight decay of the kernels (AdamW; see
            :func:`~archguide.builder.build_model`); 0 for Adam.
        label_smoothing: Classifier only: train against labels smoothed
            towards the uniform distribution by this much; early stopping
            still reads the plain log loss. 0 for none.
        validation_fraction: Rows held out for early stopping and re-scoring.
        patience: Epochs without improvement of the validation data loss
            before stopping.
        min_improvement: The fraction by which the validation data loss
            must fall, since the patience last restarted, to restart it
            (0: any fall, as Keras' ``EarlyStopping``). The weights kept are
            still the lowest-loss epoch's. A larger value stops sooner on a
            loss that creeps down: 0.01 cut the suite's mean fit time by 21%
            with noise columns and 27% as published, at a geometric-mean
            error / best of 1.032 against 1.030 and 1.179 against 1.171
            (0.003: as fast, 1.030 and 1.177; README, "Real tables"), so
            the default stays 0.
        lr_patience: Epochs without improvement of the validation data loss
            before the learning rate is halved (Keras' ``ReduceLROnPlateau``);
            None keeps it constant. Used by ``lr_schedule="plateau"`` only.
        lr_schedule: ``"plateau"`` (halve the rate by ``lr_patience``) or
            ``"cosine"`` (half a cosine from ``learning_rate`` towards 0 over
            ``epochs``, Keras' ``LearningRateScheduler``; early stopping
            still ends the run; a re-planned network starts the cosine again).
        refit: After early stopping, train a fresh network on every row
            for the best number of epochs, replaying the learning rates
            (strengths fixed at their final values).
        replan: How the architecture follows the evidence while it trains
            (:mod:`archguide.replanning`). ``"residuals"`` (the default): when
            a network has trained (early stopping, or ``epochs``), the
            features its plan called weak are scored again on its residuals
            (predicted with the weak features held at their means, by the
            same forest, companions and weak test as the first scores); a
            weak feature whose signal is there leaves the weak set, the
            network is planned again, warm-started from the old one and
            trained on. When nothing is missing this costs one more scoring.
            ``True``: also re-plan while training when the network's smoothed
            importance would move features between branches or into the weak
            set at three re-scorings in a row (after at least ten epochs; it
            needs ``rescoring``, and it frees no weak feature: that takes the
            residuals). ``False``: never. See the README's "When the first
            guess is wrong" for the measurements.
        max_replans: The most re-plans in one fit.
        random_state: Seed (int), ``numpy.random.RandomState`` or None. An
            integer gives identical predictions on two CPU fits; it also sets
            Keras' global seed for the fit.
        verbose: 0 silent; 1 what is decided and one progress bar over epochs
            (validation data loss, best so far); 2 what is decided and Keras'
            line per epoch.

    Attributes:
        scores_: The :class:`~archguide.scoring.FeatureScores`, one group per source column.
        plan_: The :class:`~archguide.planning.ArchitecturePlan` of the final network.
        plans_: Every plan trained, in order: dicts with ``epoch`` (epochs
            trained before it), ``reason`` (``"scores"`` for the first,
            ``"residuals"`` or ``"network importance"`` for a re-plan),
            ``moved`` (the features that changed branch or weak flag),
            ``importances`` and ``weak`` (what it was planned from) and
            ``plan``, and ``kept``: True for the plan of the final network,
            the one whose best held-out data loss is lowest (a re-planned
            network that does no better than the one it replaced is
            discarded). One entry when nothing was re-planned. With
            ``replan``, ``history_["plan"]`` gives each epoch's index in this list.
        model_: The Keras model: raw columns (a dict of arrays) in, predictions out.
        network_: The trained network inside ``model_`` (encoded features in).
        encoding_: The :class:`~archguide.preprocessing.ColumnEncoding`.
        history_: Keras' training history (dict of lists; the regressor's
            losses are in units of the standardised target).
        rescoring_history_: pd.DataFrame, one row per re-scoring: ``epoch`` and
            each feature's smoothed network importance.
        strengths_history_: pd.DataFrame, one row per re-scoring: ``epoch`` and
            each feature's L1 strength after it.
        sensitivity_: pd.DataFrame, one row per source column: the network's
            permutation importance on the held-out rows (``held_out``) and on
            training rows (``training``), and ``flagged``: sensitive but not
            important (training above 3 times held-out, and above 1% of the
            largest): what the network overfits. With ``refit``, measured on
            the first network (the one with held-out rows).
        n_epochs_: Epochs trained; best_epoch_: the epoch whose weights were kept.
        batch_size_: Rows per gradient step (``batch_size``, or what ``"auto"`` chose).
        validation_indices_: Positions (rows of ``X``) of the validation rows: held out for early
            stopping and re-scoring, and the rows of ``history_``'s ``val_`` figures. Not kept in
            the saved file.
        refit_history_: With ``refit``, the history of the network that was kept (trained on
            every row, validation rows included, for ``best_epoch_`` epochs); otherwise None.
        n_features_in_: Number of columns seen at fit.
        feature_names_in_: Column names seen at fit (only for a DataFrame with string names).
    """

    _task_family = "regression"

    def _target(self, y, n_rows):
        values = check_target(y, n_rows)
        if values.dtype.kind not in "iufb":
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                raise DataError(
                    f"{type(self).__name__} needs a numeric y. Received values of dtype {values.dtype} "
                    f"(for example {values[0]!r}); for class labels use ImportanceGuidedClassifier."
                ) from None
        values = values.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise DataError("y has values that are not finite.")
        mean, std = float(values.mean()), float(values.std())
        if not math.isfinite(std):
            raise DataError(f"y has values as large as {np.max(np.abs(values)):.3g}; rescale it.")
        self.target_mean_, self.target_scale_ = mean, std if std > 0 else 1.0
        return "regression", values, ((values - mean) / self.target_scale_).astype(np.float32)

    def _output_layers(self, outputs, task):
        return keras.layers.Rescaling(self.target_scale_, offset=self.target_mean_, name="archguide_target_scale")(
            outputs
        )

    def _target_info(self):
        return {"target_mean": self.target_mean_, "target_scale": self.target_scale_}

    def _restore_target(self, info):
        self.target_mean_, self.target_scale_ = float(info["target_mean"]), float(info["target_scale"])

    def predict(self, X) -> np.ndarray:
        """Predicted values, one per row (1-D float64).

        ``X`` is matched to the fitted columns by name if it is a DataFrame
        and the estimator was fitted on one; otherwise by position.

        Raises:
            NotFittedError: before ``fit``.
            DataError: missing or unexpected columns (named), a column whose
                type changed since fit, or anything ``fit`` would reject in X.
        """
        return self._forward(X)[:, 0].astype(np.float64)


class ImportanceGuidedClassifier(ClassifierMixin, _ImportanceGuidedEstimator):
    """An importance-guided Keras network for classification, as a scikit-learn estimator.

    Takes any class labels (numbers, strings, booleans); two classes make a
    sigmoid output, more a softmax. Everything else is as in
    :class:`ImportanceGuidedRegressor` (same parameters and attributes), plus
    ``classes_``, the sorted class labels.
    """

    _task_family = "classification"

    def _target(self, y, n_rows):
        values = check_target(y, n_rows)
        if values.dtype.kind == "O":
            types = sorted({type(v).__name__ for v in values})
            if len(types) > 1:
                raise DataError(
                    f"y mixes labels of types {types}: labels of one type are needed (for example all strings)."
                )
        kind = type_of_target(values)
        if kind not in ("binary", "multiclass"):
            raise DataError(
                f"Unknown label type: {kind!r}. {type(self).__name__} needs class labels; y looks like "
                f"{kind} values (for example {values[:3].tolist()}). For a continuous target use "
                "ImportanceGuidedRegressor."
            )
        self.classes_, y_index = np.unique(values, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(f"y has a single class ({self.classes_[0]!r}); a classifier needs at least 2 classes.")
        task = "binary" if len(self.classes_) == 2 else "multiclass"
        y_net = y_index.astype(np.float32 if task == "binary" else np.int32)
        return task, y_index, y_net

    def _n_outputs(self, task):
        return 1 if task == "binary" else len(self.classes_)

    def _target_info(self):
        return {"classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str}

    def _restore_target(self, info):
        self.classes_ = np.asarray(info["classes"], dtype=np.dtype(info["classes_dtype"]))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order.

        Raises:
            NotFittedError, DataError: as :meth:`predict`.
        """
        out = self._forward(X).astype(np.float64)
        if out.shape[1] == 1:
            out = np.hstack([1.0 - out, out])
        return out

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as labels from ``classes_``.

        Raises:
            NotFittedError: before ``fit``.
            DataError: missing or unexpected columns (named), a column whose
                type changed since fit, or anything ``fit`` would reject in X.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


_ESTIMATORS = {cls.__name__: cls for cls in (ImportanceGuidedRegressor, ImportanceGuidedClassifier)}


def _artifact_info(path: Path) -> Mapping[str, Any]:
    """The metadata in a ``.keras`` file, read from its config without building the model."""
    if not path.exists():
        raise FileNotFoundError(f"No such file: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{str(path)!r} is not a .keras file (a .keras file is a zip archive written by model.save).")
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError) as exc:
        raise DataError(f"{str(path)!r} is not a .keras file: it has no readable config.json ({exc}).") from None

    def find(node):
        if isinstance(node, dict):
            if node.get("registered_name") == "archguide>ArtifactInfo":
                return node.get("config", {}).get("info")
            for value in node.values():
                found = find(value)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for value in node:
                found = find(value)
                if found is not None:
                    return found
        return None

    info = find(config)
    if not info or info.get("estimator") not in _ESTIMATORS:
        raise DataError(
            f"{str(path)!r} is a Keras model but not an archguide artifact (it was not written by "
            "ImportanceGuidedRegressor.save or ImportanceGuidedClassifier.save). Load it with "
            "keras.models.load_model."
        )
    if int(info.get("format", 0)) > ARTIFACT_FORMAT:
        raise DataError(
            f"{str(path)!r} was written by a newer archguide (artifact format {info['format']}); upgrade archguide."
        )
    return info


def load(path: str | Path):
    """Load an estimator saved with ``save``.

    The returned estimator predicts exactly what the saved one did. Loading
    uses Keras' safe mode (no arbitrary code is run).

    Args:
        path: A ``.keras`` file written by ``ImportanceGuidedRegressor.save``
            or ``ImportanceGuidedClassifier.save``.

    Returns:
        A fitted :class:`ImportanceGuidedRegressor` or :class:`ImportanceGuidedClassifier`.

    Raises:
        FileNotFoundError: no file at ``path``.
        DataError: the file is not a ``.keras`` file, or not an archguide artifact.
    """
    path = Path(path)
    info = _artifact_info(path)
    try:
        with dict_keys_not_names():
            model = keras.models.load_model(path, safe_mode=True, compile=False)
        cls = _ESTIMATORS[info["estimator"]]
        params = {**_BEFORE_SAVED, **{k: v for k, v in info["params"].items() if k in cls().get_params()}}
        estimator = cls(**params)
        estimator._restore(model, info)
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())[:200]
        raise DataError(
            f"{str(path)!r} is damaged: an archguide artifact whose model or metadata cannot be read ({detail}). "
            "Save the estimator again."
        ) from exc
    return estimator
