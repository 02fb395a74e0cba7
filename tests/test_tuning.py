"""ImportanceHyperModel: the search space, its defaults, its trials, bad bounds."""

import gc
import tempfile
import warnings
import weakref

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest

import archguide as ag
from archguide.exceptions import ConfigError, DataError
from archguide.model.layers import CategoryEmbedding
from archguide.tuning.hypermodel import ImportanceHyperModel, ObjectiveError


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(500, n_features=12, noise=1.0, random_state=0)
    X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    scores = ag.score_features(X[:400], y[:400], random_state=0)
    return scores, X[:400], y[:400], X[400:], y[400:]


def test_empty_hyperparameters_build_the_default_model(data):
    scores, X, *_ = data
    ours = ImportanceHyperModel(scores, seed=0).build(kt.HyperParameters())
    default = ag.build_model(ag.plan_architecture(scores), seed=0)
    assert [w.shape for w in ours.weights] == [w.shape for w in default.weights]
    np.testing.assert_array_equal(ours.predict(X[:20], verbose=0), default.predict(X[:20], verbose=0))


def test_the_trials_plan_the_category_embedding_they_are_given():
    from conftest import make_scores

    levels = [f"c={i}" for i in range(12)]
    scores = make_scores({"a": 0.6, **{f: 0.1 for f in levels}, "b": 0.05})
    hm = ImportanceHyperModel(scores, seed=0, category_embedding=4, categorical={"c": levels})
    model = hm.build(kt.HyperParameters())
    tables = [layer for layer in model.layers if isinstance(layer, CategoryEmbedding)]
    assert tables and all(layer.embeddings.shape[0] > layer.width for layer in tables)
    with pytest.raises(ConfigError, match="category_embedding"):
        ImportanceHyperModel(scores, category_embedding=-2)


def test_the_space_declares_every_option_with_its_default(data):
    scores = data[0]
    hp = kt.HyperParameters()
    values = ImportanceHyperModel(scores).hyperparameters(hp)
    assert {h.name for h in hp.space} == {
        "total_units", "grouping", "n_tiers", "depth", "alpha", "l1", "l1_power", "weak", "dropout",
        "learning_rate", "rescoring", "rescoring_period",
    }  # fmt: skip
    assert values["total_units"] == 128 and values["rescoring"] == "gradient" and values["weak"] == "penalize"
    scales = {h.name: getattr(h, "sampling", None) for h in hp.space}
    assert scales["l1"] == scales["learning_rate"] == scales["total_units"] == "log"
    # a fixed range and a single choice are not searched
    hp = kt.HyperParameters()
    ImportanceHyperModel(scores, depth=(2, 2), weak=["penalize"], rescoring=[None, "gradient"]).hyperparameters(hp)
    assert "weak" not in {h.name for h in hp.space}
    assert isinstance(hp._hps["depth"][0], kt.engine.hyperparameters.Fixed)
    # bounds without the plan's default: the nearest end; choices without it: the first
    hp = kt.HyperParameters()
    values = ImportanceHyperModel(scores, depth=(3, 4), rescoring=["permutation", None]).hyperparameters(hp)
    assert values["depth"] == 3 and values["rescoring"] == "permutation"


def test_fit_rescores_and_stops_on_the_penalty_free_validation_loss(data):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, patience=3, seed=0)
    hp = kt.HyperParameters()
    history = hm.fit(hp, hm.build(hp), X, y, validation_data=(X_val, y_val), epochs=20, verbose=0)
    assert "gate_penalty" in history.history and "val_data_loss" in history.history  # it re-scored
    # importance_tau is NaN until the second re-scoring: left out, so that no trial metric is NaN
    assert "importance_tau" not in history.history
    assert all(np.all(np.isfinite(values)) for values in history.history.values())
    assert len(history.history["loss"]) < 20 or min(history.history["val_data_loss"]) > 0
    hp = kt.HyperParameters()
    hp.Fixed("rescoring", "none")
    off = ImportanceHyperModel(scores, rescoring=[None], seed=0)
    history = off.fit(hp, off.build(hp), X, y, validation_data=(X_val, y_val), epochs=2, verbose=0)
    assert "gate_penalty" not in history.history
    with pytest.raises(DataError, match="needs validation_data"):
        hm.fit(hp, hm.build(hp), X, y, epochs=1)


def test_a_cosine_trial_falls_from_its_learning_rate_over_the_epochs_it_runs(data):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, rescoring=[None], lr_schedule="cosine", patience=10, seed=0)
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.01)
    # Hyperband continues a trial from initial_epoch: the cosine runs over the epochs of this call
    history = hm.fit(hp, hm.build(hp), X, y, validation_data=(X_val, y_val), epochs=6, initial_epoch=2, verbose=0)
    rates = history.history["learning_rate"]
    assert len(rates) == 4 and rates[0] == pytest.approx(0.01) and rates[2] == pytest.approx(0.005)
    assert rates[0] > rates[1] > rates[2] > rates[3] > 0


@pytest.mark.parametrize("tuner_class", [kt.RandomSearch, kt.BayesianOptimization])
def test_a_search_runs_trials_and_reads_the_best(data, tmp_path, tuner_class):
    scores, X, y, X_val, y_val = data
    models = []  # weak references to each trial's network

    class Note(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            models.append(weakref.ref(self.model))

    hm = ImportanceHyperModel(scores, patience=3, seed=0)
    # the Bayesian oracle's second trial comes from its Gaussian process (by default it draws at random first)
    options = {"num_initial_points": 1} if tuner_class is kt.BayesianOptimization else {}
    tuner = tuner_class(
        hm, objective=hm.objective, max_trials=2, directory=tmp_path, project_name="p", seed=0, **options
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        tuner.search(X, y, validation_data=(X_val, y_val), epochs=4, callbacks=[Note()], verbose=0)
    assert not [w for w in seen if "All-NaN" in str(w.message)]  # no trial metric without a value
    gc.collect()
    # nothing of ours holds a finished trial's network (KerasTuner clears the session between trials)
    assert len(models) == 2 and models[0]() is None
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.score is not None and np.isfinite(t.score) for t in trials)
    assert trials[0].score == min(t.score for t in trials)
    best = tuner.get_best_hyperparameters()[0].values
    assert 32 <= best["total_units"] <= 512
    model = tuner.get_best_models(1)[0]  # the best trial's network, its best epoch's weights
    predicted = model.predict(X_val, verbose=0)
    assert predicted.shape == (len(X_val), 1) and np.all(np.isfinite(predicted))
    assert float(np.mean((predicted.ravel() - y_val) ** 2)) == pytest.approx(trials[0].score, rel=1e-3)


@pytest.mark.slow
def test_hyperband_runs(data, tmp_path):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, patience=3, seed=0)
    tuner = kt.Hyperband(hm, objective=hm.objective, max_epochs=2, factor=2, directory=tmp_path, seed=0)
    tuner.search(X, y, validation_data=(X_val, y_val), verbose=0)
    trials = tuner.oracle.get_best_trials(10)
    assert len(trials) >= 2 and all(t.score is not None and np.isfinite(t.score) for t in trials)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"total_units": (512, 32)}, "inverted range for total_units: min 512 is above max 32"),
        ({"l1": (0.0, 1e-2)}, "l1, expected bounds above 0"),
        ({"learning_rate": 1e-3}, "learning_rate, expected \\(min, max\\)"),
        ({"n_tiers": (2.5, 4)}, "n_tiers, expected two integers"),
        ({"dropout": (0.0, 1.0)}, "dropout, expected rates below 1"),
        ({"weak": []}, "empty choice for weak"),
        ({"grouping": ["tiers", "branches"]}, "invalid choice for grouping: \\['branches'\\]"),
    ],
)
def test_bad_bounds_are_named(data, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ImportanceHyperModel(data[0], **kwargs)


def test_the_package_exports_it_without_importing_keras_tuner_first():
    import subprocess
    import sys

    code = "import sys, archguide as ag; assert 'keras_tuner' not in sys.modules; ag.ImportanceHyperModel"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
    assert ag.ImportanceHyperModel is ImportanceHyperModel


def test_scores_are_required():
    with pytest.raises(DataError, match="needs FeatureScores"):
        ImportanceHyperModel({"a": 1.0})


class _Recording(ImportanceHyperModel):
    """Keeps what each trial's fit returned."""

    def fit(self, hp, model, *args, **kwargs):
        self.returned = super().fit(hp, model, *args, **kwargs)
        return self.returned


def test_cv_scores_a_trial_by_the_mean_over_folds(data, tmp_path):
    scores, X, y, *_ = data
    hm = _Recording(scores, cv=3, patience=2, seed=0, rescoring=["permutation"])
    tuner = kt.RandomSearch(hm, objective=hm.objective, max_trials=1, directory=tmp_path, seed=0)
    tuner.search(X, y, epochs=3, verbose=0)
    assert len(hm.returned) == 3  # one History per fold, each trained and validated on its own rows
    fold_bests = [min(h.history["val_data_loss"]) for h in hm.returned]
    assert len(set(fold_bests)) == 3
    trial = tuner.oracle.get_best_trials(1)[0]
    assert trial.score == pytest.approx(np.mean(fold_bests), rel=1e-6)
    # the folds partition the rows: each fold's network validated on a third of them
    assert all(h.params["steps"] == int(np.ceil(len(X) * 2 / 3 / 32)) for h in hm.returned)
    with pytest.raises(DataError, match="holds out its own folds"):
        hm.fit(kt.HyperParameters(), hm.build(kt.HyperParameters()), X, y, validation_data=(X, y), epochs=1)


def test_cv_is_stratified_for_classification(data):
    scores, X, y, *_ = data
    labels = (y > np.median(y)).astype("float32")
    hm = ImportanceHyperModel(scores, task="binary", cv=4, seed=0)
    for _, val in hm.cv.split(X, labels):
        assert abs(labels[val].mean() - labels.mean()) < 0.02
    histories = hm.fit(kt.HyperParameters(), hm.build(kt.HyperParameters()), X, labels, epochs=1, verbose=0)
    assert len(histories) == 4


def test_an_objective_the_model_does_not_report_stops_the_search(data, tmp_path):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, seed=0)
    tuner = kt.RandomSearch(hm, objective="val_accuracy", max_trials=3, directory=tmp_path, seed=0)
    with pytest.raises(ObjectiveError, match=r"'val_accuracy' is not among .*'val_data_loss'") as caught:
        tuner.search(X, y, validation_data=(X_val, y_val), epochs=2, verbose=0)
    assert isinstance(caught.value, ConfigError)
    assert len(tuner.oracle.trials) == 1  # stopped at once, not retried trial after trial


def test_features_must_be_the_scored_ones(data):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, seed=0)
    hp = kt.HyperParameters()
    frame = pd.DataFrame(X, columns=scores.features)
    shuffled = frame[frame.columns[::-1]]
    np.testing.assert_array_equal(hm._features(shuffled, "x"), X)  # matched by name, any order
    with pytest.raises(DataError, match="x has columns that are not the scored features: missing 'x0'"):
        hm.fit(hp, hm.build(hp), frame.drop(columns="x0"), y, validation_data=(X_val, y_val), epochs=1)
    with pytest.raises(DataError, match=r"validation_data has shape \(100, 11\), .* 12 features"):
        hm.fit(hp, hm.build(hp), X, y, validation_data=(X_val[:, 1:], y_val), epochs=1)
    with pytest.raises(DataError, match="non-numeric"):
        hm.fit(hp, hm.build(hp), frame.astype({"x0": str}), y, validation_data=(X_val, y_val), epochs=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cv": 1}, "cv, expected an integer >= 2"),
        ({"task": "ranking"}, "task, expected one of"),
        ({"task": "multiclass", "n_outputs": 1}, "n_outputs, expected an integer >= 2"),
        ({"lr_patience": 0}, "lr_patience, expected a positive integer or None"),
        ({"lr_schedule": "linear"}, "lr_schedule, expected one of"),
        ({"min_improvement": 1.0}, r"min_improvement, expected a number in \[0.0, 1.0\)"),
    ],
)
def test_bad_options_are_named(data, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ImportanceHyperModel(data[0], **kwargs)


@pytest.fixture(scope="module")
def table():
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(300, n_features=8, noise=1.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    frame["colour"] = pd.Categorical(np.where(X[:, 0] > 0.5, "red", "blue"))
    frame.loc[::17, "f6"] = np.nan
    return frame, pd.Series(y, index=np.arange(300) * 3 + 7, name="target")


def test_tune_returns_a_fitted_estimator_with_the_best_trial(table, tmp_path, monkeypatch):
    X, y = table
    before = X.copy()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    estimator = ag.ImportanceGuidedRegressor(epochs=4, patience=2, random_state=0)
    best = estimator.tune(X, y, max_trials=3, tuner="random", search_space={"total_units": (16, 64)})
    results = best.tuning_results_
    assert len(results) == 3 and list(results["status"]) == ["COMPLETED"] * 3
    assert results["score"].is_monotonic_increasing
    top = results.iloc[0]
    params = best.get_params()
    for name in ("total_units", "grouping", "depth", "l1", "l1_power", "weak", "dropout", "learning_rate"):
        assert params[name] == top[name], name
    assert 16 <= params["total_units"] <= 64
    assert best is not estimator and not hasattr(estimator, "model_")  # the estimator itself is left as it was
    assert estimator.get_params()["total_units"] == 128
    pd.testing.assert_frame_equal(X, before)
    assert best.predict(X.iloc[:, ::-1]).shape == (300,)  # columns by name, any order
    assert best.scores_.to_dict() == ag.ImportanceGuidedRegressor(random_state=0, epochs=1).fit(X, y).scores_.to_dict()
    assert not list(tmp_path.glob("archguide-tune-*"))  # the search's scratch directory is removed


@pytest.mark.slow
def test_tune_a_classifier_with_cv_and_string_labels(table):
    X, y = table
    labels = np.where(y > y.median(), "high", "low")
    best = ag.ImportanceGuidedClassifier(epochs=2, patience=2, random_state=1).tune(
        X, labels, max_trials=2, tuner="bayesian", cv=2
    )
    assert len(best.tuning_results_) == 2 and set(best.predict(X)) <= {"high", "low"}
    assert best.score(X, labels) > 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"search_space": {"alpha": (1, 2)}}, ConfigError, r"unknown search_space keys \['alpha'\]"),
        ({"search_space": {"depth": (3, 1)}}, ConfigError, "inverted range for depth"),
        ({"tuner": "grid"}, ConfigError, "tuner, expected one of"),
        ({"max_trials": 0}, ConfigError, "max_trials, expected a positive integer"),
    ],
)
def test_tune_names_bad_options(table, kwargs, error, message):
    X, y = table
    with pytest.raises(error, match=message):
        ag.ImportanceGuidedRegressor(epochs=1).tune(X, y, **kwargs)


def test_bounds_written_as_text_in_yaml_are_numbers(data):
    # YAML 1.1 reads 1e-5 (no dot) as a string: a search_space from a config file holds such bounds
    hm = ImportanceHyperModel(data[0], l1=["1e-5", "1e-2"], learning_rate=("3e-4", 0.01))
    assert hm.ranges["l1"] == (1e-5, 1e-2) and hm.ranges["learning_rate"] == (3e-4, 0.01)
    with pytest.raises(ConfigError, match="l1, expected two finite numbers"):
        ImportanceHyperModel(data[0], l1=["small", "1e-2"])


def test_tune_refits_a_groups_plan_whose_budget_was_raised(table, tmp_path, monkeypatch):
    X, y = table  # 9 columns: a branch per group needs at least 36 units
    space = {"grouping": ["groups"], "total_units": (8, 8), "depth": (1, 1)}
    prefixes, scratch = [], tempfile.TemporaryDirectory
    monkeypatch.setattr(
        tempfile, "TemporaryDirectory", lambda *a, **k: prefixes.append(k.get("prefix")) or scratch(*a, **k)
    )
    best = ag.ImportanceGuidedRegressor(epochs=2, random_state=0).tune(
        X, y, max_trials=1, search_space=space, directory=tmp_path / "search"
    )
    assert (tmp_path / "search").is_dir() and "archguide-tune-" not in prefixes  # no scratch where one is given
    n_groups = len(best.scores_.groups)
    assert best.get_params()["total_units"] == 4 * n_groups == best.tuning_results_["total_units"].iloc[0]
    assert best.plan_.total_units == 4 * n_groups and len(best.plan_.branches) == n_groups


def test_the_default_tuner_is_what_bayesian_runs_at_the_default_budget(data, tmp_path):
    """Why "random" is tune's default: KerasTuner's Bayesian oracle draws at random until 3 trials per
    searched option have completed, so at tune's default 20 trials it tries what RandomSearch tries."""
    import inspect

    hp = kt.HyperParameters()
    ImportanceHyperModel(data[0]).hyperparameters(hp)
    budget = inspect.signature(ag.ImportanceGuidedRegressor.tune).parameters["max_trials"].default
    assert inspect.signature(ag.ImportanceGuidedRegressor.tune).parameters["tuner"].default == "random"
    assert 3 * len(hp.space) > budget  # 36 > 20

    def draws(oracle_class, name):
        oracle = oracle_class(objective=kt.Objective("val_loss", "min"), max_trials=budget, seed=3, hyperparameters=hp)
        oracle._set_project_dir(str(tmp_path), name)
        values = []
        for i in range(budget):
            trial = oracle.create_trial("tuner0")
            values.append(dict(trial.hyperparameters.values))
            oracle.update_trial(trial.trial_id, {"val_loss": float((7 * i) % 5)})  # scores the GP would use
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
        return values

    random_draws = draws(kt.oracles.RandomSearchOracle, "random")
    assert len({str(v) for v in random_draws}) == budget  # twenty different trials
    assert draws(kt.oracles.BayesianOptimizationOracle, "bayesian") == random_draws
