"""The default proxy: regression trees on class indicators split as a Gini forest classifier."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

import archguide as ag
from archguide.scoring._proxy import IndicatorForestClassifier, default_proxy


@parametrize_with_checks([IndicatorForestClassifier(n_estimators=5, random_state=0)])
def test_the_indicator_forest_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


@pytest.mark.parametrize(("n_classes", "seed"), [(2, 0), (2, 1), (3, 0), (4, 1)])
def test_indicator_trees_are_the_gini_forest_classifiers_trees(n_classes, seed):
    X, y = make_classification(300, 8, n_informative=4, n_classes=n_classes, random_state=seed)
    gini = RandomForestClassifier(30, min_samples_leaf=3, random_state=seed).fit(X, y)
    indicators = IndicatorForestClassifier(30, random_state=seed).fit(X, y)
    for a, b in zip(gini.estimators_, indicators.estimators_, strict=True):
        np.testing.assert_array_equal(a.tree_.feature, b.tree_.feature)
        np.testing.assert_array_equal(a.tree_.threshold, b.tree_.threshold)
    np.testing.assert_allclose(indicators.predict_proba(X), gini.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(indicators.predict(X), gini.predict(X))


def test_indicator_forest_takes_labels_of_any_kind_and_missing_values():
    X, y = make_classification(200, 5, random_state=0)
    X[::7, 1] = np.nan
    X_before = X.copy()
    words = np.where(y == 1, "yes", "no")
    model = IndicatorForestClassifier(20, random_state=0).fit(X, words)
    assert model.classes_.tolist() == ["no", "yes"]
    proba = model.predict_proba(X)
    assert proba.shape == (200, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(X) == words).mean() > 0.9
    np.testing.assert_array_equal(X, X_before)
    flags = IndicatorForestClassifier(20, random_state=0).fit(X, y.astype(bool))
    assert flags.classes_.tolist() == [False, True]
    np.testing.assert_array_equal(flags.predict_proba(X), proba)
    single = IndicatorForestClassifier(5, random_state=0).fit(X, np.zeros(200))
    np.testing.assert_array_equal(single.predict_proba(X[:3]), np.ones((3, 1)))


def test_score_features_fits_the_indicator_forest_for_classes(classification):
    assert isinstance(default_proxy("binary", 10, None, 0), IndicatorForestClassifier)
    assert isinstance(default_proxy("multiclass", 10, None, 0), IndicatorForestClassifier)
    X, y = classification
    rows = np.random.RandomState(0).permutation(len(y))[:400]  # the fixture's rows come sorted by class
    scores = ag.score_features(X[rows], y[rows], random_state=0)
    assert any("regression trees on the class indicators" in d for d in scores.decisions)
    assert scores.importances.iloc[:5].min() > scores.importances.iloc[5:].max()
    assert not scores.weak.iloc[:5].any() and scores.weak.iloc[5:].all()
