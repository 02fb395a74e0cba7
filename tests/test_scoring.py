import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression

import archguide as ag
from archguide.exceptions import ConfigError, DataError
from archguide.scoring.score import MIN_ROWS, permutation_scores, resolve_task

INFORMATIVE = [f"x{i}" for i in range(5)]


def _check_truth(scores, informative):
    imp = scores.importances
    noise = [f for f in scores.features if f not in informative]
    assert imp[informative].min() > imp[noise].max(), scores.to_frame()
    assert not scores.weak[informative].any(), f"informative weak: {scores.weak[informative]}"
    # The weak test controls the false discovery rate at 5%: with five real discoveries a noise feature
    # may come through now and then (a quarter of one on average), two or more would break the rule.
    kept_noise = scores.weak[noise][~scores.weak[noise]].index.tolist()
    assert len(kept_noise) <= 1, f"noise not weak: {kept_noise}"


# ------------------------------------------------------------------ behaviour


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_friedman_informative_outrank_noise_and_noise_is_weak(friedman, seed):
    X, y = friedman
    scores = ag.score_features(X, y, random_state=seed)
    assert scores.task == "regression"
    _check_truth(scores, INFORMATIVE)


def test_friedman_with_many_noise_features():
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(n_samples=4000, n_features=50, noise=1.0, random_state=3)
    _check_truth(ag.score_features(X, y, random_state=3), INFORMATIVE)


@pytest.mark.parametrize("seed", [0, 1])
def test_classification_informative_outrank_noise_and_noise_is_weak(classification, seed):
    X, y = classification
    scores = ag.score_features(X, y, random_state=seed)
    assert scores.task == "binary"
    assert scores.metric == "neg_brier_score"
    _check_truth(scores, INFORMATIVE)


def test_near_copy_lands_in_the_group_of_its_original(friedman):
    X, y = friedman
    rng = np.random.default_rng(0)
    X = np.column_stack([X, X[:, 3] + 0.01 * rng.normal(size=len(X))])  # x20 ~ x3
    scores = ag.score_features(X, y, random_state=0)
    group = scores.group_of["x3"]
    assert scores.group_of["x20"] == group
    assert sorted(scores.groups[group]) == ["x20", "x3"]
    # Shuffled alone, each near-copy hides behind the other; shuffled together, they are the strongest.
    assert scores.group_importances[group] > 3 * max(scores.individual_importances[["x3", "x20"]])
    assert scores.importances[["x3", "x20"]].sum() == pytest.approx(scores.group_importances[group])
    assert not scores.weak[["x3", "x20"]].any()
    # Every other feature keeps a group of its own.
    assert all(len(m) == 1 for g, m in scores.groups.items() if g != group)


def test_groups_none_scores_each_feature_alone(friedman):
    X, y = friedman
    X = np.column_stack([X, X[:, 3]])
    scores = ag.score_features(X, y, groups=None, random_state=0)
    assert all(len(m) == 1 for m in scores.groups.values())
    np.testing.assert_allclose(scores.importances.to_numpy(), scores.group_importances.to_numpy())
    # The exact copy hides x3: alone, each shows a fraction of what they carry together.
    grouped = ag.score_features(X, y, groups={"pair": ["x3", "x20"]}, random_state=0)
    assert grouped.group_importances["pair"] > 3 * scores.importances["x3"]


def test_groups_given_by_hand(friedman):
    X, y = friedman
    scores = ag.score_features(X, y, groups={"first_two": ["x0", "x1"], "tail": ["x18", "x19"]}, random_state=0)
    assert scores.groups["first_two"] == ["x0", "x1"]
    assert scores.groups["tail"] == ["x18", "x19"]
    assert scores.groups["x2"] == ["x2"]
    assert sum(len(m) for m in scores.groups.values()) == 20
    assert scores.weak[["x18", "x19"]].all()
    assert not scores.weak[["x0", "x1"]].any()


def test_same_seed_same_scores(friedman):
    X, y = friedman
    a = ag.score_features(X, y, random_state=7)
    b = ag.score_features(X, y, random_state=7)
    pd.testing.assert_series_equal(a.importances, b.importances, check_exact=True)
    pd.testing.assert_series_equal(a.std, b.std, check_exact=True)
    assert a.noise_threshold == b.noise_threshold
    c = ag.score_features(X, y, random_state=8)
    assert not np.allclose(a.importances, c.importances)


def test_n_jobs_changes_scores_only_by_rounding(friedman):
    # Parallel forests add their trees' predictions in thread order: the last digits may move.
    X, y = friedman
    a = ag.score_features(X, y, random_state=7)
    b = ag.score_features(X, y, random_state=7, n_jobs=2)
    np.testing.assert_allclose(b.importances, a.importances, rtol=1e-9, atol=1e-15)
    assert b.noise_threshold == pytest.approx(a.noise_threshold, rel=1e-9)
    pd.testing.assert_series_equal(a.weak, b.weak)


@pytest.mark.parametrize("metric", ["r2", "neg_mean_absolute_error", "explained_variance"])
def test_batched_permutation_equals_sklearn(friedman, metric):
    X, y = friedman
    X = X.astype(np.float32)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(X[:2000], y[:2000])
    X_eval, y_eval = X[2000:2500], y[2000:2500]
    baseline, ours = permutation_scores(
        model, X_eval, y_eval, [[j] for j in range(X.shape[1])], n_repeats=4, metric=metric, random_state=42
    )
    theirs = permutation_importance(model, X_eval, y_eval, n_repeats=4, scoring=metric, random_state=42)
    np.testing.assert_allclose(ours, theirs.importances, rtol=1e-10, atol=1e-12)
    assert X_eval.flags.writeable  # and untouched: checked below by value
    np.testing.assert_array_equal(X_eval, X[2000:2500])


def test_batched_permutation_equals_sklearn_for_classifier_proba(classification):
    X, y = classification
    model = LogisticRegression(max_iter=500).fit(X[:3000], y[:3000])
    X_eval, y_eval = X[3000:], y[3000:]
    for metric in ("accuracy", "neg_brier_score", "neg_log_loss", "roc_auc"):
        _, ours = permutation_scores(model, X_eval, y_eval, [[0], [5]], n_repeats=3, metric=metric, random_state=1)
        full = permutation_importance(model, X_eval, y_eval, n_repeats=3, scoring=metric, random_state=1)
        np.testing.assert_allclose(ours, full.importances[[0, 5]], rtol=1e-9, atol=1e-12)


def test_mixed_column_kinds_and_missing_values(mixed_frame):
    X, y = mixed_frame
    before = X.copy()
    scores = ag.score_features(X, y, random_state=0)
    pd.testing.assert_frame_equal(X, before)  # nothing written into the caller's frame
    assert scores.feature_types == {"num": "numeric", "city": "categorical", "flag": "boolean", "noise": "numeric"}
    assert scores.importances[["num", "city", "flag"]].min() > scores.importances["noise"]
    assert scores.weak["noise"] and not scores.weak[["num", "city", "flag"]].any()


def test_category_dtype_and_nullable_columns(mixed_frame):
    X, y = mixed_frame
    X = X.assign(city=X["city"].astype("category"), flag=X["flag"].astype("boolean"), num=X["num"].astype("Float64"))
    X.loc[3, "flag"] = pd.NA
    scores = ag.score_features(X, y, random_state=0)
    assert scores.feature_types["city"] == "categorical"
    assert scores.importances["city"] > scores.importances["noise"]


def test_constant_column_is_weak_with_zero_importance(friedman):
    X, y = friedman
    X = np.column_stack([X[:, :6], np.full(len(X), 3.0)])
    scores = ag.score_features(X, y, random_state=0)
    assert scores.importances["x6"] == 0.0
    assert scores.std["x6"] == 0.0
    assert scores.weak["x6"]


def test_single_feature_works():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(400, 1))
    scores = ag.score_features(x, 3 * x[:, 0] + 0.1 * rng.normal(size=400), random_state=0)
    assert scores.features == ["x0"]
    assert scores.importances["x0"] > 0.5
    assert not scores.weak["x0"]


def test_read_only_array_is_accepted_and_not_copied_whole(friedman):
    X, y = friedman
    X = X.copy()
    X.flags.writeable = False
    y = y.copy()
    y.flags.writeable = False
    scores = ag.score_features(X, y, random_state=0)
    assert len(scores.features) == 20


def test_subsampling_bounds_the_rows_used(friedman):
    X, y = friedman  # 3,000 rows
    scores = ag.score_features(X, y, random_state=0, cv=None, max_train_samples=500, max_eval_samples=300)
    assert (scores.n_folds, scores.n_train, scores.n_eval) == (1, 500, 300)
    full = ag.score_features(X, y, random_state=0, cv=None, max_train_samples=None, max_eval_samples=None)
    assert (full.n_folds, full.n_train, full.n_eval) == (1, 2400, 600)
    # Cross-fitting: the bounds hold per forest; each of the 5 folds holds out 600 rows.
    folds = ag.score_features(X, y, random_state=0, max_train_samples=500, max_eval_samples=300)
    assert (folds.n_folds, folds.n_train, folds.n_eval) == (5, 500, 1500)
    every_row = ag.score_features(X, y, random_state=0, max_train_samples=None, max_eval_samples=None)
    assert (every_row.n_folds, every_row.n_train, every_row.n_eval) == (5, 2400, 3000)


def test_custom_estimator_is_used_as_proxy(friedman):
    X, y = friedman
    linear = ag.score_features(X, y, estimator=LinearRegression(), random_state=0)
    forest = ag.score_features(X, y, random_state=0)
    # y has the term 20 * (x2 - 0.5)**2: symmetric, so a linear proxy cannot see it; the forest can.
    assert linear.importances.idxmax() == "x3"
    assert linear.weak["x2"]
    assert not forest.weak["x2"]


def test_verbose_says_what_auto_decided(friedman, capsys):
    X, y = friedman
    ag.score_features(X[:300], y[:300], random_state=0, verbose=1)
    assert "resolved to 'regression'" in capsys.readouterr().out


# ------------------------------------------------------------------ the task


@pytest.mark.parametrize(
    ("y", "expected"),
    [
        (np.linspace(0, 1, 40), "regression"),
        (np.arange(40) % 2, "binary"),
        (np.arange(40) % 3, "multiclass"),
        (np.array(["a", "b"] * 20, dtype=object), "binary"),
        (np.array([True, False] * 20), "binary"),
        (np.arange(40) * 1.0, "regression"),  # whole numbers, but more than 20 distinct values
    ],
)
def test_resolve_task_auto(y, expected):
    assert resolve_task("auto", y) == expected


def test_task_can_be_forced():
    assert resolve_task("regression", np.arange(40) % 3) == "regression"
    assert resolve_task("classification", np.arange(40) % 3) == "multiclass"


def test_string_labels_multiclass(classification):
    X, y = classification
    labels = np.array(["red", "green", "blue"], dtype=object)[(y + (X[:, 0] > 1)).astype(int)]
    scores = ag.score_features(X, pd.Series(labels, dtype="str"), random_state=0)
    assert scores.task == "multiclass"


# ------------------------------------------------------------------ FeatureScores


def test_to_dict_from_dict_round_trip_through_json(friedman):
    X, y = friedman
    X = np.column_stack([X, X[:, 0]])
    scores = ag.score_features(X, y, random_state=0)
    data = json.loads(json.dumps(scores.to_dict()))
    again = ag.FeatureScores.from_dict(data)
    pd.testing.assert_series_equal(again.importances, scores.importances)
    pd.testing.assert_series_equal(again.weak, scores.weak)
    pd.testing.assert_series_equal(again.group_importances, scores.group_importances)
    assert again.groups == scores.groups
    assert again.task == scores.task and again.noise_threshold == scores.noise_threshold
    pd.testing.assert_frame_equal(again.to_frame(), scores.to_frame())


def test_from_dict_rejects_incomplete_data():
    with pytest.raises(DataError, match="missing keys"):
        ag.FeatureScores.from_dict({"features": ["a"]})


def test_to_frame_and_repr(friedman):
    X, y = friedman
    scores = ag.score_features(X, y, random_state=0)
    frame = scores.to_frame()
    assert list(frame.columns) == [
        "importance",
        "std",
        "group",
        "group_importance",
        "weak",
        "p_value",
        "individual_importance",
        "type",
    ]
    assert frame["importance"].is_monotonic_decreasing
    assert scores.to_frame(sort=False).index.tolist() == scores.features
    text = repr(scores)
    assert scores.weak.sum() >= 14  # of the 15 noise features: at most one kept, as _check_truth allows
    assert "task='regression'" in text and f"{scores.weak.sum()} weak" in text and "x3" in text


# ------------------------------------------------------------------ bad input


def _frame(n=50, **columns):
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(size=n), "b": rng.normal(size=n)}
    data.update(columns)
    return pd.DataFrame(data), rng.normal(size=n)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: (pd.DataFrame({"a": []}), []), "0 rows"),
        (lambda: (pd.DataFrame(index=range(20)), np.zeros(20)), "0 columns"),
        (lambda: (np.zeros((20, 0)), np.zeros(20)), "0 columns"),
        (lambda: (np.ones(20), np.zeros(20)), "2-D.*reshape"),
        (lambda: (_frame()[0].iloc[: MIN_ROWS - 1], np.arange(MIN_ROWS - 1.0)), f"at least {MIN_ROWS} rows"),
        (lambda: (_frame()[0], np.zeros(49)), "49 values but X has 50 rows"),
        (lambda: (_frame()[0], np.r_[np.nan, np.ones(49)]), "missing values"),
        (lambda: (_frame()[0], np.r_[np.inf, np.ones(49)]), "infinite"),
        (lambda: (_frame(c=np.full(50, np.nan))[0], np.arange(50.0)), "'c'.*entirely missing"),
        (lambda: (_frame(c=[None] * 50)[0], np.arange(50.0)), "'c'.*entirely missing"),
        (lambda: (_frame(c=np.r_[np.inf, np.ones(49)])[0], np.arange(50.0)), "'c'.*infinite"),
        (lambda: (pd.DataFrame(np.ones((20, 2)), columns=["a", "a"]), np.arange(20.0)), "duplicate column names: 'a'"),
        (lambda: (_frame(c=np.ones(50) * 1j)[0], np.arange(50.0)), "'c'.*complex"),
        (lambda: (np.ones((20, 2)) * 1j, np.arange(20.0)), "complex"),
        (lambda: (_frame(c=[[1, 2]] * 50)[0], np.arange(50.0)), "'c'.*nested"),
        (lambda: (_frame(c=[{"k": 1}] * 50)[0], np.arange(50.0)), "'c'.*nested"),
        (lambda: (_frame(c=pd.date_range("2020", periods=50))[0], np.arange(50.0)), "'c'.*datetime"),
        (lambda: (_frame()[0], np.array(["same"] * 50, dtype=object)), "single class"),
        (lambda: (_frame()[0], np.ones(50)), "single value"),
        (lambda: (_frame()[0], np.r_[np.zeros(49), 1]), "single row"),
        (lambda: (_frame()[0], np.ones((50, 2))), "1-D"),
        (lambda: (pd.Series(np.ones(20)), np.ones(20)), "Series.*to_frame"),
    ],
)
def test_bad_data_raises_data_error(make, match):
    X, y = make()
    with pytest.raises(DataError, match=match):
        ag.score_features(X, y, random_state=0)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"task": "ranking"}, "task"),
        ({"groups": "corr"}, "groups"),
        ({"n_repeats": 0}, "n_repeats"),
        ({"n_estimators": 2.5}, "n_estimators"),
        ({"test_size": 1.5}, "test_size"),
        ({"cv": 1}, "cv"),
        ({"cv": "yes"}, "cv"),
        ({"n_estimators": "many"}, "n_estimators"),
        ({"noise_alpha": 0.0}, "noise_alpha"),
        ({"max_eval_samples": 0}, "max_eval_samples"),
        ({"scoring": "accuracy"}, "does not apply"),
    ],
)
def test_bad_options_raise_config_error(friedman, options, match):
    X, y = friedman
    with pytest.raises(ConfigError, match=match):
        ag.score_features(X[:100], y[:100], **options)


@pytest.mark.parametrize(
    ("groups", "match"),
    [
        ({"g": ["x0", "nope"]}, "'nope'"),
        ({"g": ["x0"], "h": ["x0", "x1"]}, "'x0'.*one group"),
        ({"g": []}, "empty"),
    ],
)
def test_bad_groups_raise_data_error(friedman, groups, match):
    X, y = friedman
    with pytest.raises(DataError, match=match):
        ag.score_features(X[:100], y[:100], groups=groups)


def test_data_error_is_a_value_error():
    with pytest.raises(ValueError):
        ag.score_features(np.ones((20, 2)), np.zeros(19))


# ------------------------------------------------------------------ soundness


def test_a_feature_listed_twice_in_a_group_is_refused(friedman):
    X, y = friedman
    with pytest.raises(DataError, match="groups\\['g'\\] lists 'x0' more than once"):
        ag.score_features(X[:300], y[:300], groups={"g": ["x0", "x0", "x1"]})


def test_a_column_named_like_a_generated_group_does_not_collide():
    rng = np.random.default_rng(0)
    a = rng.normal(size=600)
    frame = pd.DataFrame({"a": a, "b": a + 0.01 * rng.normal(size=600), "a+b": rng.normal(size=600)})
    y = 2 * a + frame["a+b"]
    scores = ag.score_features(frame, y, random_state=0)
    assert scores.groups == {"a+b#2": ["a", "b"], "a+b": ["a+b"]}
    assert not scores.weak["a+b"] and not scores.weak["a"]


def test_probability_columns_follow_the_classes_the_forest_saw():
    """A forest fitted without class 1 has two probability columns; they are classes 0 and 2."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = np.where(X[:, 0] > 0, 2, 0)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    y_eval = y.copy()
    y_eval[:5] = 1  # a class the forest never saw
    baseline, _ = permutation_scores(
        forest, X, y_eval, [[0], [1]], n_repeats=2, metric="neg_brier_score", random_state=0, n_classes=3
    )
    proba = np.zeros((300, 3))
    proba[:, [0, 2]] = forest.predict_proba(X)
    expected = -((proba - np.eye(3)[y_eval]) ** 2).sum(axis=1).mean()
    assert baseline == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(4))
def test_rare_classes_survive_row_subsampling(seed):
    """40 common classes and three rare ones, more rows than the proxy samples."""
    rng = np.random.default_rng(seed)
    n = 6400
    y = rng.integers(0, 40, size=n)
    y[:9] = np.repeat([40, 41, 42], 3)  # three rows each
    X = rng.normal(size=(n, 6))
    X[:, 0] += y * 0.5  # x0 tells the classes apart
    with pytest.warns(ag.ArchguideWarning, match=r"classes '40', '41', '42' have fewer than 5 held-out rows"):
        scores = ag.score_features(X, y, task="classification", random_state=seed)
    assert scores.task == "multiclass"
    assert scores.importances.idxmax() == "x0" and not scores.weak["x0"]
    assert np.isfinite(scores.baseline_score) and -1.0 < scores.baseline_score < 0.0


def test_a_target_too_large_to_square_is_refused(friedman):
    X, y = friedman
    with pytest.raises(DataError, match="overflow float64.*Rescale y"):
        ag.score_features(X[:300], y[:300] * 1e200)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        big = ag.score_features(X[:300], y[:300] * 1e100, random_state=0)  # large but squarable is fine
    assert np.isfinite(big.group_p_values).all() and not big.weak[INFORMATIVE].any()


def test_few_held_out_rows_come_with_a_warning(friedman):
    X, y = friedman
    with pytest.warns(ag.ArchguideWarning, match="only 10 held-out rows"):
        ag.score_features(X[:10], y[:10], random_state=0)  # 5 folds of 2 rows
    with pytest.warns(ag.ArchguideWarning, match="only 2 held-out rows"):
        ag.score_features(X[:10], y[:10], random_state=0, cv=None)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"scoring": "foo"}, "scoring.*Received: scoring='foo'"),
        ({"random_state": "abc"}, "random_state"),
        ({"n_jobs": "two"}, "n_jobs"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"estimator": "forest"}, "estimator"),
        ({"groups": 3}, "groups"),
        ({"companion": "forest"}, "companion.*Received: companion='forest'"),
    ],
)
def test_options_are_checked_before_any_work(friedman, options, match, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the data was touched before the options were checked")

    monkeypatch.setattr("archguide.scoring.score.as_table", no_work)
    X, y = friedman
    with pytest.raises(ConfigError, match=match):
        ag.score_features(X, y, **options)


def test_an_estimator_option_is_a_config_error_and_data_problems_stay_data_errors(friedman):
    X, y = friedman
    with pytest.raises(ConfigError, match="invalid parameter"):
        ag.score_features(X[:300], y[:300], estimator=RandomForestRegressor(n_estimators=-3))
    X_nan = X[:300].copy()
    X_nan[::7, 0] = np.nan
    with pytest.raises(DataError, match="encoded features"):
        ag.score_features(X_nan, y[:300], estimator=LinearRegression())


# ------------------------------------------------- cross-fitting and the weak test


def _truth(task, n, seed, p=30):
    """Six informative features of 30: faint linear x2, a pure interaction x3 * x4, an even x5."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, p)
    eta = X[:, 0] + 0.5 * X[:, 1] + 0.25 * X[:, 2] + X[:, 3] * X[:, 4] + 0.5 * (X[:, 5] ** 2 - 1)
    if task == "regression":
        return X, eta + rng.randn(n)
    return X, (rng.rand(n) < 1 / (1 + np.exp(-1.5 * eta))).astype(int)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_faint_interacting_and_even_features_are_kept_on_small_data(task):
    # 1,000 rows: the single 200-row split of the former rule missed the interaction pair in most runs.
    # The faint x2 in classification is kept in a third of the runs at 1,000 rows since the weak test's
    # widenings for cross-fitted folds were measured per test (bench_power's truth set 1: 0.333 over 30
    # seeds, 0.700 before, when the test was liberal on 30 columns); it is not required there.
    informative = [f"x{i}" for i in range(6) if task == "regression" or i != 2]
    for seed in (0, 1):
        scores = ag.score_features(*_truth(task, 1000, seed), random_state=seed)
        assert scores.n_folds == 5 and scores.n_eval == 1000
        assert not scores.weak[informative].any(), scores.to_frame().head(8)
        assert (~scores.weak.drop([f"x{i}" for i in range(6)])).mean() <= 0.05


@pytest.mark.slow
def test_on_pure_noise_any_column_is_kept_in_few_runs():
    # On pure noise every non-weak column is a false discovery, so the false discovery rate bounds the
    # share of runs with any: 5% of 30 runs is 1.5 expected; 5 or more has probability 0.8% if it holds.
    runs_with_any = 0
    for run in range(30):
        rng = np.random.RandomState(run)
        X, y = rng.randn(200, 100), rng.randn(200)
        runs_with_any += int((~ag.score_features(X, y, random_state=run).weak).any())
    assert runs_with_any <= 4


def test_columns_no_tree_reads_are_weak_with_p_value_one():
    rng = np.random.RandomState(0)
    X = rng.randn(300, 4)
    X[:, 3] = np.where(rng.rand(300) < 0.01, 1.0, 0.0)  # nearly constant: too rare to split on
    scores = ag.score_features(X, X[:, 0] + 0.1 * rng.randn(300), random_state=0, groups=None)
    assert not scores.weak["x0"] and scores.group_p_values["x0"] < 1e-6
    assert scores.weak[["x1", "x2", "x3"]].all()
    assert ((scores.group_p_values >= 0) & (scores.group_p_values <= 1)).all()


def test_cross_fitting_holds_every_row_out_once_and_keeps_every_class():
    from archguide.scoring.score import row_splits

    y = np.r_[np.zeros(90), np.ones(40), np.full(6, 2)].astype(int)
    splits = row_splits(
        y, "multiclass", len(y), n_folds=5, test_size=0.2, max_train_samples=None, max_eval_samples=None, seed=0
    )
    held_out = np.sort(np.concatenate([e for _, e in splits]))
    np.testing.assert_array_equal(held_out, np.arange(len(y)))
    for train, evaluate in splits:
        assert not np.intersect1d(train, evaluate).size
        assert set(y[train]) == {0, 1, 2} and set(y[evaluate]) == {0, 1, 2}
    capped = row_splits(y, "multiclass", len(y), n_folds=5, test_size=0.2, max_train_samples=20, max_eval_samples=10,
                        seed=0)  # fmt: skip
    for train, evaluate in capped:
        assert set(y[train]) == {0, 1, 2} and len(train) <= 22 and len(evaluate) <= 12


def test_folds_follow_cv_rows_and_the_smallest_class(friedman):
    from archguide.scoring.score import n_folds_for

    assert n_folds_for("auto", 4999, 0.2) == 5 and n_folds_for("auto", 5000, 0.2) == 1
    assert n_folds_for("auto", 1000, 0.25) == 4 and n_folds_for(3, 50_000, 0.2) == 3
    assert n_folds_for(None, 100, 0.2) == 1
    assert n_folds_for("auto", 1000, 0.2, np.array([500, 3])) == 3
    X, y = friedman
    assert ag.score_features(X[:400], y[:400], random_state=0, cv=2).n_folds == 2


@pytest.mark.parametrize(
    ("metric", "scale"),
    [("neg_mean_squared_error", 1.0), ("neg_mean_absolute_error", 1.0), ("accuracy", 1.0), ("neg_brier_score", 0.5),
     ("neg_log_loss", 1.0)],
)  # fmt: skip
def test_per_row_loss_increases_average_to_the_score_drop(friedman, classification, metric, scale):
    from archguide.scoring._permutation import permutation_drops

    X, y = classification if metric in ("accuracy", "neg_brier_score", "neg_log_loss") else friedman
    task = "binary" if metric in ("accuracy", "neg_brier_score", "neg_log_loss") else "regression"
    kind = RandomForestRegressor if task == "regression" else RandomForestClassifier
    model = kind(n_estimators=10, random_state=0).fit(X[:1000], y[:1000])
    result = permutation_drops(
        model, X[1000:1400], y[1000:1400], [[0], [1], [7]], n_repeats=3, metric=metric, task=task, random_state=0
    )
    np.testing.assert_allclose(result.row_deltas.mean(axis=1) * scale, result.drops.mean(axis=1), atol=1e-12)


def test_weak_test_helpers():
    from scipy.stats import false_discovery_control, ttest_1samp
    from scipy.stats import t as student_t

    from archguide.scoring._weak_test import FOLD_VARIANCE, discoveries, row_p_values

    rng = np.random.RandomState(0)
    deltas = np.vstack([np.zeros(100), np.full(100, -0.5), rng.randn(100) + 1.0, rng.randn(100)])
    p = row_p_values(deltas)
    assert p[0] == 1.0 and p[1] == 1.0 and p[2] < 1e-10 and 0.0 < p[3] < 1.0
    # one split: the one-sided one-sample t-test of scipy
    varying = deltas[2:]
    np.testing.assert_allclose(p[2:], ttest_1samp(varying, 0.0, axis=1, alternative="greater").pvalue, rtol=1e-10)
    # folds: the statistic is shrunk by sqrt(FOLD_VARIANCE) whatever their number, so p grows; never for constant rows
    t = ttest_1samp(varying, 0.0, axis=1).statistic
    folded = row_p_values(deltas, n_folds=5)
    np.testing.assert_allclose(folded[2:], student_t.sf(t / np.sqrt(FOLD_VARIANCE), df=99), rtol=1e-10)
    np.testing.assert_array_equal(row_p_values(deltas, n_folds=2), folded)
    np.testing.assert_array_equal(row_p_values(deltas, n_folds=10), folded)
    assert np.all(folded[2:] > p[2:]) and folded[0] == 1.0 and folded[1] == 1.0
    ps = np.array([0.001, 0.008, 0.039, 0.041, 0.9])
    np.testing.assert_array_equal(discoveries(ps, 0.05), false_discovery_control(ps) <= 0.05)
    assert discoveries(np.array([]), 0.05).size == 0


def test_either_p_value_is_simes_combination_of_the_two_tests():
    from archguide.scoring._weak_test import either_p_value

    first = np.array([0.01, 0.01, 0.6, 0.9, 0.0, 1.0, 0.03])
    second = np.array([0.015, 0.9, 0.7, 0.2, 0.5, 1.0, 0.02])
    combined = either_p_value(first, second)
    # min(2 * smaller, larger): both tests seeing a group cost nothing, one test alone pays Bonferroni's factor
    np.testing.assert_array_equal(combined, [0.015, 0.02, 0.7, 0.4, 0.0, 1.0, 0.03])
    np.testing.assert_array_equal(either_p_value(second, first), combined)
    assert np.all(combined <= np.minimum(1.0, 2 * np.minimum(first, second)))
    assert np.all(combined >= np.minimum(first, second))
    # on pure noise (independent uniform p-values) it rejects at its level
    rng = np.random.RandomState(0)
    uniform = rng.rand(2, 200_000)
    assert abs(np.mean(either_p_value(*uniform) <= 0.05) - 0.05) < 0.003


@pytest.mark.parametrize("n_repeats", [2, 30])
def test_the_companion_shuffles_at_least_companion_repeats_times(n_repeats, monkeypatch):
    import archguide.scoring.score as scoring

    seen = []
    measure = scoring._measure

    def record(*args, **kwargs):
        seen.append(kwargs["n_repeats"])
        return measure(*args, **kwargs)

    monkeypatch.setattr(scoring, "_measure", record)
    rng = np.random.RandomState(0)
    X = rng.randn(200, 4)
    y = X[:, 0] + 0.1 * rng.randn(200)
    scores = ag.score_features(X, y, random_state=0, n_repeats=n_repeats, n_estimators=10)
    # the forest, then the linear and the pairwise companions
    assert seen == [n_repeats, max(n_repeats, scoring.COMPANION_REPEATS), max(n_repeats, scoring.COMPANION_REPEATS)]
    assert scores.n_repeats == n_repeats and scores.std.notna().all()
    logged = (
        f"forest ({n_repeats} shuffles per group) and the linear companion and the pairwise companion "
        f"({max(n_repeats, 25)} each), combined by Simes"
    )
    assert not scores.weak["x0"] and any(logged in d for d in scores.decisions)


def test_scores_record_their_decisions_and_p_values(friedman):
    X, y = friedman
    scores = ag.score_features(X[:600], y[:600], random_state=0, task="auto")
    text = " ".join(scores.decisions)
    assert "5 folds" in text and "100 trees" in text and "Benjamini-Hochberg" in text and "0.05" in text
    assert set(scores.group_p_values.index) == set(scores.groups)
    again = ag.FeatureScores.from_dict(json.loads(json.dumps(scores.to_dict())))
    pd.testing.assert_series_equal(again.group_p_values, scores.group_p_values)
    assert again.decisions == scores.decisions and again.n_folds == 5 and again.noise_alpha == 0.05
    # every group above the reported threshold is not weak
    above = scores.group_importances[scores.group_importances > scores.noise_threshold].index
    assert not any(scores.weak[scores.groups[g]].any() for g in above)


def test_the_linear_companion_keeps_faint_linear_effects_the_forest_alone_misses():
    # Two faint linear effects at 400 rows: the forest's held-out losses barely move when they are shuffled.
    # With the per-test widenings for cross-fitted folds (archguide.scoring._weak_test) the companions keep both
    # in four of these six seeds, the forest alone in three.
    misses, misses_forest = 0, 0
    for seed in range(6):
        rng = np.random.RandomState(seed)
        X = rng.randn(400, 10)
        y = 0.25 * X[:, 0] + 0.25 * X[:, 1] + rng.randn(400)
        both = ag.score_features(X, y, random_state=seed)
        forest = ag.score_features(X, y, random_state=seed, companion=None)
        assert (~both.weak.drop(["x0", "x1"])).sum() <= 1
        misses += int(both.weak[["x0", "x1"]].any())
        misses_forest += int(forest.weak[["x0", "x1"]].any())
        # importances stay the forest's; a p-value is at most three times the forest's (Simes over three tests)
        pd.testing.assert_series_equal(both.importances, forest.importances)
        assert (both.group_p_values <= np.minimum(1.0, 3 * forest.group_p_values) + 1e-15).all()
        assert "linear companion" in " ".join(both.decisions)
        assert "companion" not in " ".join(forest.decisions)
    assert misses <= 2 and misses < misses_forest


def test_a_companion_that_cannot_be_fitted_is_skipped_and_said(friedman, monkeypatch):
    from sklearn.base import BaseEstimator, RegressorMixin

    class Unfittable(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            raise ValueError("cannot fit this")

    monkeypatch.setattr("archguide.scoring.score.linear_proxy", lambda task, pairwise=False: Unfittable())
    X, y = friedman
    scores = ag.score_features(X[:300], y[:300], random_state=0)
    alone = ag.score_features(X[:300], y[:300], random_state=0, companion=None)
    assert any("companion='linear' skipped" in d and "cannot fit this" in d for d in scores.decisions)
    pd.testing.assert_series_equal(scores.group_p_values, alone.group_p_values)
    pd.testing.assert_series_equal(scores.weak, alone.weak)


@pytest.mark.parametrize(
    ("task", "metric"),
    [("regression", "r2"), ("regression", "neg_mean_absolute_error"), ("binary", "neg_brier_score"),
     ("multiclass", "neg_brier_score"), ("multiclass", "neg_log_loss")],
)  # fmt: skip
@pytest.mark.parametrize("per_chunk", [None, 4])
def test_the_linear_companions_shortcut_gives_the_shuffled_copies_numbers(task, metric, per_chunk, monkeypatch):
    from archguide.scoring import _permutation
    from archguide.scoring._companion import LinearCompanion, linear_proxy
    from archguide.scoring._permutation import permutation_drops

    if per_chunk is not None:  # several chunks of copies share the rows' own predictions, computed once
        monkeypatch.setattr(_permutation, "copies_per_chunk", lambda X: per_chunk)

    rng = np.random.RandomState(0)
    X = rng.randn(300, 12)
    X[rng.rand(300, 12) < 0.05] = np.nan  # imputed inside the pipeline: the shortcut must impute alike
    y = np.nan_to_num(X[:, 0]) * 2 + rng.randn(300)
    y = {"binary": (y > 0).astype(int), "multiclass": np.digitize(y, [-1, 1])}.get(task, y)
    pipeline = linear_proxy("regression" if task == "regression" else "classification").fit(X[:200], y[:200])
    sets = [[j] for j in range(12)] + [[0, 1, 2]]
    options = dict(
        n_repeats=3,
        metric=metric,
        task=task,
        random_state=0,
        n_classes=None if task == "regression" else 3 - (task == "binary"),
    )
    built = permutation_drops(pipeline, X[200:], y[200:], sets, **options)
    short = permutation_drops(LinearCompanion(pipeline), X[200:], y[200:], sets, **options)
    assert short.baseline == built.baseline
    np.testing.assert_allclose(short.drops, built.drops, rtol=0, atol=1e-12)
    np.testing.assert_allclose(short.row_deltas, built.row_deltas, rtol=0, atol=1e-12)


def test_n_shadow_is_deprecated(friedman):
    X, y = friedman
    with pytest.warns(FutureWarning, match="n_shadow is no longer used"):
        ag.score_features(X[:300], y[:300], random_state=0, n_shadow=20)


@pytest.mark.parametrize("companion", ["linear", None])
def test_the_progress_bar_counts_every_shuffled_copy(companion, monkeypatch):
    import archguide.scoring.score as scoring

    bars = []

    class Bar:
        def __init__(self, *, total, verbose, desc):
            self.total, self.done, self.closed = total, 0, False
            bars.append(self)

        def update(self, n):
            self.done += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(scoring, "_progress", Bar)
    rng = np.random.RandomState(0)
    X = rng.randn(150, 5)
    X[:, 4] = 1.0  # a constant column is never shuffled
    y = X[:, 0] + rng.randn(150)
    ag.score_features(X, y, random_state=0, n_estimators=5, companion=companion)
    (bar,) = bars
    per_set = 5 + (scoring.COMPANION_REPEATS if companion else 0)
    assert bar.closed and bar.done == bar.total == 5 * 4 * per_set  # folds x shuffled columns x shuffles


@pytest.mark.parametrize(
    "scoring",
    ["neg_median_absolute_error", "callable", "roc_auc_ovr"],
)
def test_a_scorer_outside_the_batched_ones_scores_with_the_companions_on(scoring):
    # The companions are not scikit-learn estimators: a scorer called on them failed inside scikit-learn.
    from sklearn.datasets import make_classification, make_friedman1
    from sklearn.metrics import make_scorer, median_absolute_error

    if scoring == "roc_auc_ovr":
        X, y = make_classification(
            400, 8, n_informative=3, n_redundant=0, n_classes=3, shuffle=False, random_state=0
        )  # fmt: skip
        y, informative = np.array(["a", "b", "c"])[y], ["x0", "x1", "x2"]
    else:
        X, y = make_friedman1(300, 8, random_state=0)
        informative = ["x0", "x1", "x3"]
        if scoring == "callable":
            scoring = make_scorer(median_absolute_error, greater_is_better=False)
    scores = ag.score_features(X, y, scoring=scoring, random_state=0)
    noise = ["x5", "x6", "x7"]
    assert not scores.weak[informative].any(), scores.to_frame()
    assert scores.importances[informative].min() > scores.importances[noise].max()


def test_grouping_a_long_table_reads_a_bounded_spread_of_its_rows(monkeypatch):
    """Past MAX_CORRELATION_ROWS rows the correlations come from that many rows, spread through the
    table (here sorted by its first column, so the first rows alone would see a narrow slice)."""
    from archguide.scoring import grouping

    rng = np.random.default_rng(0)
    a = np.sort(rng.normal(size=250_000))
    X = np.column_stack([a, a + rng.normal(scale=0.3, size=a.size), rng.normal(size=a.size)])
    seen = []
    real = grouping.rankdata
    monkeypatch.setattr(grouping, "rankdata", lambda values, **kw: seen.append(values.shape) or real(values, **kw))
    assert grouping.correlation_groups(X, ["a", "copy", "other"], [0, 1, 2], 0.8) == [[0, 1], [2]]
    assert seen == [(grouping.MAX_CORRELATION_ROWS, 3)]
    narrow = X[: grouping.MAX_CORRELATION_ROWS // 50]  # the lowest values of a: the copy's noise dominates
    assert grouping.correlation_groups(narrow, ["a", "copy", "other"], [0, 1, 2], 0.8) == [[0], [1], [2]]
