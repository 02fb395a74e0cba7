"""The estimators end to end: what users pass, what they get back, the artifact, and bad input."""

import copy
import json
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import run_python
from sklearn.datasets import load_wine, make_classification, make_friedman1
from sklearn.exceptions import DataConversionWarning
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import archguide as ag
from archguide import ConfigError, DataError, NotFittedError, TrainingError
from archguide.model.callbacks import cosine_schedule

keras = pytest.importorskip("keras")

FAST = {"epochs": 15, "n_repeats": 2, "total_units": 32, "patience": 5}


def _frame(n=300, seed=0):
    """Mixed columns with a known truth: y depends on num (with gaps), city and flag; noise is noise."""
    rng = np.random.default_rng(seed)
    num = rng.normal(size=n)
    city = rng.choice(["paris", "lyon", "nice"], size=n)
    flag = rng.random(n) < 0.5
    y = 2 * num + np.select([city == "paris", city == "lyon"], [3.0, -3.0], 0.0) + 2.0 * flag + 0.3 * rng.normal(size=n)
    num[rng.random(n) < 0.1] = np.nan
    city = city.astype(object)
    city[rng.random(n) < 0.05] = None
    frame = pd.DataFrame({"num": num, "city": city, "flag": flag, "noise": rng.normal(size=n)})
    return frame, y


@pytest.fixture(scope="module")
def fitted():
    """A regressor fitted on the mixed frame (shared: tests only read it)."""
    X, y = _frame()
    est = ag.ImportanceGuidedRegressor(random_state=0, epochs=60).fit(X, y)
    return est, X, y


pytestmark = pytest.mark.filterwarnings("ignore:score_features. only:archguide.ArchguideWarning")


# ------------------------------------------------------------------ fit and predict


def test_the_regressor_learns_the_mixed_frame_and_scores_speak_in_column_names(fitted):
    est, X, y = fitted
    assert est.score(X, y) > 0.9
    assert set(est.scores_.groups) == {"num", "city", "flag", "noise"}
    assert est.scores_.groups["city"] == ["city=lyon", "city=nice", "city=paris", "city=<missing>"]
    assert est.scores_.groups["num"] == ["num", "num=<missing>"]
    group = est.scores_.group_importances
    assert min(group["num"], group["city"], group["flag"]) > group["noise"]
    assert est.scores_.weak["noise"]
    assert est.plan_.features == est.encoding_.features
    assert est.n_features_in_ == 4
    assert list(est.feature_names_in_) == ["num", "city", "flag", "noise"]
    assert len(est.history_["loss"]) == est.n_epochs_ and 1 <= est.best_epoch_ <= est.n_epochs_
    assert list(est.rescoring_history_.columns) == ["epoch", *est.plan_.features]
    assert len(est.rescoring_history_) == est.n_epochs_
    assert list(est.strengths_history_.columns) == ["epoch", *est.plan_.features]
    best = est.strengths_history_[est.strengths_history_["epoch"] == est.best_epoch_]  # restored with the weights
    np.testing.assert_allclose(
        best.iloc[0, 1:].to_numpy(dtype=float),
        est.network_.get_layer("gate").get_strengths(),
        rtol=1e-6,
    )
    assert list(est.sensitivity_.index) == ["num", "city", "flag", "noise"]
    assert list(est.sensitivity_.columns) == ["held_out", "training", "flagged"]
    assert est.sensitivity_["held_out"]["num"] > est.sensitivity_["held_out"]["noise"]
    assert est.predict(X).shape == (len(X),) and est.predict(X).dtype == np.float64


def test_fit_keeps_the_weights_of_the_lowest_penalty_free_validation_loss(fitted):
    est, X, y = fitted
    losses = est.history_["val_data_loss"]
    assert int(np.argmin(losses)) < est.n_epochs_ - 1  # it trained past its best epoch: keeping the last would show
    rows = est.validation_indices_
    # the kept model's own error on its validation rows, in the standardised target's units
    error = np.mean((est.predict(X.iloc[rows]) - np.asarray(y)[rows]) ** 2) / est.target_scale_**2
    assert error == pytest.approx(min(losses), rel=1e-4)
    assert error == pytest.approx(losses[est.best_epoch_ - 1], rel=1e-4)
    assert est.n_epochs_ <= 60


def test_fit_validates_the_users_columns_once_and_scores_the_encoded_table(monkeypatch):
    # The raw table is checked and typed at the door; scoring (the first scores and the residual check) reads
    # the encoding of it without checking it again.
    import archguide.schema as schema
    import archguide.scoring.score as score

    typed, scored = [], []
    real_typing, real_scoring = schema._frame_table, score.score_features
    monkeypatch.setattr(schema, "_frame_table", lambda *a, **k: typed.append(a[0].shape) or real_typing(*a, **k))
    monkeypatch.setattr(
        "archguide.estimators.estimator.score_features", lambda X, *a, **k: scored.append(X) or real_scoring(X, *a, **k)
    )
    X, y = _frame(120)
    ag.ImportanceGuidedRegressor(random_state=0, epochs=2, n_repeats=2, total_units=16).fit(X, y)
    assert typed == [X.shape]
    assert [type(t).__name__ for t in scored] == ["Table"]
    assert scored[0].names[:2] == ("num", "num=<missing>")


def test_predict_matches_a_frame_by_column_name(fitted):
    est, X, _ = fitted
    np.testing.assert_array_equal(est.predict(X[X.columns[::-1]]), est.predict(X))


def test_a_rows_prediction_does_not_depend_on_its_place_in_the_table(fitted):
    est, X, _ = fitted
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_array_equal(est.predict(X.iloc[order]), est.predict(X)[order])  # to the last digit


def test_missing_and_unexpected_columns_are_named(fitted):
    est, X, _ = fitted
    with pytest.raises(DataError, match=r"missing 'flag'.*unexpected 'extra'"):
        est.predict(X.drop(columns="flag").assign(extra=1.0))
    many = X.assign(**{f"extra{i}": 0.0 for i in range(7)})
    with pytest.raises(DataError, match=r"unexpected 'extra0', 'extra1', 'extra2', 'extra3', 'extra4', \.\.\."):
        est.predict(many)


def test_a_column_whose_type_changed_is_refused(fitted):
    est, X, _ = fitted
    with pytest.raises(DataError, match=r"'num' \(numeric at fit, categorical now\)"):
        est.predict(X.assign(num=X["num"].astype(str)))
    with pytest.raises(DataError, match=r"'city' \(categorical at fit, numeric now\)"):
        est.predict(X.assign(city=1.0))


def test_unseen_categories_and_new_gaps_predict_without_error(fitted):
    est, X, _ = fitted
    rows = X.head(4).copy()
    rows["city"] = ["berlin", None, "paris", "lyon"]  # unseen, missing, known, known
    rows["flag"] = rows["flag"].astype(object)
    rows.loc[rows.index[0], "flag"] = None  # no gap in flag at fit time
    rows["noise"] = np.nan  # a whole column missing in a few rows to predict
    pred = est.predict(rows)
    assert pred.shape == (4,) and np.all(np.isfinite(pred))
    # A known category still counts: paris and lyon differ by 6 in the truth.
    both = X.head(2).copy()
    both["num"], both["flag"], both["city"] = 0.0, False, ["paris", "lyon"]
    paris, lyon = est.predict(both)
    assert paris - lyon > 3


def test_fit_and_predict_do_not_modify_the_users_data(fitted):
    X, y = _frame(120, seed=3)
    X_before, y_before = X.copy(deep=True), y.copy()
    est = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, y)
    est.predict(X)
    pd.testing.assert_frame_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)


def test_random_state_gives_identical_predictions(fitted):
    _, X, y = fitted
    first = ag.ImportanceGuidedRegressor(random_state=3, **FAST).fit(X, y).predict(X)
    second = ag.ImportanceGuidedRegressor(random_state=3, **FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    ag.ImportanceGuidedRegressor(random_state=3, **FAST).fit(X, y)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002 (global NumPy state untouched)


def test_every_regression_target_shape_gives_the_same_model():
    X, y = make_friedman1(n_samples=150, n_features=6, random_state=0)
    odd_index = pd.Series(y, index=np.arange(150) * 3 + 1000, name="target")
    reference = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, y).predict(X)
    for target in (odd_index, list(y), pd.DataFrame({"t": y})):
        pred = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, target).predict(X)
        np.testing.assert_array_equal(pred, reference)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        pred = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, y.reshape(-1, 1)).predict(X)
    np.testing.assert_array_equal(pred, reference)


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["no", "yes"]),
        np.array([False, True]),
        np.array([3, 7]),
        np.array(["cat", "dog", "emu"]),
    ],
    ids=["strings", "booleans", "integers", "three-strings"],
)
def test_the_classifier_takes_any_labels_and_returns_them(labels):
    X, y = make_classification(
        n_samples=240,
        n_features=6,
        n_informative=3,
        n_redundant=0,
        n_classes=len(labels),
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=0,
    )
    y_labels = labels[y]
    # 30 epochs: robustly scaled inputs are smaller than standardised ones (an interquartile range is 1.35
    # standard deviations of a normal column), and at 15 epochs three classes reached 0.74 (standardised 0.83)
    for target in (y_labels, pd.Series(y_labels, index=np.arange(240)[::-1] + 50), list(y_labels)):
        est = ag.ImportanceGuidedClassifier(random_state=0, **{**FAST, "epochs": 30}).fit(X, target)
        np.testing.assert_array_equal(est.classes_, np.unique(y_labels))
        pred = est.predict(X)
        assert pred.dtype == est.classes_.dtype and set(pred) <= set(labels)
        proba = est.predict_proba(X)
        assert proba.shape == (240, len(labels))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        assert est.score(X, target) > 0.8


def test_the_classifier_learns_wine_with_noise_and_finds_the_noise():
    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.assign(**{f"noise{i}": np.random.default_rng(i).normal(size=len(X)) for i in range(5)})
    est = ag.ImportanceGuidedClassifier(random_state=0, epochs=80).fit(X, y)
    assert est.score(X, y) > 0.95
    assert est.scores_.weak[[f"noise{i}" for i in range(5)]].all()
    assert est.scores_.importances.nlargest(3).index.str.startswith("noise").sum() == 0


def test_a_categorical_column_given_as_pandas_category_and_a_single_column():
    X, y = _frame(200, seed=2)
    X = X.assign(city=X["city"].astype("category"))
    est = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X[["city"]], y)
    assert est.plan_.features == ("city=lyon", "city=nice", "city=paris", "city=<missing>")
    assert np.isfinite(est.predict(X[["city"]])).all()


def test_groups_name_columns_scored_together():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=120), "c": rng.choice(["u", "v"], 120), "a+b": rng.normal(size=120)})
    X["b"] = X["a"] + 0.01 * rng.normal(size=120)  # a near-copy of a
    y = X["a"] + (X["c"] == "u")
    auto = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, y)
    assert auto.scores_.groups == {"a+b#2": ["a", "b"], "c": ["c=u", "c=v"], "a+b": ["a+b"]}
    by_hand = ag.ImportanceGuidedRegressor(random_state=0, groups={"pair": ["c", "a+b"]}, **FAST).fit(X, y)
    assert by_hand.scores_.groups == {"a": ["a"], "pair": ["c=u", "c=v", "a+b"], "b": ["b"]}
    alone = ag.ImportanceGuidedRegressor(random_state=0, groups=None, **FAST).fit(X, y)
    assert set(alone.scores_.groups) == {"a", "b", "c", "a+b"}
    for groups, match in [
        ({"g": ["a", "zz"]}, "groups\\['g'\\] names columns that are not in X: 'zz'"),
        ({"g": []}, "is empty"),
        ({"g": ["a"], "h": ["a", "b"]}, "Columns 'a' are in groups\\['g'\\] and groups\\['h'\\]; a column belongs"),
        ({"a": ["b", "c"]}, "Group name 'a' is also the name of a column outside it"),
    ]:
        with pytest.raises(DataError, match=match):
            ag.ImportanceGuidedRegressor(groups=groups, **FAST).fit(X, y)


def test_scikit_learn_tools_take_the_estimators():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = make_friedman1(n_samples=120, n_features=5, random_state=0)
    pipe = make_pipeline(FunctionTransformer(), ag.ImportanceGuidedRegressor(random_state=0, **FAST))
    assert cross_val_score(pipe, X, y, cv=2).shape == (2,)
    search = GridSearchCV(ag.ImportanceGuidedRegressor(random_state=0, **FAST), {"total_units": [16, 32]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["total_units"] in (16, 32) and search.best_estimator_.plan_.total_units in (16, 32)


def test_a_cosine_schedule_falls_from_the_learning_rate_and_restarts_with_each_network():
    X, y = make_friedman1(n_samples=200, n_features=5, random_state=0)
    params = {**FAST, "epochs": 6, "patience": 6, "rescoring": None, "replan": False}
    est = ag.ImportanceGuidedRegressor(random_state=0, lr_schedule="cosine", learning_rate=0.01, **params).fit(X, y)
    rates = est.history_["learning_rate"]
    assert len(rates) == est.n_epochs_ == 6  # early stopping with patience 6 cannot end 6 epochs sooner
    assert rates[0] == pytest.approx(0.01) and rates[3] == pytest.approx(0.005)  # half way, half the rate
    assert all(a > b > 0 for a, b in zip(rates, rates[1:])) and rates[-1] < 0.001
    # a re-planned network continues the epoch count and starts its own cosine at the learning rate
    schedule = cosine_schedule(0.01, 4, first_epoch=10).schedule
    rates = [schedule(epoch, None) for epoch in range(10, 16)]
    assert rates[0] == pytest.approx(0.01) and rates[0] > rates[1] > rates[2] > rates[3] > 0
    assert rates[4] == rates[5] == rates[3]  # past its epochs, the last rate is kept


def test_min_improvement_stops_a_creeping_loss_sooner_and_keeps_the_best_epoch():
    X, y = make_friedman1(n_samples=300, n_features=5, noise=0.5, random_state=0)
    params = {**FAST, "epochs": 40, "patience": 3, "lr_patience": None, "rescoring": None, "replan": False}
    plain = ag.ImportanceGuidedRegressor(random_state=0, **params).fit(X, y)
    strict = ag.ImportanceGuidedRegressor(random_state=0, min_improvement=0.2, **params).fit(X, y)
    assert strict.n_epochs_ < plain.n_epochs_
    # the same training, stopped sooner
    loss = "val_data_loss"
    assert strict.history_[loss] == pytest.approx(plain.history_[loss][: strict.n_epochs_])
    # the weights kept are the lowest-loss epoch's: those of a run that ends there
    ended = ag.ImportanceGuidedRegressor(random_state=0, **{**params, "epochs": strict.best_epoch_}).fit(X, y)
    np.testing.assert_allclose(strict.predict(X), ended.predict(X), rtol=1e-6)


def test_refit_trains_on_every_row_for_the_best_epoch_count():
    X, y = make_friedman1(n_samples=200, n_features=6, random_state=0)
    plain = ag.ImportanceGuidedRegressor(random_state=0, **FAST).fit(X, y)
    refitted = ag.ImportanceGuidedRegressor(random_state=0, refit=True, **FAST).fit(X, y)
    assert refitted.best_epoch_ == plain.best_epoch_
    assert len(refitted.refit_history_["data_loss"]) == plain.best_epoch_  # that many epochs, and no more
    # that it trained on the validation rows too: test_honest_numbers' marker test
    assert not np.array_equal(refitted.predict(X), plain.predict(X))
    np.testing.assert_allclose(
        refitted.network_.get_layer("gate").get_strengths(), plain.network_.get_layer("gate").get_strengths()
    )


def test_verbose_2_logs_one_line_per_epoch(capsys):
    X, y = make_friedman1(n_samples=100, n_features=5, random_state=0)
    ag.ImportanceGuidedRegressor(random_state=0, verbose=2, **{**FAST, "epochs": 3, "patience": 10}).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("Epoch ") == 3 and "ImportanceGuidedRegressor: plan:" in out


# ------------------------------------------------------------------ bad input


def test_predict_before_fit_raises_not_fitted():
    for est in (ag.ImportanceGuidedRegressor(), ag.ImportanceGuidedClassifier()):
        for method in ("predict", "save") + (("predict_proba",) if hasattr(est, "predict_proba") else ()):
            with pytest.raises(NotFittedError, match="not fitted yet"):
                getattr(est, method)(np.zeros((3, 2)) if method != "save" else "m.keras")
        with pytest.raises(SklearnNotFittedError):
            est.predict(np.zeros((3, 2)))


def test_a_continuous_target_to_the_classifier_suggests_the_regressor():
    X, y = make_friedman1(n_samples=50, n_features=5, random_state=0)
    with pytest.raises(DataError, match="continuous.*use ImportanceGuidedRegressor"):
        ag.ImportanceGuidedClassifier().fit(X, y)


def test_labels_to_the_regressor_suggest_the_classifier():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(DataError, match="needs a numeric y.*ImportanceGuidedClassifier"):
        ag.ImportanceGuidedRegressor().fit(X, ["a", "b"] * 15)
    with pytest.raises(DataError, match=r"mixes labels of types \['int', 'str'\]"):
        ag.ImportanceGuidedClassifier().fit(X, np.array([1, "b"] * 15, dtype=object))


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.zeros((5, 2)), np.arange(5.0), "at least 10 rows"),
        (np.zeros((20, 2)), None, "requires y to be passed"),
        (np.zeros((20, 2)), np.arange(19.0), "19 values but X has 20 rows"),
        (np.c_[np.arange(20.0), np.full(20, np.inf)], np.arange(20.0), "'x1' of X contain infinite"),
        (pd.DataFrame({"a": np.arange(20.0), "b": [None] * 20}), np.arange(20.0), "'b' of X are entirely missing"),
        (np.arange(20.0), np.arange(20.0), "Reshape your data"),
        (np.zeros((20, 2)), np.r_[np.arange(19.0), np.nan], "missing values"),
    ],
    ids=["few-rows", "no-y", "length", "inf", "empty-column", "1-D", "nan-target"],
)
def test_fit_refuses_what_the_scorer_refuses(X, y, match):
    with pytest.raises(DataError, match=match):
        ag.ImportanceGuidedRegressor().fit(X, y)


def test_predict_refuses_what_fit_refuses(fitted):
    est, X, _ = fitted
    with pytest.raises(DataError, match="'num' of X contain infinite"):
        est.predict(X.assign(num=np.inf))
    with pytest.raises(DataError, match="X has 3 features, but ImportanceGuidedRegressor is expecting 4"):
        est.predict(X.to_numpy()[:, :3])
    with pytest.raises(DataError, match="Sparse data is not supported"):
        from scipy import sparse

        est.predict(sparse.csr_matrix(np.ones((2, 4))))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"epochs": 0}, "epochs"),
        ({"weak": "ignore"}, "weak"),
        ({"rescoring": "magic"}, "rescoring"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
        ({"verbose": 3}, "verbose"),
        ({"groups": "correlated"}, "groups"),
        ({"random_state": "seed"}, "random_state"),
        ({"head_units": []}, "head_units"),
        ({"scaling": "quantile"}, "scaling"),
        ({"embedding": -1}, "embedding"),
        ({"ensemble_size": 0}, "ensemble_size"),
        ({"batch_size": "big"}, "batch_size"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"min_improvement": -0.01}, "min_improvement"),
        ({"min_improvement": 1.0}, "min_improvement"),
        ({"label_smoothing": 0.1}, "label_smoothing applies to classes"),
        ({"ensemble_size": 4, "rescoring": "garson"}, "undefined for an ensemble"),
    ],
)
def test_bad_parameters_raise_config_error_at_fit(params, name):
    est = ag.ImportanceGuidedRegressor(**params)  # __init__ only stores
    with pytest.raises(ConfigError, match=name):
        est.fit(np.zeros((20, 2)), np.arange(20.0))


def test_a_diverging_loss_raises_a_training_error_that_says_what_to_try():
    X, y = make_friedman1(n_samples=100, n_features=5, random_state=0)
    X = X * 1e30  # standardised inside, but the learning rate below still blows up the weights
    est = ag.ImportanceGuidedRegressor(random_state=0, learning_rate=1e30, **{**FAST, "epochs": 5})
    with pytest.raises(TrainingError, match="NaN or infinite.*smaller learning_rate"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_a_class_with_a_single_row_is_trained_on_but_not_scored():
    X, y = make_classification(n_samples=60, n_features=4, n_informative=2, n_redundant=0, random_state=0)
    y = np.array(["a", "b"], dtype=object)[y]
    y[0] = "rare"
    with pytest.warns(ag.ArchguideWarning, match="1 classes of y have a single row"):
        est = ag.ImportanceGuidedClassifier(random_state=0, **FAST).fit(X, y)
    assert "rare" in est.classes_ and est.predict_proba(X).shape == (60, 3)


# ------------------------------------------------------------------ the artifact


def test_save_and_load_predict_exactly_the_same_in_a_fresh_process(fitted, tmp_path):
    est, X, _ = fitted
    path = tmp_path / "model.keras"
    est.save(path)
    X.to_pickle(tmp_path / "X.pkl")
    np.save(tmp_path / "expected.npy", est.predict(X))
    run_python(
        f"""
        import numpy as np, pandas as pd, archguide as ag
        X = pd.read_pickle({str(tmp_path / "X.pkl")!r})
        est = ag.load({str(path)!r})
        assert type(est).__name__ == "ImportanceGuidedRegressor"
        np.testing.assert_array_equal(est.predict(X), np.load({str(tmp_path / "expected.npy")!r}))
        assert est.plan_.features == ("num", "num=<missing>", "city=lyon", "city=nice", "city=paris",
                                      "city=<missing>", "flag", "noise")
        assert est.scores_.weak["noise"] and len(est.rescoring_history_) > 0
        assert est.get_params()["epochs"] == 60
        """
    )


@pytest.mark.parametrize("cls", [ag.ImportanceGuidedRegressor, ag.ImportanceGuidedClassifier])
def test_robust_scaling_embeddings_and_an_ensemble_fit_save_and_load_in_a_fresh_process(cls, tmp_path):
    X, y = _frame()
    X = X.set_axis(np.arange(len(X)) * 3 + 7)  # an odd index
    X.loc[X.index[:3], "num"] = [0.0, 1e4, -1e4]  # wild values the smooth clip bounds
    if cls is ag.ImportanceGuidedClassifier:
        y = np.where(y > np.median(y), "high", "low")
    smoothing = {"label_smoothing": 0.05} if cls is ag.ImportanceGuidedClassifier else {}
    est = cls(random_state=0, scaling="robust", embedding=8, ensemble_size=4, **smoothing, **{**FAST, "epochs": 40})
    est.fit(X, y)
    assert est.network_.get_layer("ensemble_adapter").size == 4
    assert est.plan_.embeddings and set(est.plan_.embeddings) <= {"num", "noise"}  # numeric values only
    assert est.encoding_.columns[0].clip is not None and est.encoding_.columns[2].clip is None  # "flag": boolean
    assert est.score(X, y) > (0.8 if cls is ag.ImportanceGuidedRegressor else 0.85)
    est.save(tmp_path / "m.keras")
    X.to_pickle(tmp_path / "X.pkl")
    expected = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    np.save(tmp_path / "expected.npy", expected)
    run_python(
        f"""
        import numpy as np, pandas as pd, archguide as ag
        est = ag.load({str(tmp_path / "m.keras")!r})
        X = pd.read_pickle({str(tmp_path / "X.pkl")!r})[["noise", "flag", "city", "num"]]  # another column order
        out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
        np.testing.assert_array_equal(out, np.load({str(tmp_path / "expected.npy")!r}))
        assert est.get_params()["scaling"] == "robust" and est.get_params()["embedding"] == 8
        assert est.get_params()["ensemble_size"] == 4
        """
    )


def _shops(n=400, seed=0):
    """A high-cardinality column: 80 shops, a few frequent ones with large effects and a long tail of rare ones."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 81)
    shop = rng.choice([f"s{i:02d}" for i in range(80)], size=n, p=weights / weights.sum())
    effect = {"s00": 3.0, "s01": -3.0, "s02": 2.0}
    num = rng.normal(size=n)
    y = 2 * num + np.array([effect.get(s, 0.0) for s in shop]) + 0.3 * rng.normal(size=n)
    return pd.DataFrame({"shop": shop, "num": num}), y


@pytest.mark.parametrize("cls", [ag.ImportanceGuidedRegressor, ag.ImportanceGuidedClassifier])
def test_a_pooled_and_embedded_high_cardinality_column_fits_and_the_artifact_keeps_both(cls, tmp_path):
    X, y = _shops()
    if cls is ag.ImportanceGuidedClassifier:
        y = pd.Series(y > np.median(y), index=X.index[::-1])  # boolean labels, an index in another order
    est = cls(random_state=0, max_categories=12, category_embedding=4, **{**FAST, "epochs": 40}).fit(X, y)
    assert len(set(X["shop"])) > 40
    assert est.encoding_.groups["shop"] == [*(f"shop=s{i:02d}" for i in range(11)), "shop=<infrequent>"]
    assert est.network_.input_shape == (None, 13)  # twelve features for the shop, one for num
    blocks = [(block, width) for b in est.plan_.branches for block, width in b.categories]
    assert blocks and all(set(block) <= set(est.encoding_.groups["shop"]) for block, _ in blocks)
    assert est.score(X, y) > (0.85 if cls is ag.ImportanceGuidedRegressor else 0.8)
    rows = X.head(2).assign(num=0.0, shop=["s70", "never seen"])
    values = est.predict_proba(rows) if hasattr(est, "predict_proba") else est.predict(rows)
    np.testing.assert_array_equal(values[0], values[1])  # a rare shop and an unknown one read alike
    expected = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    est.save(tmp_path / "m.keras")
    if cls is ag.ImportanceGuidedClassifier:  # the fresh process below loads the regressor's
        loaded = ag.load(tmp_path / "m.keras")
        np.testing.assert_array_equal(loaded.predict_proba(X[["num", "shop"]]), expected)
    else:
        X.to_pickle(tmp_path / "X.pkl")
        np.save(tmp_path / "expected.npy", expected)
        run_python(
            f"""
            import numpy as np, pandas as pd, archguide as ag
            est = ag.load({str(tmp_path / "m.keras")!r})
            X = pd.read_pickle({str(tmp_path / "X.pkl")!r})[["num", "shop"]]  # another column order
            np.testing.assert_array_equal(est.predict(X), np.load({str(tmp_path / "expected.npy")!r}))
            params = est.get_params()
            assert params["max_categories"] == 12 and params["category_embedding"] == 4
            assert len(est.encoding_.columns[0].infrequent) > 40 and any(b.categories for b in est.plan_.branches)
            """
        )
    # On numbers alone there is nothing to embed or pool: the same fit as without the options.
    numbers = X[["num"]].assign(other=np.random.default_rng(0).normal(size=len(X)))
    short = {**FAST, "epochs": 5}
    plain = cls(random_state=0, **short).fit(numbers, y)
    both = cls(random_state=0, max_categories=12, category_embedding=4, **short).fit(numbers, y)
    assert both.plan_ == plain.plan_.__class__.from_dict({**plain.plan_.to_dict(), "options": both.plan_.options})
    np.testing.assert_array_equal(both.predict(numbers), plain.predict(numbers))


def test_pooling_options_out_of_range_are_refused_before_any_work():
    X, y = _shops(100)
    with pytest.raises(ConfigError, match="min_frequency=1.5"):
        ag.ImportanceGuidedRegressor(min_frequency=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="max_categories=0"):
        ag.ImportanceGuidedClassifier(max_categories=0).fit(X, y > 0)
    with pytest.raises(ConfigError, match="category_embedding=-1"):
        ag.ImportanceGuidedRegressor(category_embedding=-1).fit(X, y)


def test_the_artifact_restores_every_fitted_attribute(fitted, tmp_path):
    est, X, y = fitted
    est.save(tmp_path / "m.keras")
    loaded = ag.load(tmp_path / "m.keras")
    assert loaded.get_params() == est.get_params()
    assert loaded.plan_ == est.plan_
    pd.testing.assert_frame_equal(loaded.scores_.to_frame(), est.scores_.to_frame())
    pd.testing.assert_frame_equal(loaded.rescoring_history_, est.rescoring_history_, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.strengths_history_, est.strengths_history_, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.sensitivity_, est.sensitivity_)
    assert loaded.history_.keys() == est.history_.keys()
    for key, values in est.history_.items():
        np.testing.assert_array_equal(loaded.history_[key], values)
    assert (loaded.n_epochs_, loaded.best_epoch_, loaded.n_features_in_) == (est.n_epochs_, est.best_epoch_, 4)
    assert loaded.batch_size_ == est.batch_size_ and isinstance(est.batch_size_, int)
    assert list(loaded.feature_names_in_) == list(est.feature_names_in_)
    assert loaded.score(X, y) == est.score(X, y)


def test_keras_load_model_takes_raw_columns(fitted, tmp_path):
    est, X, _ = fitted
    path = tmp_path / "m.keras"
    est.save(path)
    model = keras.models.load_model(path)  # after `import archguide`, no custom_objects
    rows = X.dropna().head(20)  # missing labels are passed as "" outside the estimator
    direct = keras.ops.convert_to_numpy(model(dict(rows)))[:, 0]
    np.testing.assert_allclose(direct, est.predict(rows), rtol=1e-6)
    as_arrays = {c: rows[c].to_numpy(dtype=object if c == "city" else None) for c in rows}
    np.testing.assert_allclose(model.predict(as_arrays, verbose=0)[:, 0], est.predict(rows), rtol=1e-6)


def test_a_classifier_artifact_keeps_its_labels(tmp_path):
    X, y = make_classification(n_samples=120, n_features=4, n_informative=2, n_redundant=0, random_state=0)
    labels = np.array(["left", "right"])[y]
    est = ag.ImportanceGuidedClassifier(random_state=0, **FAST).fit(X, labels)
    est.save(tmp_path / "c.keras")
    loaded = ag.load(tmp_path / "c.keras")
    assert type(loaded).__name__ == "ImportanceGuidedClassifier"
    np.testing.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.classes_.dtype == est.classes_.dtype
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_loading_what_is_not_an_artifact_says_so(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        ag.load(tmp_path / "nothing.keras")
    text = tmp_path / "notes.keras"
    text.write_text("hello")
    with pytest.raises(DataError, match="not a .keras file"):
        ag.load(text)
    inputs = keras.Input(shape=(2,))
    plain = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(DataError, match="not an archguide artifact.*keras.models.load_model"):
        ag.load(tmp_path / "plain.keras")
    zipped = tmp_path / "other.keras"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    with pytest.raises(DataError, match="no readable config.json"):
        ag.load(zipped)


def test_a_failed_save_leaves_the_existing_file_as_it_was(fitted, tmp_path, monkeypatch):
    est, _, _ = fitted
    path = tmp_path / "model.keras"
    path.write_bytes(b"previous model")
    with pytest.raises(ConfigError, match="ending in '.keras'"):
        est.save(tmp_path / "model.h5")

    def broken(target, *args, **kwargs):
        with open(target, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    copy_ = copy.copy(est)
    copy_.model_ = copy.copy(est.model_)
    monkeypatch.setattr(copy_.model_, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        copy_.save(path)
    assert path.read_bytes() == b"previous model"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_the_artifact_carries_its_metadata_as_plain_json(fitted, tmp_path):
    est, _, _ = fitted
    est.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        config = json.loads(archive.read("config.json"))
    text = json.dumps(config)
    assert '"registered_name": "archguide>ArtifactInfo"' in text and "ImportanceGuidedRegressor" in text


def test_a_fitted_estimator_pickles(fitted):
    est, X, _ = fitted
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


# ------------------------------------------------------------------ scikit-learn's checks


def _check_instances():
    # Few epochs and small networks: these checks test the API, not accuracy; small batches give the few
    # checks that ask for 83% accuracy on easy data enough steps in 10 epochs. No re-planning: the residual
    # check scores again after every fit (and a re-plan trains a second network), and re-planning's own
    # tests (test_replanning, test_recovery) fit, save, load and predict re-planned estimators.
    fast = {"epochs": 10, "n_repeats": 2, "total_units": 32, "batch_size": 16, "replan": False}
    return [ag.ImportanceGuidedRegressor(random_state=0, **fast), ag.ImportanceGuidedClassifier(random_state=0, **fast)]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::archguide.ArchguideWarning")
@parametrize_with_checks(_check_instances())
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_sensitive_not_important_flags_training_only_importance():
    from archguide.estimators._sensitivity import sensitive_not_important

    held_out = pd.Series({"strong": 0.40, "noisy_strong": 0.05, "overfit": 0.001, "tiny": 0.0, "negative": -0.01})
    training = pd.Series({"strong": 0.50, "noisy_strong": 1.45, "overfit": 0.10, "tiny": 0.004, "negative": 0.05})
    flagged = sensitive_not_important(held_out, training)
    # noisy_strong: 29 times its held-out importance, but that is 12% of the largest: important
    # tiny: above 3 times 0 but below 1% of the largest training importance
    assert flagged.to_dict() == {
        "strong": False, "noisy_strong": False, "overfit": True, "tiny": False, "negative": True
    }  # fmt: skip


def test_the_fitted_sensitivity_follows_the_rule(fitted):
    from archguide.estimators._sensitivity import sensitive_not_important

    est, _, _ = fitted
    sens = est.sensitivity_
    pd.testing.assert_series_equal(
        sens["flagged"], sensitive_not_important(sens["held_out"], sens["training"]), check_names=False
    )
    assert not sens["flagged"][["num", "city", "flag"]].any()


def test_training_pipeline_shows_every_row_once_per_epoch_in_a_new_order():
    """The fit's data pipeline is built once: each epoch's batches still hold every training row once,
    shuffled anew each epoch, the same way for the same seed; every held-out row is evaluated once."""
    from archguide.estimators._training import ArrayRows, _validation_arguments

    X = np.arange(70, dtype="float32").reshape(-1, 1) * [1.0, -1.0]
    y = np.arange(70, dtype="float32")
    val = (X[:9] + 0.5, y[:9] + 0.5)

    def epochs(seed, n=3):
        data = {**ArrayRows(X, y).fit_arguments(16, seed), **_validation_arguments(val, 16)}
        batches = iter(data["x"])
        return data, [
            np.concatenate([next(batches)[1].numpy() for _ in range(data["steps_per_epoch"])]) for _ in range(n)
        ]

    data, orders = epochs(seed=1)
    assert data["steps_per_epoch"] == 5
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), y)  # every row, once
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    np.testing.assert_array_equal(np.concatenate(epochs(seed=1)[1]), np.concatenate(orders))
    assert not np.array_equal(epochs(seed=2)[1][0], orders[0])
    held_out = np.concatenate([batch[1].numpy() for batch in data["validation_data"]])
    np.testing.assert_array_equal(held_out, val[1])


def test_several_steps_per_execution_still_show_every_row_once_per_epoch():
    """Keras runs ``steps_per_execution`` steps per call; on the fit's repeated pipeline the estimator
    picks a divisor of the steps per epoch, so no call runs into the next epoch's rows."""
    from archguide.estimators._training import ArrayRows, _steps_per_execution

    assert [_steps_per_execution(n, 64) for n in (64 * 100, 64 * 13, 1000, 100)] == [10, 13, 16, 2]

    class Seen(keras.layers.Layer):
        def build(self, input_shape):
            self.seen = self.add_weight(shape=(80,), initializer="zeros", trainable=False, name="seen")

        def call(self, x, training=False):
            if training:  # count the rows (their ids are column 0) each training step sees
                self.seen.assign_add(keras.ops.sum(keras.ops.one_hot(keras.ops.cast(x[:, 0], "int32"), 80), axis=0))
            return x

    X = np.stack([np.arange(80.0), np.ones(80)], axis=1).astype("float32")
    y = np.zeros(80, dtype="float32")
    for steps_per_execution, expected in ((_steps_per_execution(80, 8), "every row 3 times"), (3, "overrun")):
        inputs = keras.Input((2,))
        seen = Seen()
        model = keras.Model(inputs, keras.layers.Dense(1)(seen(inputs)))
        model.compile(loss="mean_squared_error", steps_per_execution=steps_per_execution)
        model.fit(**ArrayRows(X, y).fit_arguments(8, 0), epochs=3, verbose=0)
        counts = keras.ops.convert_to_numpy(seen.seen)
        if expected == "overrun":  # 10 steps an epoch in calls of 3: 12 steps an epoch, 36 batches in all
            assert counts.sum() == 36 * 8
        else:
            assert steps_per_execution == 10
            np.testing.assert_array_equal(counts, 3.0)


def _strip_params(path, names):
    """Rewrite a saved artifact as an older archguide wrote it: without the parameters ``names``."""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])

    def strip(node):
        if isinstance(node, dict):
            if node.get("registered_name") == "archguide>ArtifactInfo":
                for name in names:
                    del node["config"]["info"]["params"][name]
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_an_artifact_saved_before_scaling_and_embeddings_reports_what_it_was_fitted_with(tmp_path):
    X, y = _frame()
    est = ag.ImportanceGuidedRegressor(random_state=0, scaling="standard", **FAST).fit(X, y)
    est.save(tmp_path / "m.keras")
    _strip_params(tmp_path / "m.keras", ["scaling", "embedding", "ensemble_size"])
    loaded = ag.load(tmp_path / "m.keras")
    assert ag.ImportanceGuidedRegressor().get_params()["scaling"] != "standard"  # today's default differs ...
    assert loaded.get_params()["scaling"] == "standard" and loaded.get_params()["embedding"] == 0  # ... not the fit's
    assert loaded.get_params()["ensemble_size"] == 1
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


@pytest.mark.parametrize(("n", "expected"), [(300, 16), (700, 32), (2000, 64)])
def test_batch_size_auto_gives_small_tables_more_steps_an_epoch(n, expected):
    X, y = _frame(n)  # 240, 560 and 1,600 training rows
    quick = {**FAST, "epochs": 2, "rescoring": None, "replan": False}
    est = ag.ImportanceGuidedRegressor(random_state=0, batch_size="auto", **quick).fit(X, pd.Series(y, name="y"))
    assert n - len(est.validation_indices_) == 0.8 * n and est.batch_size_ == expected
