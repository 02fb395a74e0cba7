"""ImportanceHyperModel: the search space, its defaults, its trials, bad bounds."""

import keras_tuner as kt
import numpy as np
import pytest

import archguide as ag
from archguide.exceptions import ConfigError, DataError
from archguide.tuning import ImportanceHyperModel


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
    assert "importance_tau" in history.history and "val_data_loss" in history.history
    assert len(history.history["loss"]) < 20 or min(history.history["val_data_loss"]) > 0
    hp = kt.HyperParameters()
    hp.Fixed("rescoring", "none")
    off = ImportanceHyperModel(scores, rescoring=[None], seed=0)
    history = off.fit(hp, off.build(hp), X, y, validation_data=(X_val, y_val), epochs=2, verbose=0)
    assert "importance_tau" not in history.history
    with pytest.raises(DataError, match="needs validation_data"):
        hm.fit(hp, hm.build(hp), X, y, epochs=1)


@pytest.mark.parametrize("tuner_class", [kt.RandomSearch, kt.BayesianOptimization])
def test_a_search_runs_trials_and_reads_the_best(data, tmp_path, tuner_class):
    scores, X, y, X_val, y_val = data
    hm = ImportanceHyperModel(scores, patience=3, seed=0)
    tuner = tuner_class(hm, objective=hm.objective, max_trials=2, directory=tmp_path, project_name="p", seed=0)
    tuner.search(X, y, validation_data=(X_val, y_val), epochs=4, verbose=0)
    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.score is not None and np.isfinite(t.score) for t in trials)
    assert trials[0].score == min(t.score for t in trials)
    best = tuner.get_best_hyperparameters()[0].values
    assert 32 <= best["total_units"] <= 512
    model = hm.build(tuner.get_best_hyperparameters()[0])
    assert model.get_layer("gate") is not None


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
