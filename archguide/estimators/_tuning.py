"""An estimator's ``tune``: KerasTuner searches the plan's and the training's options on honest folds."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from archguide._checks import check_choice, check_int
from archguide.estimators._training import _batch_size
from archguide.exceptions import ConfigError, DataError, TrainingError


class _Tuning:
    """The estimators' ``tune`` method (a part of the estimators; not public)."""

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

        :class:`~archguide.tuning.hypermodel.FoldedHyperModel` searches the plan's and the
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
                (see :func:`~archguide.tuning.distributed.serve_chief`), in seconds.

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
            DataError, ConfigError: as ``fit``, and a dataset (tune takes a table in memory);
                a search-space bound that is malformed,
                inverted or empty; a ``search_space`` key that is not searched.
        """
        import tempfile
        from contextlib import nullcontext

        from archguide.datasets import is_dataset
        from archguide.tuning.hypermodel import distributed_role

        self._check_params()
        if is_dataset(X):
            raise DataError(
                "tune takes a table in memory: its trials train many networks on folds of the rows. For a dataset "
                "bigger than memory, tune on a sample that fits (pandas.read_parquet on a few files), then fit the "
                f"best parameters on the dataset. Received X of type {type(X).__name__}."
            )
        role = distributed_role()
        check_int("max_trials", max_trials)
        check_choice("tuner", tuner, tuple(_TUNERS))
        hypermodel, splits, seed = self._tuning_hypermodel(X, y, cv, dict(search_space or {}))
        # a scratch directory only where none is given (a worker that dies cannot leave it behind)
        root = tempfile.TemporaryDirectory(prefix="archguide-tune-") if directory is None else nullcontext(directory)
        with root as root_directory:
            where = {"directory": str(root_directory), "project_name": project_name}
            search = self._tuner(hypermodel, tuner, max_trials, where, overwrite and role in (None, "chief"), seed)
            if not self._run_search(search, role, splits, worker_timeout, timeout):
                return None  # a worker: the chief refits the best
            params, results = _best_values(search, hypermodel)
        estimator = clone(self).set_params(**params)
        estimator.fit(X, y)
        estimator.tuning_results_ = results
        return estimator

    def _tuning_hypermodel(self, X, y, cv, space: dict):
        """The search's hypermodel over honest folds, the folds' ``(train, val)`` rows, and the tuner's seed."""
        from archguide.tuning.hypermodel import DEFAULTS, FoldedHyperModel, _check_cv, fold_of

        searchable = set(DEFAULTS) - {"alpha"}  # alpha is not an estimator parameter
        unknown = sorted(set(space) - searchable)
        if unknown:
            raise ConfigError(f"Received unknown search_space keys {unknown}; searchable: {sorted(searchable)}.")
        work = clone(self)
        table, task, y_score, y_net, seeds = work._validated(X, y)
        split_seed, score_seed, model_seed, _ = seeds
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
            embeddable=encoding.embeddable,
            category_embedding=self.category_embedding,
            categorical=encoding.levels,
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
        return hypermodel, splits, seeds[3] % (2**31 - 1)

    def _tuner(self, hypermodel, tuner: str, max_trials: int, where: dict, overwrite: bool, seed: int):
        """The KerasTuner tuner of the search (a worker never overwrites: it must not delete the chief's files)."""
        import keras_tuner

        kwargs = {"max_epochs": self.epochs} if tuner == "hyperband" else {"max_trials": max_trials}
        return getattr(keras_tuner, _TUNERS[tuner])(
            hypermodel,
            objective=hypermodel.objective,
            overwrite=overwrite,
            seed=seed,
            **where,
            **kwargs,
        )

    def _run_search(self, search, role, splits, worker_timeout, timeout) -> bool:
        """Run the trials (the chief serves them to the workers); False in a distributed search's worker."""
        from archguide.tuning.distributed import serve_chief

        if role == "chief":
            serve_chief(search, worker_timeout=worker_timeout, timeout=timeout)
            return True
        ran = []
        search.on_trial_end = _noting(search.on_trial_end, ran)
        with warnings.catch_warnings():
            # BayesianOptimization's Gaussian process fitted on a few noisy scores: expected, not actionable
            warnings.filterwarnings("ignore", category=ConvergenceWarning, module="sklearn.gaussian_process")
            batch_size = _batch_size(self.batch_size, min(len(train) for train, _ in splits))
            search.search(epochs=self.epochs, batch_size=batch_size, verbose=self.verbose)
        if role is not None:
            self._say(f"worker {role} ran trials {', '.join(ran) or 'none'}")
            return False
        return True


def _best_values(search, hypermodel) -> tuple[dict[str, Any], pd.DataFrame]:
    """The best completed trial's values as estimator parameters, and the table of every trial."""
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
    if params.get("rescoring") is None and params.get("replan") is True:
        params["replan"] = False  # the best trial trained without re-scoring: no network importance to re-plan from
    return params, _tuning_results(search, hypermodel)


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
