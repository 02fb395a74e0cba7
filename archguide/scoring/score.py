"""Feature scoring: a random-forest permutation proxy, feature groups and a weak test.

The first stage of the pipeline. :func:`score_features` chains small stages,
each in the module that owns it:

1. check the options, then the data (:mod:`archguide.schema`);
2. split the rows: one held-out part on large data, K folds on small data so
   that every row is held out once (cross-fitting; :mod:`archguide.scoring.splitting`);
3. group correlated features (:mod:`archguide.scoring.grouping`);
4. fit a random forest per split (:mod:`archguide.scoring._proxy`) and shuffle each
   feature and each group on its held-out rows, batched
   (:mod:`archguide.scoring._permutation`, with the metrics of :mod:`archguide.scoring._metrics`);
5. share a group's importance among its members;
6. test each group's per-row loss increases against zero, for the forest
   and for a linear companion scored on the same rows, and control the
   false discovery rate (:mod:`archguide.scoring._weak_test`);

and returns a :class:`~archguide.FeatureScores`.

How it stays fast on large tables: each forest is fitted on at most
``max_train_samples`` rows and importance is measured on at most
``max_eval_samples`` held-out rows per forest; only those rows are ever
encoded; every shuffled copy of the held-out rows is stacked and predicted in
a few large calls instead of one call per copy.

The shuffles are drawn exactly as :func:`sklearn.inspection.permutation_importance`
draws them, so for the same fitted estimator, rows and ``random_state`` the
importances are the same numbers; batching changes the speed, not the result.
Set ``cv=None``, ``max_train_samples=None``, ``max_eval_samples=None`` and pass
your own ``estimator`` to reproduce a full-data recipe.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer_names

from archguide._checks import check_choice, check_int, check_number, check_seed
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.schema import as_table, check_target, format_names
from archguide.scoring._companion import MAX_PAIRWISE_FEATURES, LinearCompanion, linear_proxy
from archguide.scoring._metrics import BATCHED_METRICS, default_metric
from archguide.scoring._permutation import permutation_drops
from archguide.scoring._proxy import columns_read, fit_proxy
from archguide.scoring._weak_test import (
    FOLD_VARIANCE,
    LINEAR_FOLD_VARIANCE,
    PAIRWISE_FOLD_VARIANCE,
    discoveries,
    either_p_value,
    row_p_values,
)
from archguide.scoring.feature_scores import FeatureScores
from archguide.scoring.grouping import correlation_groups, named_correlation_groups, resolve_groups
from archguide.scoring.splitting import n_folds_for, row_splits

__all__ = [
    "FeatureScores",
    "score_features",
    "resolve_task",
    "row_splits",
    "permutation_scores",
    "correlation_groups",
    "named_correlation_groups",
    "MIN_ROWS",
]

logger = logging.getLogger("archguide")

#: The fewest rows :func:`score_features` accepts: 8 to fit the proxy, 2 held out.
MIN_ROWS = 10
#: Below this many held-out rows, scores come with a warning that they are mostly noise.
FEW_EVAL_ROWS = 50
#: A class with fewer held-out rows than this is named in a warning.
FEW_CLASS_ROWS = 5
#: Trees per forest for ``n_estimators="auto"``: (with folds, on one split).
AUTO_TREES = (100, 30)
TASKS = ("auto", "regression", "classification", "binary", "multiclass")
#: What ``companion`` accepts: a second proxy the weak test consults beside the forest.
COMPANIONS = ("pairwise", "linear", None)
#: Shuffles per group of the linear companion (at least ``n_repeats``): its shuffles cost little, and
#: averaging more of them steadies each row's loss increase (see ``score_features``' ``companion``).
COMPANION_REPEATS = 25
#: The companions' per-row loss for classes: log loss, which logistic regression is fitted to minimise
#: (the forest keeps ``metric``). With the Brier score instead, the pairwise companion found truth set 2's
#: product in 0.667 of 30 runs at 1,000 rows (``benchmarks/bench_power.py``; benchmarks, "Power of the weak flag").
COMPANION_CLASS_METRIC = "neg_log_loss"
# An integer-valued target with at most this many distinct values is taken as class labels.
MAX_AUTO_CLASSES = 20
_SEED_MAX = np.iinfo(np.int32).max


# --------------------------------------------------------------------------- task


def resolve_task(task: str, y: np.ndarray) -> str:
    """Decide the task from ``y`` when ``task`` is ``"auto"`` or ``"classification"``.

    Rule for ``"auto"``: booleans, strings, categories and other non-numeric
    labels are classification; numbers are regression unless every value is a
    whole number and there are at most 20 distinct values, in which case they
    are class labels. Classification is ``"binary"`` for two classes and
    ``"multiclass"`` for more.

    Raises:
        ConfigError: ``task`` is not one of the known tasks.
        DataError: the task needs more than one class (or value) and ``y`` has one.
    """
    check_choice("task", task, TASKS)
    numeric = y.dtype.kind in "iuf"
    distinct = pd.unique(y)
    if len(distinct) < 2:
        value = distinct[0].item() if hasattr(distinct[0], "item") else distinct[0]
        raise DataError(
            f"y has a single value ({value!r}): a single class, or a constant target, leaves nothing to score. "
            "Check the target column."
        )
    if task == "auto":
        classify = not numeric
        if numeric:
            whole = np.all(np.mod(y, 1) == 0) if y.dtype.kind == "f" else True
            classify = bool(whole) and len(np.unique(y)) <= MAX_AUTO_CLASSES
        task = "classification" if classify else "regression"
    if task == "regression":
        if not numeric:
            raise DataError(f"task='regression' needs a numeric y. Received values of dtype {y.dtype}.")
        return "regression"
    n_classes = len(distinct)
    if task == "binary" and n_classes != 2:
        raise DataError(f"task='binary' needs exactly two classes in y. Received {n_classes} classes.")
    if task == "classification":
        return "binary" if n_classes == 2 else "multiclass"
    return task


def permutation_scores(
    estimator,
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    column_sets: list[list[int]],
    *,
    n_repeats: int,
    metric: str,
    random_state=None,
    verbose: int = 0,
    n_classes: int | None = None,
) -> tuple[float, np.ndarray]:
    """Score drops when each set of columns is shuffled jointly, batched.

    The arguments are :func:`archguide.scoring._permutation.permutation_drops`'s
    (the per-row loss follows from whether ``estimator`` is a classifier);
    ``verbose`` shows a progress bar when positive.

    Returns:
        ``(baseline_score, importances)`` with importances of shape
        ``(len(column_sets), n_repeats)``: baseline minus shuffled score, the
        numbers ``permutation_importance`` returns for the same seed.
    """
    progress = _progress(total=len(column_sets) * n_repeats, verbose=verbose, desc="permutation")
    result = permutation_drops(
        estimator,
        X_eval,
        y_eval,
        column_sets,
        n_repeats=n_repeats,
        metric=metric,
        task="multiclass" if is_classifier(estimator) else "regression",
        random_state=random_state,
        n_classes=n_classes,
        progress=progress,
    )
    progress.close()
    return result.baseline, result.drops


class _NoProgress:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(*, total: int, verbose: int, desc: str):
    if not verbose:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="copy", leave=False)


def _check_magnitude(y: np.ndarray) -> None:
    """Refuse a regression target whose squared errors overflow float64 (every importance would be NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.var(y))
    if not np.isfinite(spread):
        raise DataError(
            f"y has values as large as {np.max(np.abs(y)):.3g}: their squares overflow float64, so every score "
            "and importance would be NaN. Rescale y (for example divide it by a power of ten)."
        )


def _warn_if_few_rows(y_eval: np.ndarray, class_labels) -> None:
    if len(y_eval) < FEW_EVAL_ROWS:
        warnings.warn(
            f"score_features: only {len(y_eval)} held-out rows: importances and the weak flags are mostly noise "
            f"below about {FEW_EVAL_ROWS}. Pass more rows, or a larger test_size.",
            ArchguideWarning,
            stacklevel=3,
        )
    if class_labels is not None:
        counts = np.bincount(y_eval, minlength=len(class_labels))
        rare = [str(label) for label, count in zip(class_labels, counts) if count < FEW_CLASS_ROWS]
        if rare:
            warnings.warn(
                f"score_features: classes {format_names(rare)} have fewer than {FEW_CLASS_ROWS} held-out rows; "
                "what the scores say about them rests on very few rows.",
                ArchguideWarning,
                stacklevel=3,
            )


def _constant_columns(X: np.ndarray) -> np.ndarray:
    """Columns whose non-missing values are all equal (or that are all missing)."""
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    return ~(hi > lo)


def _share_group_credit(group_map, position, solo_mean, solo_std, joint_stats):
    """Per-feature and per-group importances from solo and joint shuffles.

    A single feature's group importance is its own. A multi-feature group's is
    its joint shuffle's, shared among its members in proportion to their solo
    importances (clipped at zero; evenly when none is positive).
    """
    importances, std = solo_mean.copy(), solo_std.copy()
    group_imp, group_std = {}, {}
    for g, members in group_map.items():
        cols = [position[f] for f in members]
        if len(cols) == 1:
            group_imp[g], group_std[g] = solo_mean[cols[0]], solo_std[cols[0]]
            continue
        gi, gs = joint_stats[tuple(cols)]
        group_imp[g], group_std[g] = gi, gs
        share = np.clip(solo_mean[cols], 0.0, None)
        share = share / share.sum() if share.sum() > 0 else np.full(len(cols), 1.0 / len(cols))
        importances[cols], std[cols] = gi * share, gs * share
    return importances, std, group_imp, group_std


# ---------------------------------------------------------------------- options


def _check_options(
    *,
    groups,
    scoring,
    n_jobs,
    estimator,
    cv,
    n_estimators,
    n_repeats,
    max_train_samples,
    max_eval_samples,
    test_size,
    correlation_threshold,
    noise_alpha,
    n_shadow,
    companion,
) -> None:
    """Refuse bad options before any work."""
    check_choice("companion", companion, COMPANIONS)
    check_int("n_repeats", n_repeats)
    check_int("n_estimators", n_estimators, words=("auto",))
    check_int("cv", cv, low=2, allow_none=True, words=("auto",))  # None: one split
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        check_int(name, value, allow_none=True)
    for name, value in (
        ("test_size", test_size),
        ("correlation_threshold", correlation_threshold),
        ("noise_alpha", noise_alpha),
    ):
        check_number(name, value, low=0.0, high=1.0, open_interval=True)
    if n_shadow is not None:
        warnings.warn(
            "score_features: n_shadow is no longer used (the weak test compares each group's per-row loss "
            "increases with zero, without shadow features) and will be removed; leave it out.",
            FutureWarning,
            stacklevel=3,
        )
    if groups is not None and groups != "auto" and not isinstance(groups, Mapping):
        raise ConfigError(
            "Received an invalid value for groups, expected 'auto', None or a dict {group: [features]}. "
            f"Received: groups={groups!r}"
        )
    if scoring is not None and not callable(scoring):
        if not isinstance(scoring, str) or (scoring not in BATCHED_METRICS and scoring not in get_scorer_names()):
            raise ConfigError(
                "Received an invalid value for scoring, expected None, a scikit-learn scorer name (for example "
                f"{list(BATCHED_METRICS)[:4]}) or a callable. Received: scoring={scoring!r}"
            )
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
        raise ConfigError(
            f"Received an invalid value for n_jobs, expected None or a non-zero integer (-1: every core). "
            f"Received: n_jobs={n_jobs!r}"
        )
    if estimator is not None and not (hasattr(estimator, "fit") and hasattr(estimator, "get_params")):
        raise ConfigError(
            f"Received an invalid value for estimator, expected a scikit-learn estimator. Received: {estimator!r}"
        )


def _check_metric(metric, task: str) -> None:
    if isinstance(metric, str) and metric in BATCHED_METRICS:
        applies = BATCHED_METRICS[metric].applies_to
        family = "regression" if task == "regression" else "classification"
        if applies not in (family, task):
            raise ConfigError(f"scoring={metric!r} does not apply to task {task!r}.")


def _encode_target(y_values: np.ndarray, task: str):
    """``(y as floats or class indices, class labels or None)``."""
    if task == "regression":
        y_fit = y_values.astype(np.float64)
        _check_magnitude(y_fit)
        return y_fit, None
    labels, y_fit = np.unique(y_values.astype(str) if y_values.dtype.kind == "O" else y_values, return_inverse=True)
    return y_fit, labels


# --------------------------------------------------------------------- measure


def _measure(splits, X_rows, position, y_fit, column_sets, fit, *, n_repeats, metric, task, n_classes, seeds, progress):
    """Fit a proxy per split and shuffle its held-out rows.

    Returns ``(baseline, mean drops, drop spread, per-row deltas)``: baseline
    and mean drops are averaged over the splits in proportion to their held-out
    rows; the spread is over every split's repeats; the per-row deltas of all
    held-out rows are side by side.
    """
    baselines, drops, deltas, weights = [], [], [], []
    for (train, evaluate), (forest_seed, perm_seed) in zip(splits, seeds):
        proxy = fit(forest_seed, X_rows[position[train]], y_fit[train])
        read = columns_read(proxy, X_rows.shape[1])
        # Shuffling columns no tree splits on changes no prediction: their drops are exactly zero.
        active = [i for i, cols in enumerate(column_sets) if read is None or read[cols].any()]
        result = permutation_drops(
            proxy,
            X_rows[position[evaluate]],
            y_fit[evaluate],
            [column_sets[i] for i in active],
            n_repeats=n_repeats,
            metric=metric,
            task=task,
            random_state=perm_seed,
            n_classes=n_classes,
            progress=progress,
        )
        if not (np.isfinite(result.baseline) and np.all(np.isfinite(result.drops))):
            raise DataError(
                f"The held-out {metric} of the proxy is not finite (baseline {result.baseline}), so no importance "
                "can be measured. Check y for extreme values, or pass another scoring."
            )
        progress.update((len(column_sets) - len(active)) * n_repeats)
        baselines.append(result.baseline)
        drops.append(np.zeros((len(column_sets), n_repeats)))
        drops[-1][active] = result.drops
        deltas.append(np.zeros((len(column_sets), len(evaluate))))
        deltas[-1][active] = result.row_deltas
        weights.append(len(evaluate))
    w = np.asarray(weights, dtype=float) / sum(weights)
    means = sum(wk * d.mean(axis=1) for wk, d in zip(w, drops))
    spread = np.concatenate(drops, axis=1).std(axis=1)
    return float(np.dot(w, baselines)), means, spread, np.concatenate(deltas, axis=1)


def _companion_deltas(seeds, pairwise, *args, **measure):
    """The companion's per-row loss increases on the forests' held-out rows (``(None, why)`` if it fails).

    ``args`` and ``measure`` are :func:`_measure`'s (``n_repeats`` the companion's own); the companion
    shuffles with its own ``seeds``; ``pairwise``: the features' pairwise products join them.
    """
    task = measure["task"]
    linear = linear_proxy(task, pairwise=pairwise)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = _measure(
                *args,
                # float64: a linear model fits y in X's dtype, and float32 overflows on targets a forest takes.
                lambda seed, X_fit, y_fit: LinearCompanion(
                    fit_proxy(linear, task, None, None, seed, X_fit.astype(np.float64), y_fit)
                ),
                seeds=[(0, int(s)) for s in seeds],
                **measure,
            )
    except DataError as exc:
        return None, str(exc)
    return result[3], None


def _companion_metric(task: str, metric):
    """The companions' score: log loss for classes; for regression ``metric`` if batched, else squared error.

    A companion is not a scikit-learn estimator, so a scorer outside ``BATCHED_METRICS`` cannot be called on
    it (the weak test of such a scorer uses squared error for the forest too).
    """
    if task != "regression":
        return COMPANION_CLASS_METRIC
    return metric if isinstance(metric, str) and metric in BATCHED_METRICS else "neg_mean_squared_error"


def _encode_rows(table, splits):
    """The encoded rows the splits use, and each row's position among them (other rows are never encoded)."""
    used = np.unique(np.concatenate([rows for split in splits for rows in split]))
    position = np.zeros(table.n_rows, dtype=np.intp)
    position[used] = np.arange(len(used))
    return table.encode(used), position


# ---------------------------------------------------------------- the scorer


def score_features(
    X,
    y,
    *,
    task: str = "auto",
    groups: str | Mapping[str, list[str]] | None = "auto",
    n_repeats: int = 5,
    random_state=None,
    n_jobs: int | None = None,
    estimator=None,
    scoring: str | None = None,
    cv: int | str | None = "auto",
    test_size: float = 0.2,
    max_train_samples: int | None = 3000,
    max_eval_samples: int | None = 2000,
    n_estimators: int | str = "auto",
    correlation_threshold: float = 0.8,
    noise_alpha: float = 0.05,
    companion: str | None = "pairwise",
    n_shadow: int | None = None,
    verbose: int = 0,
) -> FeatureScores:
    """Score features with a random-forest permutation proxy on held-out rows.

    Rows: below ``CROSS_FIT_BELOW`` (5,000) rows the rows are cut into
    ``round(1 / test_size)`` folds (5) and a forest is fitted per fold on the
    other folds and scored on its own, so every row is held out once
    (cross-fitting); from 5,000 rows one split holds out ``test_size`` of
    them. Classification splits are stratified. Each forest is fitted on at
    most ``max_train_samples`` rows and scored on at most ``max_eval_samples``
    held-out rows (a class the subsample rounds away gets a row back where one
    is spare, so the forest knows every class). Each feature group is shuffled
    ``n_repeats`` times on the held-out rows; its importance is the mean drop
    of the held-out score, averaged over the folds.

    Groups: with ``groups="auto"``, numeric and boolean features whose absolute
    Spearman correlation is at least ``correlation_threshold`` (every pair, by
    complete linkage, on the first forest's training rows) form a group that
    is shuffled jointly, so that near-copies do not hide each other. Each
    feature is also shuffled alone; members of a group share the group's
    importance in proportion to those solo importances (evenly if none is
    positive).

    The weak test: on held-out rows, shuffling a feature the target does not
    depend on raises each row's loss by zero on average, however the proxy
    used it. For each group, every held-out row's loss increase (averaged
    over the repeats; the metric's own per-row loss, squared error for
    ``"r2"``, the Brier score for classification) is tested against zero
    with a one-sided Student-t test (with folds, its statistic is divided by
    the square root of the folds' measured dependence, per proxy:
    :mod:`archguide.scoring._weak_test`),
    and the groups' p-values go through the
    Benjamini-Hochberg procedure at false discovery rate ``noise_alpha``: a
    group it does not reject is weak. On pure noise (no group matters) that
    bounds the chance of any non-weak group by ``noise_alpha``; otherwise
    it bounds the expected share of noise among the non-weak groups. A
    column that is constant, or that neither proxy reads, changes no loss and
    is weak. Companions are linear models fitted beside each forest on the
    same rows and shuffled on the same held-out rows (``COMPANION_REPEATS`` =
    25 times per group, or ``n_repeats`` if more: their shuffles cost little;
    for classes their loss is log loss, ``COMPANION_CLASS_METRIC``, whatever
    ``metric`` the forest's importances use):
    with ``companion="pairwise"`` (the default) one on the features and one
    on the features and all their pairwise products (up to
    ``MAX_PAIRWISE_FEATURES`` = 50 features; beyond, the first alone), with
    ``"linear"`` the first alone. A group's p-value is Simes' combination of
    the proxies' (:func:`archguide.scoring._weak_test.either_p_value`), so a group
    that any proxy needs is kept: a forest on few rows sees a faint linear
    effect poorly and misses a pure interaction (``x_a * x_b``, no main
    effect) when stronger effects take its splits; a linear model cannot see
    an interaction, a model of pairwise products can. The p-values are in
    ``group_p_values``; the rule as applied is in ``decisions``. Importances
    are the forest's alone.

    Args:
        X: DataFrame or 2-D array of shape ``(n_samples, n_features)``.
            Numeric, boolean and categorical columns; missing values allowed.
            Read only, never modified.
        y: Target, one value per row (Series, list or array); no missing values.
        task: ``"auto"``, ``"regression"``, ``"classification"``, ``"binary"``
            or ``"multiclass"``. ``"auto"`` decides from ``y`` (see
            :func:`resolve_task`) and logs its decision; the result's ``task``
            says what was decided.
        groups: ``"auto"``, ``None`` (every feature alone) or a dict
            ``{group: [features]}``; features not named stay alone.
        n_repeats: Shuffles per group (per fold).
        random_state: Seed (int), ``numpy.random.RandomState`` or None. Same
            seed, same scores, to the bit with ``n_jobs=None``; with several
            jobs the forest adds its trees' predictions in thread order, so
            the last digits may differ between runs.
        n_jobs: Parallel jobs of the default forest (fit and predict), as in
            scikit-learn; ``-1`` uses every core. Runs inside any joblib
            backend the caller sets up.
        estimator: Any scikit-learn estimator to use as the proxy instead of
            the forest (None: a random forest with ``min_samples_leaf=3``,
            for classes grown as regression trees on the class indicators,
            which split as a Gini classifier and fit faster; see
            :class:`archguide.scoring._proxy.IndicatorForestClassifier`). It is
            cloned and fitted on a float matrix in which categoricals are
            integer codes and missing values are NaN (wrap it in a Pipeline
            with a SimpleImputer if it cannot take NaN).
        scoring: The held-out score whose drop is measured. Defaults:
            ``"r2"`` for regression, ``"neg_brier_score"`` for classification.
            The Brier score rather than accuracy because it is continuous:
            accuracy moves in steps of one row and ignores confidence, so a
            near-perfect classifier shows no drop for features it relies on;
            log loss explodes on a forest's zero probabilities. ``"r2"``,
            ``"neg_mean_squared_error"``, ``"neg_mean_absolute_error"``,
            ``"accuracy"``, ``"balanced_accuracy"``, ``"neg_brier_score"``,
            ``"neg_log_loss"`` and ``"roc_auc"`` are batched; any other
            scikit-learn scorer name or callable is called once per shuffled
            copy of the forest's rows (and its weak test uses squared error or
            the Brier score). The companions score squared error, or
            ``scoring`` if it is one of those batched, and log loss for
            classes (``COMPANION_CLASS_METRIC``).
        cv: ``"auto"`` (cross-fit below 5,000 rows), a number of folds, or
            ``None`` for one split of ``test_size`` held-out rows.
        test_size: Fraction of rows held out (one split), or one fold's share.
        max_train_samples: At most this many rows fit each forest (None: all
            training rows).
        max_eval_samples: At most this many held-out rows per forest are
            shuffled (None: all held-out rows).
        n_estimators: Trees per forest. ``"auto"``: 100 with folds (few rows,
            cheap trees, steadier scores), 30 on one split.
        correlation_threshold: Absolute Spearman correlation at which features
            are grouped by ``groups="auto"``.
        noise_alpha: False discovery rate of the weak test.
        companion: ``"pairwise"``, ``"linear"`` or None: the proxies beside
            the forest in the weak test, fitted on each forest's training
            rows: standardised ridge regression (``alpha=1``), or logistic
            regression (``C=1``) for classes, after mean imputation
            (categoricals enter as their codes), on the features
            (``"linear"``), and with ``"pairwise"`` a second one on the
            features and their pairwise products (standardised again).
            None: the forest alone. The pairwise companion's figures are in
            ``benchmarks/bench_power.py``'s power tables (truth sets 1 and
            2; the documentation's benchmarks). As first measured, the linear one alone: On the known-truth data of
            ``benchmarks/bench_power.py`` at 1,000 rows (30 seeds) the
            linear companion raised the share of informative features kept
            from 0.928 to 0.983 (regression) and 0.867 to 0.922
            (classification), the faint linear effect from 0.633 to 0.967 and
            0.300 to 0.700, with fewer noise features kept (0.013 to 0.008,
            0.013 to 0.006), for 3% (regression) and 6% (classification) more
            time (``--only companion`` and the power table). Its fit and
            shuffles are skipped, with a decision logged, if it cannot be
            fitted.
        n_shadow: No longer used (the weak test needs no shadow features);
            passing it warns. Will be removed.
        verbose: Print the decisions taken and show a progress bar.

    Returns:
        A :class:`FeatureScores`.

    Raises:
        DataError: ``X`` or ``y`` cannot be used (see :func:`archguide.schema.as_table`),
            fewer than ``MIN_ROWS`` rows, a single class, a class with one row,
            a regression target so large that its squares overflow, or a
            held-out score that is not finite.
        ConfigError: an option is out of range (checked before any work), or
            the proxy estimator has an invalid parameter.

    Warns:
        ArchguideWarning: fewer than ``FEW_EVAL_ROWS`` (50) held-out rows, or
            a class with fewer than ``FEW_CLASS_ROWS`` (5) held-out rows.

    Example:
        >>> from sklearn.datasets import make_friedman1
        >>> X, y = make_friedman1(n_samples=2000, n_features=10, random_state=0)
        >>> scores = score_features(X, y, random_state=0)
        >>> scores.importances.nlargest(5).index.sort_values().tolist()
        ['x0', 'x1', 'x2', 'x3', 'x4']
        >>> scores.n_folds, int(scores.weak.sum())
        (5, 5)
    """
    _check_options(
        groups=groups, scoring=scoring, n_jobs=n_jobs, estimator=estimator, cv=cv, n_estimators=n_estimators,
        n_repeats=n_repeats, max_train_samples=max_train_samples, max_eval_samples=max_eval_samples,
        test_size=test_size, correlation_threshold=correlation_threshold, noise_alpha=noise_alpha,
        n_shadow=n_shadow, companion=companion,
    )  # fmt: skip
    rng = check_seed(random_state)
    table, group_map, y_values = _checked_data(X, y, groups, correlation_threshold)
    log = _Decisions(verbose)
    asked = task
    task = resolve_task(task, y_values)
    if asked != task:
        log.decide(f"task={asked!r} resolved to {task!r} from y.")
    metric = scoring if scoring is not None else default_metric(task)
    _check_metric(metric, task)
    y_fit, class_labels = _encode_target(y_values, task)

    counts = None if class_labels is None else np.bincount(y_fit)
    n_folds = n_folds_for(cv, table.n_rows, test_size, counts)
    trees = (AUTO_TREES[0] if n_folds > 1 else AUTO_TREES[1]) if n_estimators == "auto" else n_estimators
    split_seed = int(rng.randint(_SEED_MAX))
    seeds = [tuple(int(s) for s in pair) for pair in rng.randint(_SEED_MAX, size=(n_folds, 2))]
    companion_seeds = rng.randint(_SEED_MAX, size=n_folds) if companion is not None else None
    splits = row_splits(
        y_fit, task, table.n_rows, n_folds=n_folds, test_size=test_size, max_train_samples=max_train_samples,
        max_eval_samples=max_eval_samples, seed=split_seed,
    )  # fmt: skip
    rows = _Rows(table, y_fit, splits)
    _warn_if_few_rows(y_fit[rows.evaluated], class_labels)
    _decide_rows(log, cv, table.n_rows, n_folds, rows, estimator is None, task, trees, n_estimators)
    if group_map is None:
        first_train = rows.X[rows.position[splits[0][0]]]
        group_map = resolve_groups(groups, table, first_train, _constant_columns(first_train), correlation_threshold)
    shuffled = _ShuffledSets(table.names, group_map, _constant_columns(rows.X[rows.position[rows.evaluated]]))

    companion_repeats = 0 if companion is None else max(n_repeats, COMPANION_REPEATS)
    total = n_folds * len(shuffled.column_sets) * (n_repeats + companion_repeats)
    progress = _progress(total=total, verbose=verbose, desc="permutation")
    measure = {
        "n_repeats": n_repeats, "metric": metric, "task": task, "n_classes": None if class_labels is None else
        len(class_labels), "progress": progress,
    }  # fmt: skip
    args = (splits, rows.X, rows.position, y_fit, shuffled.column_sets)
    baseline, means, spread, row_deltas = _measure(
        *args, lambda seed, X_fit, y_fit_: fit_proxy(estimator, task, trees, n_jobs, seed, X_fit, y_fit_),
        seeds=seeds, **measure,
    )  # fmt: skip
    measure.update(n_repeats=companion_repeats, metric=_companion_metric(task, metric))
    companion_deltas = _all_companion_deltas(log, companion, companion_seeds, len(table.names), args, measure)
    progress.close()

    group_p = _weak_test(shuffled, row_deltas, companion_deltas, n_folds)
    weak_group = {g: not kept for g, kept in zip(group_p, discoveries(np.array(list(group_p.values())), noise_alpha))}
    log.decide(
        _weak_test_decision(len(rows.evaluated), n_folds, n_repeats, companion_repeats, len(companion_deltas), task)
        + f" Benjamini-Hochberg at false discovery rate {noise_alpha:g}: {sum(weak_group.values())} of "
        f"{len(group_map)} groups weak."
    )
    return _feature_scores(
        shuffled, means, spread, group_p, weak_group, table=table, task=task, metric=metric, baseline=baseline,
        noise_alpha=noise_alpha, n_train=rows.n_train, n_eval=len(rows.evaluated), n_repeats=n_repeats,
        n_folds=n_folds, decisions=tuple(log.decisions),
    )  # fmt: skip


def _checked_data(X, y, groups, correlation_threshold):
    """``(table, groups by hand or None for "auto", y)``, checked (the groups against the columns)."""
    table = as_table(X)
    y_values = check_target(y, table.n_rows)
    # Groups given by hand are checked against the columns now; "auto" needs the training rows.
    group_map = None if groups == "auto" else resolve_groups(groups, table, None, None, correlation_threshold)
    if table.n_rows < MIN_ROWS:
        raise DataError(
            f"score_features needs at least {MIN_ROWS} rows (to fit the proxy and hold some out). "
            f"Received {table.n_rows} rows."
        )
    return table, group_map, y_values


class _Decisions:
    """The decisions ``score_features`` takes, logged, kept for ``FeatureScores.decisions``, printed if verbose."""

    def __init__(self, verbose: int):
        self.verbose, self.decisions = verbose, []

    def decide(self, message: str) -> None:
        self.decisions.append(message)
        logger.info("score_features: %s", message)
        if self.verbose:
            print(f"score_features: {message}")


class _Rows:
    """The encoded rows the splits use (others are never encoded), each row's position among them, the
    held-out rows of every split, and the most rows a proxy is fitted on."""

    def __init__(self, table, y_fit, splits):
        self.X, self.position = _encode_rows(table, splits)
        self.evaluated = np.concatenate([evaluate for _, evaluate in splits])
        self.n_train = max(len(train) for train, _ in splits)


def _decide_rows(log: _Decisions, cv, n_rows: int, n_folds: int, rows: _Rows, forest: bool, task, trees, n_estimators):
    """Log how the rows were split, and the forest's size."""
    if n_folds > 1:
        log.decide(
            f"{n_folds} folds (cv={cv!r}, {n_rows:,} rows): a forest per fold, fitted on up to "
            f"{rows.n_train:,} rows; every one of {len(rows.evaluated):,} held-out rows scored once."
        )
    else:
        log.decide(
            f"one split (cv={cv!r}): proxy fitted on {rows.n_train:,} rows, scored on {len(rows.evaluated):,} "
            "held-out rows."
        )
    if forest:
        grown = "" if task == "regression" else ", regression trees on the class indicators (Gini's splits)"
        log.decide(f"proxy: random forest of {trees} trees{grown} (n_estimators={n_estimators!r}).")


class _ShuffledSets:
    """What is shuffled: each non-constant feature alone (``solo``), then each group of several jointly."""

    def __init__(self, names, group_map, constant):
        self.names, self.group_map = list(names), group_map
        self.name_at = {n: j for j, n in enumerate(self.names)}
        self.solo = [j for j in range(len(self.names)) if not constant[j]]
        self.joint = [[self.name_at[f] for f in m] for m in group_map.values() if len(m) > 1]
        self.column_sets = [[j] for j in self.solo] + self.joint

    def p_values(self, row_deltas, n_folds: int, fold_variance=FOLD_VARIANCE) -> dict[str, float]:
        """The weak test's p-value per group: from its joint shuffle, or its single feature's (1 if never shuffled)."""
        set_of = {j: i for i, j in enumerate(self.solo)}
        set_of.update({tuple(cols): len(self.solo) + i for i, cols in enumerate(self.joint)})
        set_p = row_p_values(row_deltas, n_folds, fold_variance)
        group_p = {}
        for g, members in self.group_map.items():
            key = self.name_at[members[0]] if len(members) == 1 else tuple(self.name_at[f] for f in members)
            group_p[g] = float(set_p[set_of[key]]) if key in set_of else 1.0
        return group_p


def _all_companion_deltas(log: _Decisions, companion, seeds, p: int, args, measure) -> list:
    """``(per-row loss increases, fold variance)`` of each companion that could be scored: the linear one,
    then the pairwise one."""
    if companion is None:
        return []
    pairwise = companion == "pairwise" and p <= MAX_PAIRWISE_FEATURES
    if companion == "pairwise" and not pairwise:
        log.decide(f"companion='pairwise': {p} features, more than {MAX_PAIRWISE_FEATURES}; the linear one alone.")
    found = []
    for products in (False, True) if pairwise else (False,):
        deltas, failed = _companion_deltas(seeds, products, *args, **measure)
        if failed:
            which = "pairwise" if products else "linear"
            log.decide(f"companion={which!r} skipped, its model could not be scored: {failed}")
        else:
            found.append((deltas, PAIRWISE_FOLD_VARIANCE if products else LINEAR_FOLD_VARIANCE))
    return found


def _weak_test(shuffled: _ShuffledSets, row_deltas, companion_deltas: list, n_folds: int) -> dict[str, float]:
    """Each group's p-value: the forest's, or with companions Simes' combination (kept if any proxy needs it)."""
    group_p = shuffled.p_values(row_deltas, n_folds)
    if companion_deltas:
        others = [shuffled.p_values(d, n_folds, v) for d, v in companion_deltas]
        combined = either_p_value(np.array(list(group_p.values())), *[[q[g] for g in group_p] for q in others])
        group_p = dict(zip(group_p, combined.tolist()))
    return group_p


def _weak_test_decision(n_eval: int, n_folds: int, n_repeats: int, companion_repeats: int, n_companions: int, task):
    """The weak test as applied, in words (the start of its decision)."""
    widened = f" (t widened for {n_folds} cross-fitted folds)" if n_folds > 1 else ""
    named = ("the linear companion", "the pairwise companion")[:n_companions]
    both = (
        f" for the forest ({n_repeats} shuffles per group) and {' and '.join(named)} "
        f"({companion_repeats} each{'' if task == 'regression' else ', on log loss'}), combined by Simes,"
        if n_companions
        else ""
    )
    return f"weak test: one-sided t-test of {n_eval:,} held-out rows' loss increases per group{widened}{both}"


def _feature_scores(shuffled: _ShuffledSets, means, spread, group_p, weak_group, *, table, metric, **fields):
    """The :class:`FeatureScores` of the measured drops: group credit shared, weak flags per feature."""
    names, group_map, p = shuffled.names, shuffled.group_map, len(shuffled.names)
    n_solo = len(shuffled.solo)
    solo_mean, solo_std = np.zeros(p), np.zeros(p)  # constant columns keep 0: shuffling them changes nothing
    solo_mean[shuffled.solo], solo_std[shuffled.solo] = means[:n_solo], spread[:n_solo]
    joint_stats = {tuple(cols): (means[n_solo + i], spread[n_solo + i]) for i, cols in enumerate(shuffled.joint)}
    importances, std, group_imp, group_std = _share_group_credit(
        group_map, shuffled.name_at, solo_mean, solo_std, joint_stats
    )
    weak_imp = [group_imp[g] for g in group_map if weak_group[g]]
    group_of = {f: g for g, m in group_map.items() for f in m}
    index = pd.Index(names, dtype=object)
    group_index = pd.Index(list(group_map), dtype=object)
    return FeatureScores(
        importances=pd.Series(importances, index=index, name="importance"),
        std=pd.Series(std, index=index, name="std"),
        groups=group_map,
        group_importances=pd.Series([group_imp[g] for g in group_map], index=group_index, name="group_importance"),
        group_std=pd.Series([group_std[g] for g in group_map], index=group_index, name="group_std"),
        weak=pd.Series([weak_group[group_of[n]] for n in names], index=index, name="weak", dtype=bool),
        metric=metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric)),
        baseline_score=fields.pop("baseline"),
        noise_threshold=float(max(weak_imp)) if weak_imp else 0.0,
        individual_importances=pd.Series(solo_mean, index=index, name="individual_importance"),
        feature_types=dict(table.kinds),
        group_p_values=pd.Series(list(group_p.values()), index=group_index, name="p_value"),
        noise_alpha=float(fields.pop("noise_alpha")),
        **fields,
    )
