"""Feature scoring: a random-forest permutation proxy, feature groups and a noise baseline.

The first stage of the pipeline. :func:`score_features` fits a fast random
forest on a sample of the rows and measures permutation importance on held-out
rows only: importance on training rows measures what the forest can overfit,
not what generalises.

How it stays fast on large tables:

- the forest is fitted on at most ``max_train_samples`` rows with
  ``n_estimators`` trees, and importance is measured on at most
  ``max_eval_samples`` held-out rows; only those rows are ever encoded;
- every shuffled copy of the held-out rows (one per feature group and repeat)
  is stacked and predicted in a few large calls instead of one call per copy.

The shuffles are drawn exactly as :func:`sklearn.inspection.permutation_importance`
draws them, so for the same fitted estimator, rows and ``random_state`` the
importances are the same numbers; batching changes the speed, not the result.
Set ``max_train_samples=None``, ``max_eval_samples=None`` and pass your own
``estimator`` to reproduce a full-data recipe.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from scipy.stats import t as student_t
from sklearn.base import clone, is_classifier
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.metrics import (
    balanced_accuracy_score,
    get_scorer,
    get_scorer_names,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import InvalidParameterError

from archguide._checks import check_choice, check_int, check_number, check_seed
from archguide._permutation import copies_per_chunk, effective_permutations, stacked_copies
from archguide.exceptions import ArchguideWarning, ConfigError, DataError
from archguide.schema import Table, as_table, check_target, format_names, repeated, unique_name

__all__ = ["FeatureScores", "score_features", "MIN_ROWS"]

logger = logging.getLogger("archguide")

#: The fewest rows :func:`score_features` accepts: 8 to fit the proxy, 2 held out.
MIN_ROWS = 10
#: Below this many held-out rows, scores come with a warning that they are mostly noise.
FEW_EVAL_ROWS = 50
#: A class with fewer held-out rows than this is named in a warning.
FEW_CLASS_ROWS = 5
TASKS = ("auto", "regression", "classification", "binary", "multiclass")
# An integer-valued target with at most this many distinct values is taken as class labels.
MAX_AUTO_CLASSES = 20


@dataclass(frozen=True, eq=False)
class FeatureScores:
    """Feature importances from :func:`score_features`.

    Attributes:
        importances: Importance per feature (pd.Series, index = feature names in
            the input's column order; higher = more important). It is the drop
            of the proxy's held-out score when the feature's group is shuffled;
            members of a multi-feature group share their group's importance in
            proportion to their importance when shuffled alone.
        std: Spread of ``importances`` over the repeats (pd.Series). For a
            member of a multi-feature group this is not a spread measured on
            its own: it is the group's spread (``group_std``) times the
            member's share of the group's importance, the same scaling its
            importance gets.
        groups: Group name -> its features. Every feature is in exactly one group.
        group_importances: Importance per group (pd.Series), the drop when the
            whole group is shuffled jointly.
        group_std: Spread of ``group_importances`` over the repeats.
        weak: pd.Series[bool]: the feature's group cannot be told apart from
            noise (``group importance <= noise_threshold``).
        task: ``"regression"``, ``"binary"`` or ``"multiclass"``.
        metric: The score whose drop is measured (``"r2"``, ``"accuracy"``, ...).
        baseline_score: The proxy's held-out score with nothing shuffled.
        noise_threshold: Importance at or below which a group is weak.
        individual_importances: Importance of each feature shuffled alone;
            for features in multi-feature groups this is usually much smaller
            than the group's, as their near-copies stand in for them.
        feature_types: Feature -> ``"numeric"`` | ``"boolean"`` | ``"categorical"``.
        shadow_importances: Importances of the shadow features (shuffled
            copies of real ones) that the noise threshold is estimated from.
        n_train: Rows the proxy was fitted on.
        n_eval: Held-out rows importance was measured on.
        n_repeats: Shuffles per group.
    """

    importances: pd.Series
    std: pd.Series
    groups: dict[str, list[str]]
    group_importances: pd.Series
    group_std: pd.Series
    weak: pd.Series
    task: str
    metric: str
    baseline_score: float
    noise_threshold: float
    individual_importances: pd.Series
    feature_types: dict[str, str] = field(default_factory=dict)
    shadow_importances: tuple[float, ...] = ()
    n_train: int = 0
    n_eval: int = 0
    n_repeats: int = 0

    @property
    def features(self) -> list[str]:
        """Feature names, in the input's column order."""
        return list(self.importances.index)

    @property
    def group_of(self) -> dict[str, str]:
        """Feature -> the name of its group."""
        return {f: g for g, members in self.groups.items() for f in members}

    def to_frame(self, *, sort: bool = True) -> pd.DataFrame:
        """One row per feature: importance, std, group, group importance, weak, ...

        Args:
            sort: Most important first (the default); otherwise input order.
        """
        group_of = self.group_of
        frame = pd.DataFrame(
            {
                "importance": self.importances,
                "std": self.std,
                "group": [group_of[f] for f in self.features],
                "group_importance": [self.group_importances[group_of[f]] for f in self.features],
                "weak": self.weak,
                "individual_importance": self.individual_importances,
                "type": [self.feature_types.get(f, "numeric") for f in self.features],
            },
            index=pd.Index(self.features, name="feature"),
        )
        if sort:
            frame = frame.sort_values("importance", ascending=False, kind="stable")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain lists, floats and strings); see :meth:`from_dict`."""
        return {
            "features": self.features,
            "importances": _floats(self.importances),
            "std": _floats(self.std),
            "individual_importances": _floats(self.individual_importances),
            "weak": [bool(v) for v in self.weak],
            "groups": {g: list(m) for g, m in self.groups.items()},
            "group_importances": dict(zip(self.group_importances.index, _floats(self.group_importances))),
            "group_std": dict(zip(self.group_std.index, _floats(self.group_std))),
            "task": self.task,
            "metric": self.metric,
            "baseline_score": float(self.baseline_score),
            "noise_threshold": float(self.noise_threshold),
            "feature_types": dict(self.feature_types),
            "shadow_importances": [float(v) for v in self.shadow_importances],
            "n_train": int(self.n_train),
            "n_eval": int(self.n_eval),
            "n_repeats": int(self.n_repeats),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureScores:
        """Rebuild scores from :meth:`to_dict` output.

        Raises:
            DataError: a required key is missing or the lists disagree in length.
        """
        required = ("features", "importances", "std", "weak", "groups", "group_importances", "task")
        missing = [k for k in required if k not in data]
        if missing:
            raise DataError(f"FeatureScores.from_dict: missing keys {format_names(missing)}.")
        features = [str(f) for f in data["features"]]
        for key in ("importances", "std", "weak"):
            if len(data[key]) != len(features):
                raise DataError(
                    f"FeatureScores.from_dict: {key!r} has {len(data[key])} values for {len(features)} features."
                )
        groups = {str(g): [str(f) for f in m] for g, m in data["groups"].items()}
        names = list(groups)

        def series(values, index, name, dtype=float):
            return pd.Series(np.asarray(values, dtype=dtype), index=pd.Index(index, dtype=object), name=name)

        gi = data["group_importances"]
        gs = data.get("group_std", dict.fromkeys(names, 0.0))
        return cls(
            importances=series(data["importances"], features, "importance"),
            std=series(data["std"], features, "std"),
            groups=groups,
            group_importances=series([gi[g] for g in names], names, "group_importance"),
            group_std=series([gs[g] for g in names], names, "group_std"),
            weak=series(data["weak"], features, "weak", dtype=bool),
            task=str(data["task"]),
            metric=str(data.get("metric", "")),
            baseline_score=float(data.get("baseline_score", float("nan"))),
            noise_threshold=float(data.get("noise_threshold", 0.0)),
            individual_importances=series(
                data.get("individual_importances", data["importances"]), features, "individual_importance"
            ),
            feature_types={str(k): str(v) for k, v in data.get("feature_types", {}).items()},
            shadow_importances=tuple(float(v) for v in data.get("shadow_importances", ())),
            n_train=int(data.get("n_train", 0)),
            n_eval=int(data.get("n_eval", 0)),
            n_repeats=int(data.get("n_repeats", 0)),
        )

    def plot(self, ax=None, *, top: int | None = None):
        """Bar chart of importances with error bars; weak features set apart, groups coloured.

        Args:
            ax: A matplotlib Axes to draw on (a new figure when None).
            top: Show only the ``top`` most important features.

        Returns:
            The matplotlib Axes.
        """
        from archguide.report import plot_scores

        return plot_scores(self, ax=ax, top=top)

    def __repr__(self) -> str:
        n_groups = len(self.groups)
        head = (
            f"FeatureScores(task={self.task!r}, metric={self.metric!r}, {len(self.features)} features "
            f"in {n_groups} groups, {int(self.weak.sum())} weak, noise threshold {self.noise_threshold:.4g})"
        )
        frame = self.to_frame()[["importance", "std", "group", "weak"]]
        shown = frame.head(10).to_string(float_format=lambda v: f"{v:.4f}")
        more = f"\n... {len(frame) - 10} more" if len(frame) > 10 else ""
        return f"{head}\n{shown}{more}"


def _floats(series: pd.Series) -> list[float]:
    return [float(v) for v in series.to_numpy()]


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


# ------------------------------------------------------------------------- metrics


def _regression_metric(fn, sign):
    def score(y_true, pred):  # pred: (k, n_eval) -> k scores
        return sign * fn(np.broadcast_to(y_true[:, None], pred.T.shape), pred.T, multioutput="raw_values")

    return score


def _accuracy(y_true, pred):
    return (pred == y_true).mean(axis=1)


def _balanced_accuracy(y_true, pred):
    return np.array([balanced_accuracy_score(y_true, p) for p in pred])


def _neg_log_loss(y_true, proba):  # proba: (k, n_eval, n_classes), y_true: class indices
    picked = np.take_along_axis(proba, y_true[None, :, None], axis=2)[..., 0]
    eps = np.finfo(proba.dtype).eps
    return np.log(np.clip(picked, eps, 1.0)).mean(axis=1)


def _neg_brier(y_true, proba):  # as sklearn's brier_score_loss: halved for two classes
    onehot = np.eye(proba.shape[2])[y_true]
    loss = ((proba - onehot[None]) ** 2).sum(axis=2).mean(axis=1)
    return -(0.5 * loss if proba.shape[2] < 3 else loss)


def _roc_auc(y_true, proba):
    return np.array([roc_auc_score(y_true, p[:, 1]) for p in proba])


# name -> (tasks it applies to, "predict" | "proba", batched score function)
_BATCHED_METRICS = {
    "r2": ("regression", "predict", _regression_metric(r2_score, 1.0)),
    "neg_mean_squared_error": ("regression", "predict", _regression_metric(mean_squared_error, -1.0)),
    "neg_mean_absolute_error": ("regression", "predict", _regression_metric(mean_absolute_error, -1.0)),
    "accuracy": ("classification", "predict", _accuracy),
    "balanced_accuracy": ("classification", "predict", _balanced_accuracy),
    "neg_brier_score": ("classification", "proba", _neg_brier),
    "neg_log_loss": ("classification", "proba", _neg_log_loss),
    "roc_auc": ("binary", "proba", _roc_auc),
}


def _default_metric(task: str) -> str:
    return "r2" if task == "regression" else "neg_brier_score"


# ------------------------------------------------------------------ permutation


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

    Args:
        estimator: A fitted scikit-learn estimator.
        X_eval: Held-out rows, shape ``(n_eval, n_columns)``; not modified.
        y_eval: Held-out targets (class indices for classifiers).
        column_sets: Lists of column indices; each list is shuffled as one block.
        n_repeats: Shuffles per set.
        metric: A scikit-learn scorer name. The names in ``_BATCHED_METRICS``
            are computed from stacked predictions; any other scorer is called
            once per shuffled copy (exact, slower).
        random_state: Seed for the shuffles, as in ``permutation_importance``.
        verbose: Show a progress bar when positive.
        n_classes: For classifiers, the number of classes ``y_eval`` indexes;
            probability columns are laid out by the estimator's ``classes_``,
            so a class the estimator never saw gets probability 0.

    Returns:
        ``(baseline_score, importances)`` with importances of shape
        ``(len(column_sets), n_repeats)``: baseline minus shuffled score.
    """
    n_eval = X_eval.shape[0]
    perms = effective_permutations(n_eval, n_repeats, random_state)
    jobs = [(s, r) for s in range(len(column_sets)) for r in range(n_repeats)]
    scores = np.empty(len(jobs))

    def shuffled(chunk):
        """The held-out rows once per job, each copy with its column set shuffled."""
        return stacked_copies(X_eval, [(column_sets[s], X_eval[np.ix_(perms[r], column_sets[s])]) for s, r in chunk])

    progress = _progress(total=len(jobs), verbose=verbose, desc="permutation")
    if metric in _BATCHED_METRICS:
        _, response, score_fn = _BATCHED_METRICS[metric]
        predict = _aligned_proba(estimator, n_classes) if response == "proba" else estimator.predict

        def batch_scores(pred, k):
            pred = np.asarray(pred).reshape((k, n_eval) + np.shape(pred)[1:])
            return score_fn(y_eval, pred)

        baseline = float(batch_scores(predict(X_eval), 1)[0])
        per_chunk = copies_per_chunk(X_eval)
        for start in range(0, len(jobs), per_chunk):
            chunk = jobs[start : start + per_chunk]
            scores[start : start + len(chunk)] = batch_scores(predict(shuffled(chunk)), len(chunk))
            progress.update(len(chunk))
    else:
        scorer = get_scorer(metric) if isinstance(metric, str) else metric
        baseline = float(scorer(estimator, X_eval, y_eval))
        for i, job in enumerate(jobs):
            scores[i] = scorer(estimator, shuffled([job]), y_eval)
            progress.update(1)
    progress.close()
    return baseline, baseline - scores.reshape(len(column_sets), n_repeats)


def _aligned_proba(estimator, n_classes: int | None):
    """``predict_proba`` with one column per class index ``0 .. n_classes - 1``.

    A classifier fitted on a sample that lacks a class returns fewer columns than
    there are classes; its ``classes_`` say which indices the columns are.
    """
    classes = np.asarray(getattr(estimator, "classes_", []))
    if n_classes is None or len(classes) == n_classes:
        return estimator.predict_proba

    def predict_proba(X):
        proba = estimator.predict_proba(X)
        full = np.zeros((len(proba), n_classes), dtype=proba.dtype)
        full[:, classes.astype(int)] = proba
        return full

    return predict_proba


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


# ---------------------------------------------------------------------- groups


def correlation_groups(X: np.ndarray, names: list[str], eligible: list[int], threshold: float) -> list[list[int]]:
    """Cluster columns whose absolute Spearman correlation is at least ``threshold``.

    Complete linkage on ``1 - |rho|`` cut at ``1 - threshold``: within a
    returned group every pair of features correlates at least that strongly.
    Missing values take the column's mean rank. Columns not in ``eligible``
    (categoricals, constants) stay alone.

    Returns:
        Lists of column indices covering every column, ordered by first member.
    """
    singles = [[j] for j in range(len(names))]
    if len(eligible) < 2:
        return singles
    ranks = rankdata(X[:, eligible], axis=0, nan_policy="omit")
    col_mean = np.nanmean(ranks, axis=0)
    ranks = np.where(np.isnan(ranks), col_mean, ranks)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.corrcoef(ranks, rowvar=False)
    rho = np.nan_to_num(np.abs(np.atleast_2d(rho)), nan=0.0)
    dist = np.clip(1.0 - rho, 0.0, 1.0)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(
        linkage(squareform(dist, checks=False), method="complete"), t=1.0 - threshold, criterion="distance"
    )
    clusters: dict[int, list[int]] = {}
    for j, label in zip(eligible, labels):
        clusters.setdefault(label, []).append(j)
    grouped = {j for members in clusters.values() for j in members}
    out = [m for m in clusters.values()] + [s for s in singles if s[0] not in grouped]
    return sorted((sorted(m) for m in out), key=lambda m: m[0])


def named_correlation_groups(X: np.ndarray, names: list[str], eligible: list[int], threshold: float):
    """:func:`correlation_groups` as ``{group name: members}``: a lone feature by its name, others ``"a+b"``.

    A generated name ("a+b") must not collide with a feature's own name (a
    column called "a+b"): it then becomes ``"a+b#2"``.
    """
    clusters = correlation_groups(X, names, eligible, threshold)
    used = {names[m[0]] for m in clusters if len(m) == 1}
    named = {}
    for m in clusters:
        members = [names[j] for j in m]
        named[members[0] if len(m) == 1 else unique_name(_group_name(members), used, separator="#")] = members
    return named


def _resolve_groups(
    groups, table: Table, X_train: np.ndarray, constant_train: np.ndarray, threshold: float
) -> dict[str, list[str]]:
    names = list(table.names)
    if groups is None:
        return {n: [n] for n in names}
    if isinstance(groups, str):
        eligible = [j for j, n in enumerate(names) if table.kinds[n] != "categorical" and not constant_train[j]]
        return named_correlation_groups(X_train, names, eligible, threshold)
    known = set(names)
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for group, members in groups.items():
        members = [members] if isinstance(members, str) else [str(m) for m in members]
        unknown = [m for m in members if m not in known]
        if unknown:
            raise DataError(
                f"groups[{str(group)!r}] names features that are not columns of X: {format_names(unknown)}."
            )
        if not members:
            raise DataError(f"groups[{str(group)!r}] is empty; every group needs at least one feature.")
        twice = repeated(members)
        if twice:
            raise DataError(
                f"groups[{str(group)!r}] lists {format_names(twice)} more than once; list each feature once."
            )
        twice = [m for m in members if m in owner]
        if twice:
            raise DataError(
                f"Features {format_names(twice)} are in groups[{owner[twice[0]]!r}] and groups[{str(group)!r}]; "
                "a feature belongs to one group."
            )
        owner.update(dict.fromkeys(members, str(group)))
        out[str(group)] = members
    for n in names:
        if n not in owner:
            if n in out:
                raise DataError(f"Group name {n!r} is also the name of a feature outside it; rename the group.")
            out[n] = [n]
    position = {n: j for j, n in enumerate(names)}
    return {
        g: sorted(m, key=position.get) for g, m in sorted(out.items(), key=lambda kv: min(map(position.get, kv[1])))
    }


def _group_name(members: list[str]) -> str:
    return "+".join(members)


# ----------------------------------------------------------------- the scorer


def _split(y, task, n_rows, test_size, max_train_samples, max_eval_samples, seed):
    n_eval = max(2, int(round(test_size * n_rows)))
    n_train = n_rows - n_eval
    if max_eval_samples is not None:
        n_eval = min(n_eval, max_eval_samples)
    if max_train_samples is not None:
        n_train = min(n_train, max_train_samples)
    stratify = None
    if task != "regression":
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < 2:
            rare = labels[counts < 2]
            raise DataError(
                f"Classes {format_names(rare.tolist())} of y have a single row; every class needs at least two "
                "(one to fit the proxy, one held out). Drop those rows or merge the classes."
            )
        if min(n_train, n_eval) < len(labels):
            raise DataError(
                f"y has {len(labels)} classes but only {n_rows} rows: too few to keep every class in both the "
                f"training and the held-out rows. Pass more rows, or a larger max_eval_samples/test_size."
            )
        stratify = y
    train, evaluate = train_test_split(
        np.arange(n_rows), train_size=n_train, test_size=n_eval, stratify=stratify, random_state=seed
    )
    if stratify is not None and n_train + n_eval < n_rows:
        train, evaluate = _keep_every_class(train, evaluate, y, seed)
    return np.sort(train), np.sort(evaluate)


def _keep_every_class(train, evaluate, y, seed):
    """Add a row of each class a subsampled part lacks, from the rows no part uses.

    A stratified subsample rounds a rare class's share to zero rows, and a
    forest that never saw a class has no probability column for it. Where no
    unused row is left, a row moves over from the other part if that keeps
    two or more there.
    """
    rng = np.random.RandomState(seed)
    parts = [list(train), list(evaluate)]
    used = np.zeros(len(y), dtype=bool)
    used[parts[0] + parts[1]] = True
    for label in np.unique(y):
        for side in (0, 1):
            part, other = parts[side], parts[1 - side]
            if np.any(y[part] == label):
                continue
            spare = np.flatnonzero(~used & (y == label))
            if spare.size:
                row = int(rng.choice(spare))
                used[row] = True
                part.append(row)
            else:
                mine = [r for r in other if y[r] == label]
                if len(mine) >= 2:
                    other.remove(mine[0])
                    part.append(mine[0])
    return np.asarray(parts[0]), np.asarray(parts[1])


def _check_options(*, groups, scoring, n_jobs, estimator) -> None:
    """Refuse bad options before any work: groups, a scorer name, n_jobs, an estimator."""
    if groups is not None and groups != "auto" and not isinstance(groups, Mapping):
        raise ConfigError(
            "Received an invalid value for groups, expected 'auto', None or a dict {group: [features]}. "
            f"Received: groups={groups!r}"
        )
    if scoring is not None and not callable(scoring):
        if not isinstance(scoring, str) or (scoring not in _BATCHED_METRICS and scoring not in get_scorer_names()):
            raise ConfigError(
                "Received an invalid value for scoring, expected None, a scikit-learn scorer name (for example "
                f"{list(_BATCHED_METRICS)[:4]}) or a callable. Received: scoring={scoring!r}"
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


def _default_proxy(task: str, n_estimators: int, n_jobs, seed: int):
    if task == "regression":
        return RandomForestRegressor(
            n_estimators=n_estimators, max_features=1 / 3, min_samples_leaf=3, n_jobs=n_jobs, random_state=seed
        )
    return RandomForestClassifier(n_estimators=n_estimators, max_features="sqrt", n_jobs=n_jobs, random_state=seed)


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


def _shadow_block(X: np.ndarray, sources: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Copies of ``X[:, sources]``, each column's rows shuffled on its own."""
    return np.column_stack([X[rng.permutation(len(X)), j] for j in sources])


def _noise_threshold(shadow: np.ndarray, solo_real: np.ndarray, n_tests: int, alpha: float) -> float:
    """t * RMS of the null sample; see :func:`score_features` for the rule."""
    negatives = solo_real[solo_real <= 0]
    null = np.concatenate([shadow, negatives, -negatives])
    if null.size == 0:
        return 0.0
    z = float(student_t.ppf(1.0 - alpha / max(1, n_tests), df=max(1, null.size - 1)))
    return float(z * np.sqrt(np.mean(null**2)))


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
    test_size: float = 0.2,
    max_train_samples: int | None = 3000,
    max_eval_samples: int | None = 2000,
    n_estimators: int = 30,
    correlation_threshold: float = 0.8,
    n_shadow: int = 20,
    noise_alpha: float = 0.01,
    verbose: int = 0,
) -> FeatureScores:
    """Score features with a random-forest permutation proxy on held-out rows.

    The rows are split into a training part and a held-out part (stratified
    for classification; when rows are subsampled, a rare class that the
    stratified sample rounds away still gets one row in each part where it
    has rows to spare, so the forest knows every class). A random forest is
    fitted on at most ``max_train_samples`` training rows (plus those few
    rows); then each feature group is shuffled
    ``n_repeats`` times on at most ``max_eval_samples`` held-out rows, and a
    group's importance is the mean drop of the held-out score.

    Groups: with ``groups="auto"``, numeric and boolean features whose absolute
    Spearman correlation is at least ``correlation_threshold`` (every pair, by
    complete linkage) form a group that is shuffled jointly, so that
    near-copies do not hide each other. Each feature is also shuffled alone;
    members of a group share the group's importance in proportion to those
    solo importances (evenly if none is positive).

    Noise baseline: ``n_shadow`` shadow features (copies of real features with
    their rows shuffled, so they carry no signal) are fitted and scored like
    real ones. On held-out rows a feature the target does not depend on has
    importance zero on average, so the null spread is the root mean square of
    the shadows' importances together with the real single features whose
    importance came out at or below zero, mirrored (the fast test of Janitza et
    al., 2018). A group is weak when its importance is at most ``t * RMS``,
    with ``t`` the one-sided Student-t quantile at ``noise_alpha / n_groups``
    (Bonferroni over groups; the t rather than the normal because the spread
    is estimated from a finite null sample, with as many degrees of freedom
    as null values less one). A constant column has importance 0 and is
    always weak.

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
        n_repeats: Shuffles per group.
        random_state: Seed (int), ``numpy.random.RandomState`` or None. Same
            seed, same scores, to the bit with ``n_jobs=None``; with several
            jobs the forest adds its trees' predictions in thread order, so
            the last digits may differ between runs.
        n_jobs: Parallel jobs of the default forest (fit and predict), as in
            scikit-learn; ``-1`` uses every core. Runs inside any joblib
            backend the caller sets up.
        estimator: Any scikit-learn estimator to use as the proxy instead of
            the forest. It is cloned and fitted on a float matrix in which
            categoricals are integer codes and missing values are NaN (wrap it
            in a Pipeline with a SimpleImputer if it cannot take NaN).
        scoring: The held-out score whose drop is measured. Defaults:
            ``"r2"`` for regression, ``"neg_brier_score"`` for classification.
            The Brier score rather than accuracy because it is continuous:
            accuracy moves in steps of one row and ignores confidence, so a
            near-perfect classifier shows no drop for features it relies on
            and the noise test loses its footing; log loss explodes on a
            forest's zero probabilities. ``"r2"``, ``"neg_mean_squared_error"``,
            ``"neg_mean_absolute_error"``, ``"accuracy"``,
            ``"balanced_accuracy"``, ``"neg_brier_score"``, ``"neg_log_loss"``
            and ``"roc_auc"`` are batched; any other scikit-learn scorer name
            or callable is called once per shuffled copy.
        test_size: Fraction of rows held out.
        max_train_samples: At most this many rows fit the proxy (None: all
            training rows).
        max_eval_samples: At most this many held-out rows are shuffled (None:
            all held-out rows).
        n_estimators: Trees in the default forest.
        correlation_threshold: Absolute Spearman correlation at which features
            are grouped by ``groups="auto"``.
        n_shadow: Shadow features for the noise baseline (0 disables them).
        noise_alpha: Family-wise false-alarm rate of the weak test.
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
    """
    for name, value in (("n_repeats", n_repeats), ("n_estimators", n_estimators)):
        check_int(name, value)
    for name, value in (("max_train_samples", max_train_samples), ("max_eval_samples", max_eval_samples)):
        check_int(name, value, allow_none=True)
    check_int("n_shadow", n_shadow, low=0)
    for name, value in (
        ("test_size", test_size),
        ("correlation_threshold", correlation_threshold),
        ("noise_alpha", noise_alpha),
    ):
        check_number(name, value, low=0.0, high=1.0, open_interval=True)
    _check_options(groups=groups, scoring=scoring, n_jobs=n_jobs, estimator=estimator)
    rng = check_seed(random_state)
    table = as_table(X)
    y_values = check_target(y, table.n_rows)
    # Groups given by hand are checked against the columns now; "auto" needs the training rows.
    group_map = None if groups == "auto" else _resolve_groups(groups, table, None, None, correlation_threshold)
    if table.n_rows < MIN_ROWS:
        raise DataError(
            f"score_features needs at least {MIN_ROWS} rows (to fit the proxy and hold some out). "
            f"Received {table.n_rows} rows."
        )
    asked = task
    task = resolve_task(task, y_values)
    if asked != task:
        message = f"score_features: task={asked!r} resolved to {task!r} from y."
        logger.info(message)
        if verbose:
            print(message)
    metric = scoring if scoring is not None else _default_metric(task)
    if isinstance(metric, str) and metric in _BATCHED_METRICS:
        applies = _BATCHED_METRICS[metric][0]
        family = "regression" if task == "regression" else "classification"
        if applies not in (family, task):
            raise ConfigError(f"scoring={metric!r} does not apply to task {task!r}.")
    if task == "regression":
        y_fit = y_values.astype(np.float64)
        _check_magnitude(y_fit)
        class_labels = None
    else:
        class_labels, y_fit = np.unique(
            y_values.astype(str) if y_values.dtype.kind == "O" else y_values, return_inverse=True
        )

    split_seed, forest_seed, shadow_seed, perm_seed = (int(s) for s in rng.randint(np.iinfo(np.int32).max, size=4))
    train, evaluate = _split(y_fit, task, table.n_rows, test_size, max_train_samples, max_eval_samples, split_seed)
    X_train, X_eval = table.encode(train), table.encode(evaluate)
    y_train, y_eval = y_fit[train], y_fit[evaluate]
    _warn_if_few_rows(y_eval, class_labels)
    names = list(table.names)
    p = len(names)
    if verbose:
        print(
            f"score_features: {p} features, proxy fitted on {len(train)} rows, "
            f"importance on {len(evaluate)} held-out rows."
        )

    constant_train = _constant_columns(X_train)
    if group_map is None:
        group_map = _resolve_groups(groups, table, X_train, constant_train, correlation_threshold)

    # Shadows: shuffled copies of real non-constant columns, appended after them.
    candidates = np.flatnonzero(~constant_train)
    n_sh = n_shadow if len(candidates) else 0
    if n_sh:
        shadow_rng = np.random.RandomState(shadow_seed)
        sources = shadow_rng.choice(candidates, n_sh, replace=n_sh > len(candidates))
        X_train = np.hstack([X_train, _shadow_block(X_train, sources, shadow_rng)])
        X_eval = np.hstack([X_eval, _shadow_block(X_eval, sources, shadow_rng)])

    proxy = clone(estimator) if estimator is not None else _default_proxy(task, n_estimators, n_jobs, forest_seed)
    if task != "regression" and estimator is not None and not is_classifier(proxy):
        raise ConfigError(f"task={task!r} needs a classifier as estimator. Received {proxy!r}.")
    try:
        proxy.fit(X_train, y_train)
    except InvalidParameterError as exc:  # an option of the estimator, not the data
        raise ConfigError(f"The proxy estimator {proxy!r} has an invalid parameter: {exc}") from exc
    except ValueError as exc:
        raise DataError(
            f"The proxy estimator {proxy!r} could not be fitted on the encoded features: {exc}. "
            "If it cannot take missing values, wrap it in a Pipeline with a SimpleImputer."
        ) from exc

    constant_eval = _constant_columns(X_eval[:, :p])
    position = {n: j for j, n in enumerate(names)}
    solo = [j for j in range(p) if not constant_eval[j]]
    joint = [[position[f] for f in m] for m in group_map.values() if len(m) > 1]
    shadow_cols = list(range(p, p + n_sh))
    column_sets = [[j] for j in solo] + joint + [[j] for j in shadow_cols]
    baseline, raw = permutation_scores(
        proxy,
        X_eval,
        y_eval,
        column_sets,
        n_repeats=n_repeats,
        metric=metric,
        random_state=perm_seed,
        verbose=verbose,
        n_classes=None if class_labels is None else len(class_labels),
    )
    if not (np.isfinite(baseline) and np.all(np.isfinite(raw))):
        raise DataError(
            f"The held-out {metric} of the proxy is not finite (baseline {baseline}), so no importance can be "
            "measured. Check y for extreme values, or pass another scoring."
        )
    means, stds = raw.mean(axis=1), raw.std(axis=1)
    n_solo, n_joint = len(solo), len(joint)
    solo_mean, solo_std = np.zeros(p), np.zeros(p)  # constant columns keep 0: shuffling them changes nothing
    solo_mean[solo], solo_std[solo] = means[:n_solo], stds[:n_solo]
    joint_stats = {tuple(cols): (means[n_solo + i], stds[n_solo + i]) for i, cols in enumerate(joint)}
    shadow_importances = means[n_solo + n_joint :]
    importances, std, group_imp, group_std = _share_group_credit(group_map, position, solo_mean, solo_std, joint_stats)

    singletons = [position[m[0]] for m in group_map.values() if len(m) == 1]
    solo_null = solo_mean[[j for j in singletons if not constant_eval[j]]]
    threshold = _noise_threshold(shadow_importances, solo_null, len(group_map), noise_alpha)
    weak_group = {g: bool(v <= threshold) for g, v in group_imp.items()}
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
        task=task,
        metric=metric if isinstance(metric, str) else getattr(metric, "__name__", repr(metric)),
        baseline_score=baseline,
        noise_threshold=threshold,
        individual_importances=pd.Series(solo_mean, index=index, name="individual_importance"),
        feature_types=dict(table.kinds),
        shadow_importances=tuple(float(v) for v in shadow_importances),
        n_train=len(train),
        n_eval=len(evaluate),
        n_repeats=n_repeats,
    )
