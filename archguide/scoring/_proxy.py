"""The proxy: the model whose held-out losses :func:`archguide.score_features` shuffles.

By default a random forest with ``min_samples_leaf=3``: scikit-learn's
:class:`~sklearn.ensemble.RandomForestRegressor` for regression, and for
classes :class:`IndicatorForestClassifier`, the same regression trees fitted
on the class indicators, which split as a Gini forest classifier does and fit
faster. A user's ``estimator`` is cloned and fitted instead. No Keras here.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from archguide.exceptions import ConfigError, DataError

__all__ = ["IndicatorForestClassifier", "default_proxy", "fit_proxy", "columns_read"]


class IndicatorForestClassifier(ClassifierMixin, BaseEstimator):
    """A random forest classifier grown as regression trees on the class indicators.

    In a node whose rows have class shares ``p_1 .. p_K``, the mean squared
    error of the 0/1 class indicators is ``sum_k p_k (1 - p_k) = 1 - sum_k p_k^2``,
    the Gini impurity. So regression trees fitted on the indicators choose the
    splits of :class:`~sklearn.ensemble.RandomForestClassifier` (Gini, the same
    ``random_state``: the same bootstrap samples and candidate features) up to
    rounding in near-ties, and each leaf holds its class shares: the forest's
    average is the classifier's ``predict_proba``. Two classes need one
    indicator. scikit-learn fits regression trees faster: a whole
    :func:`archguide.score_features` run took 19% less time at 1,000 rows (two
    classes, 1.668 s against 2.062 s; four classes 15% less), and over 10
    seeds every weak flag was the same up to 2,000 rows (99.7% of them at
    4,000 rows of four classes; ``benchmarks/bench_power.py --only indicators``).

    Parameters are :class:`~sklearn.ensemble.RandomForestRegressor`'s, with
    the defaults :func:`archguide.score_features` uses.

    Attributes:
        classes_: The class labels, sorted.
        forest_: The fitted :class:`~sklearn.ensemble.RandomForestRegressor`.
        estimators_: Its trees.
    """

    def __init__(self, n_estimators=100, *, max_features="sqrt", min_samples_leaf=3, n_jobs=None, random_state=None):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the trees on the indicators of ``y``'s classes; returns ``self``."""
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        indicators = (codes == 1).astype(np.float64) if len(self.classes_) <= 2 else np.eye(len(self.classes_))[codes]
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(X, indicators)
        self.estimators_ = self.forest_.estimators_
        self.n_features_in_ = self.forest_.n_features_in_
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        check_is_fitted(self, "forest_")
        shares = self.forest_.predict(X)
        if len(self.classes_) > 2:
            return shares
        return np.column_stack([1.0 - shares, shares])[:, : len(self.classes_)]

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # What the forest takes: missing values (its trees send them down a learned side) and sparse matrices.
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        return tags


def default_proxy(task: str, n_estimators: int, n_jobs, seed: int):
    """The forest :func:`archguide.score_features` fits when no ``estimator`` is given."""
    # min_samples_leaf=3 for both tasks: smoother forests give steadier held-out losses on few rows
    # (benchmarks/bench_power.py --study).
    if task == "regression":
        return RandomForestRegressor(
            n_estimators=n_estimators, max_features=1 / 3, min_samples_leaf=3, n_jobs=n_jobs, random_state=seed
        )
    return IndicatorForestClassifier(
        n_estimators=n_estimators, max_features="sqrt", min_samples_leaf=3, n_jobs=n_jobs, random_state=seed
    )


def fit_proxy(estimator, task, n_estimators, n_jobs, seed, X, y):
    """Clone and fit ``estimator`` (None: :func:`default_proxy`) on ``X, y``, with its errors said plainly."""
    proxy = clone(estimator) if estimator is not None else default_proxy(task, n_estimators, n_jobs, seed)
    if task != "regression" and estimator is not None and not is_classifier(proxy):
        raise ConfigError(f"task={task!r} needs a classifier as estimator. Received {proxy!r}.")
    try:
        return proxy.fit(X, y)
    except InvalidParameterError as exc:  # an option of the estimator, not the data
        raise ConfigError(f"The proxy estimator {proxy!r} has an invalid parameter: {exc}") from exc
    except ValueError as exc:
        raise DataError(
            f"The proxy estimator {proxy!r} could not be fitted on the encoded features: {exc}. "
            "If it cannot take missing values, wrap it in a Pipeline with a SimpleImputer."
        ) from exc


def columns_read(proxy, n_columns: int) -> np.ndarray | None:
    """Which columns a fitted tree ensemble splits on (None when it is not one)."""
    trees = getattr(proxy, "estimators_", None)
    if not isinstance(trees, list) or not all(hasattr(t, "tree_") for t in trees):
        return None
    read = np.zeros(n_columns, dtype=bool)
    for tree in trees:
        features = tree.tree_.feature
        read[features[features >= 0]] = True
    return read
