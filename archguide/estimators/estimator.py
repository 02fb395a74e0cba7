"""scikit-learn estimators that chain the whole pipeline.

``fit`` validates the data, fits the in-model preprocessing
(:mod:`archguide.estimators.preprocessing`), scores the features
(:func:`~archguide.score_features`), plans
(:func:`~archguide.planning.plan_architecture`), builds
(:func:`~archguide.build_model`) and trains with
:class:`~archguide.ImportanceRescoring` and early stopping on the
penalty-free validation loss. The fitted ``model_`` takes raw columns.

The estimator is made of parts, each in its own module: training
(:mod:`~archguide.estimators._training`), the artifact that ``save`` writes and
:func:`~archguide.load` reads (:mod:`~archguide.estimators.artifact`), ``tune``
(:mod:`~archguide.estimators._tuning`) and the sensitivity check
(:mod:`~archguide.estimators._sensitivity`). This module holds what ``fit`` and
``predict`` do with the data: checks, encoding, scoring, planning and the target.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import type_of_target

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_number, check_seed, check_units
from archguide.datasets import is_dataset
from archguide.estimators._sensitivity import sensitivity
from archguide.estimators._training import NETWORK, PREDICT_BATCH, ArrayRows, Prepared, _batch_size, _Training
from archguide.estimators._tuning import _Tuning
from archguide.estimators.artifact import _Artifact
from archguide.estimators.preprocessing import SCALINGS, ColumnEncoding, check_pooling
from archguide.exceptions import ArchguideWarning, ConfigError, DataError, NotFittedError
from archguide.model.builder import DATA_LOSS_METRIC
from archguide.model.callbacks import LR_SCHEDULES
from archguide.model.importance import METHODS, WEIGHT_METHODS
from archguide.planning import GROUPINGS, WEAK_MODES, plan_architecture
from archguide.schema import as_table, check_target, column_mismatch, encoded_table
from archguide.scoring.grouping import named_groups
from archguide.scoring.score import MIN_ROWS, named_correlation_groups, score_features

keras = import_keras()

__all__ = ["ImportanceGuidedClassifier", "ImportanceGuidedRegressor"]

#: What ``replan`` accepts: the residual check, re-planning from the network's importance, or neither.
REPLANS = ("residuals", True, False)


class _ImportanceGuidedEstimator(_Training, _Tuning, _Artifact, BaseEstimator):
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
        return self.model_.get_layer(NETWORK)

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

    def fit(self, X, y=None, *, target: str | None = None):
        """Score, plan, build and train on ``X`` and ``y``.

        Args:
            X: A DataFrame (its column names are the feature names; numeric,
                boolean and categorical columns, missing values allowed) or a
                2-D array. Or a dataset bigger than memory, streamed (see the
                user guide's "Tables bigger than memory"): a directory of Parquet
                files, a Parquet file or a list of them, a
                ``pyarrow.dataset.Dataset``, or a ``dask.dataframe.DataFrame``.
                Read only, never modified.
            y: One value per row: a 1-D array, a list, a pandas Series (any
                index), or a column vector. With a dataset: the target column's
                name, or with a dask DataFrame a dask Series of the same
                partitions.
            target: With a dataset, the target column's name (the same as
                passing it as ``y``).

        Returns:
            self.

        Raises:
            DataError: ``X`` or ``y`` cannot be used (the message names the
                argument or columns, and with a dataset the file or partition),
                or fewer than 10 rows.
            ConfigError: a parameter is out of range.
            TrainingError: the loss became NaN or infinite during training.
        """
        self._check_params()
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("_")]:
            delattr(self, name)  # a failed refit must not leave a half-updated estimator
        self._data_summary = None
        if is_dataset(X):
            from archguide.estimators._streaming import streamed

            prepared = streamed(self, X, y, target)
        elif target is not None:
            raise DataError(
                "target= names the target column of a dataset (Parquet files or a dask DataFrame); with a table in "
                f"memory pass y. Received X of type {type(X).__name__} and target={target!r}."
            )
        else:
            prepared = self._prepared(X, y)
        return self._fit_prepared(prepared)

    def _prepared(self, X, y) -> Prepared:
        """Validate, encode, score and split a table in memory."""
        table, task, y_score, y_net, seeds = self._validated(X, y)
        encoding, X_enc, scores = self._encode_and_score(table, task, y_score, seeds[1])
        train, val = self._split(y_score, task, table.n_rows, seeds[0])
        names = None
        if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
            names = np.asarray(X.columns, dtype=object)
        return Prepared(
            encoding, scores, task, seeds, ArrayRows(X_enc[train], y_net[train]), (X_enc[val], y_net[val]), val,
            lambda: ArrayRows(X_enc, y_net), table.n_features, names,
        )  # fmt: skip

    def _fit_prepared(self, prepared: Prepared):
        """Plan, build and train on prepared data (a table in memory or a streamed dataset)."""
        encoding, scores, task = prepared.encoding, prepared.scores, prepared.task
        _, _, model_seed, rescoring_seed = prepared.seeds
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
            embeddable=encoding.embeddable,
            category_embedding=self.category_embedding,
            categorical=encoding.levels,
        )
        self._say(f"plan: {len(plan.branches)} branches, {plan.n_params(self._n_outputs(task))} parameters; training")

        self.batch_size_ = _batch_size(self.batch_size, prepared.rows.n)
        network, history, rescorings, plans, kept = self._train(
            plan, scores, task, prepared.rows, prepared.validation, model_seed=model_seed,
            rescoring_seed=rescoring_seed,
        )  # fmt: skip
        if len(plans) == 1:
            history.pop("plan", None)  # one plan trained every epoch
        plans = [{**record, "kept": i == kept} for i, record in enumerate(plans)]
        plan = plans[kept]["plan"]
        start = plans[kept]["epoch"]  # the kept network's weights are the best of its own segment
        end = plans[kept + 1]["epoch"] if kept + 1 < len(plans) else len(history[DATA_LOSS_METRIC])
        best_epoch = start + int(np.argmin(history["val_" + DATA_LOSS_METRIC][start:end])) + 1
        sensitivity_ = sensitivity(network, scores, prepared.validation, prepared.rows.sample(), rescoring_seed)
        refit_history = None
        if self.refit:
            strengths = network.get_layer("gate").get_strengths()
            rates = history.get("learning_rate", [self.learning_rate] * best_epoch)[:best_epoch]
            network, refit_history = self._refit(
                plan, task, prepared.every_row(), strengths, rates, model_seed=model_seed
            )

        self.n_epochs_ = len(history[DATA_LOSS_METRIC])
        self.best_epoch_ = best_epoch
        self.validation_indices_ = prepared.validation_indices
        self.refit_history_ = refit_history

        self.encoding_ = encoding
        self.scores_ = scores
        self.plan_ = plan
        self.plans_ = plans
        self.history_ = history
        self.rescoring_history_ = _stacked([r.history_ for r in rescorings])
        self.strengths_history_ = _stacked([r.strengths_history_ for r in rescorings])
        self.sensitivity_ = sensitivity_
        self.n_features_in_ = prepared.n_features
        if prepared.feature_names is not None:
            self.feature_names_in_ = prepared.feature_names
        self.model_ = self._assemble(encoding, network, task)
        return self

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
        return encoding, X_enc, self._score(encoding, X_fit, y_fit, task, seed)

    def _score(self, encoding: ColumnEncoding, X_fit: np.ndarray, y_fit: np.ndarray, task: str, seed: int):
        """:func:`~archguide.score_features` on encoded rows; ``y_fit`` as :meth:`_target`'s ``y_score``."""
        kept, test_size = self._scoring_rows(y_fit, task)
        # the user's labels (in classes_ order, the scorer's too), so that its messages name them
        y_labels = y_fit if task == "regression" else self.classes_[y_fit]
        return score_features(
            encoded_table(X_fit if kept is None else X_fit[kept], encoding.features),
            y_labels if kept is None else y_labels[kept],
            task=task if task == "regression" else "classification",
            groups=self._feature_groups(encoding, X_fit),
            n_repeats=self.n_repeats,
            test_size=test_size,
            random_state=seed,
        )

    def _say(self, message: str) -> None:
        if self.verbose:
            print(f"{type(self).__name__}: {message}")

    @staticmethod
    def _n_outputs(task: str) -> int:
        return 1

    def _feature_groups(self, encoding: ColumnEncoding, X_enc: np.ndarray) -> dict[str, list[str]]:
        """Feature groups in the encoded features' names: one per source column, merged as ``groups`` says.

        Groups are named as :func:`~archguide.score_features` names
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

        A dataset (Parquet files, a dask DataFrame) is predicted batch by batch, in its order.
        """
        if is_dataset(X):
            from archguide.estimators._streaming import predicted_batches

            return np.concatenate([out for out, _ in predicted_batches(self, X)])
        raw = self._raw_inputs(X)
        order = np.argsort(pd.util.hash_pandas_object(pd.DataFrame(raw), index=False).to_numpy(), kind="stable")
        out = np.asarray(
            self.model_.predict({k: v[order] for k, v in raw.items()}, batch_size=PREDICT_BATCH, verbose=0)
        )
        restored = np.empty_like(out)
        restored[order] = out
        return restored


def _stacked(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The segments' histories one after the other (an empty frame when there are none)."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


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
    with :class:`~archguide.ImportanceRescoring` moving the
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
    1.027 and 1.179). The figures are in the documentation's benchmarks.

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
            1.238 against 1.308 as published (benchmarks, "Real tables").
        l1_power: How steeply the strength follows importance.
        weak: ``"penalize"`` or ``"drop"`` the features the scores call weak.
        dropout: Dropout rate after every hidden layer.
        scaling: How numeric columns enter the network: ``"robust"`` (the
            default: clamped to the 0.1% and 99.9% quantiles, median and
            interquartile range, then a smooth clip to ±3; see
            :mod:`archguide.estimators.preprocessing`) or ``"standard"`` (mean and
            standard deviation).
        min_frequency: Categories of a categorical column with fewer rows
            than this (a count), or than this fraction of the rows (a number
            in (0, 1)), share one feature, ``"<column>=<infrequent>"``, as in
            scikit-learn's ``OneHotEncoder``; a category first seen at
            prediction then sets it too. None (the default): every category
            seen in training has a feature of its own (an unseen one sets
            none); on a table with a 200-level column pooling lost to it
            (test MSE 1.98 at ``min_frequency=5`` against 1.50; benchmarks, "A
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
            :class:`~archguide.model.layers.CategoryEmbedding`); the next branches'
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
            predicts their mean (see :func:`~archguide.build_model`).
            Weight-based re-scoring (``"weights"``, ``"garson"``, ``"olden"``)
            is undefined for an ensemble.
        groups: ``"auto"`` (strongly correlated numeric columns are scored
            together), None, or a dict ``{group: [columns]}``. A categorical
            column's one-hot features always form one group.
        n_repeats: Shuffles per group when scoring.
        rescoring: Re-scoring method during training (see
            :func:`~archguide.network_importance`), or None for
            none. The default, ``"permutation"``, reads the held-out rows:
            with scores made wrong on purpose it reached 1.075 of the oracle
            MLP's test MSE against the gradient's 1.175 (six seeds), and the
            same figures within their spread where the scores are right
            (benchmarks, "The first guess made wrong on purpose").
        rescoring_period: Re-score every this many epochs.
        epochs: The most epochs to train one plan (a re-planned network may
            train as many again).
        batch_size: Rows per gradient step, or ``"auto"`` (the default): by
            the number of training rows, the largest power of two up to a
            sixteenth of them, between 16 and 64 (16 below 512 training rows,
            64 from 1,024): small tables get more steps an epoch.
        learning_rate: Adam's learning rate.
        weight_decay: Decoupled weight decay of the kernels (AdamW; see
            :func:`~archguide.build_model`); 0 for Adam.
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
            error / best of 1.035 against 1.033 and 1.179 against 1.171
            (0.003: as fast, 1.034 and 1.177; benchmarks, "Real tables"), so
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
            (:mod:`archguide.model.replanning`). ``"residuals"`` (the default): when
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
            residuals). ``False``: never. See the user guide's "When the first
            guess is wrong" for the measurements.
        max_replans: The most re-plans in one fit.
        random_state: Seed (int), ``numpy.random.RandomState`` or None. An
            integer gives identical predictions on two CPU fits; it also sets
            Keras' global seed for the fit.
        verbose: 0 silent; 1 what is decided and one progress bar over epochs
            (validation data loss, best so far); 2 what is decided and Keras'
            line per epoch.

    Attributes:
        scores_: The :class:`~archguide.FeatureScores`, one group per source column.
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
        encoding_: The :class:`~archguide.estimators.preprocessing.ColumnEncoding`.
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
        n_epochs_: Epochs trained; ``best_epoch_``: the epoch whose weights were kept.
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

    def _stream_target(self, moments) -> str:
        """Set the target's attributes from a dataset's pass (its moments); returns the task."""
        if not math.isfinite(moments.std):
            raise DataError(
                f"y has values as large as {max(abs(moments.minimum), abs(moments.maximum)):.3g}; rescale it."
            )
        self.target_mean_, self.target_scale_ = moments.mean, moments.std if moments.std > 0 else 1.0
        return "regression"

    def _y_score(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def _y_net(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.target_mean_) / self.target_scale_).astype(np.float32)

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
        and the estimator was fitted on one; otherwise by position. ``X``
        may also be a dataset as ``fit`` takes it (Parquet files, a dask
        DataFrame; columns by name, others ignored), predicted batch by batch;
        :func:`~archguide.write_predictions` writes them to a file instead.

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
        task = self._set_classes(values)
        y_index = np.searchsorted(self.classes_, values)
        return task, y_index, self._y_net(values)

    def _set_classes(self, values: np.ndarray) -> str:
        """Check the labels and set ``classes_``; returns the task."""
        kind = type_of_target(values)
        if kind not in ("binary", "multiclass"):
            raise DataError(
                f"Unknown label type: {kind!r}. {type(self).__name__} needs class labels; y looks like "
                f"{kind} values (for example {values[:3].tolist()}). For a continuous target use "
                "ImportanceGuidedRegressor."
            )
        self.classes_ = np.unique(values)
        if len(self.classes_) < 2:
            raise DataError(f"y has a single class ({self.classes_[0]!r}); a classifier needs at least 2 classes.")
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def _stream_target(self, counts) -> str:
        """Set ``classes_`` from a dataset's pass (each label's rows); returns the task."""
        labels = list(counts)
        strings = any(isinstance(v, str) for v in labels)
        if strings and not all(isinstance(v, str) for v in labels):
            types = sorted({type(v).__name__ for v in labels})
            raise DataError(
                f"y mixes labels of types {types}: labels of one type are needed (for example all strings)."
            )
        return self._set_classes(np.asarray(labels, dtype=object if strings else None))

    def _y_score(self, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.classes_, values)

    def _y_net(self, values: np.ndarray) -> np.ndarray:
        return self._y_score(values).astype(np.float32 if len(self.classes_) == 2 else np.int32)

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
