"""Numbers that say what is true: trials ranked on rows the scoring never saw, weighted held-out rows,
validation_split as Keras takes it, the refit model described as what it is, early stopping on the data loss."""

import json

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_friedman1

import archguide as ag
import archguide.estimators.estimator as estimators_module
from archguide.exceptions import DataError
from archguide.tuning.hypermodel import FoldedHyperModel, ImportanceHyperModel

FAST = {"epochs": 15, "n_repeats": 2, "total_units": 32, "patience": 5}


@pytest.fixture(scope="module")
def data():
    X, y = make_friedman1(300, n_features=8, noise=0.5, random_state=0)
    X, y = X.astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    return ag.score_features(X[:240], y[:240], random_state=0), X, y


def _rows(matrix) -> set:
    return {row.tobytes() for row in np.ascontiguousarray(matrix, dtype=np.float32)}


@pytest.mark.parametrize("cv", [None, 3])
def test_tune_never_encodes_or_scores_the_rows_a_trial_is_validated_on(cv, monkeypatch, tmp_path):
    X, y = make_friedman1(240, n_features=6, noise=0.5, random_state=1)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    scored, folds = [], []
    real_score, real_init = estimators_module.score_features, FoldedHyperModel.__init__

    def spy_score(X_scored, *args, **kwargs):  # the estimator scores a typed table of its encoded rows
        scored.append(X_scored.encode())
        return real_score(X_scored, *args, **kwargs)

    def spy_init(self, given, **kwargs):
        folds.extend(given)
        real_init(self, given, **kwargs)

    monkeypatch.setattr(estimators_module, "score_features", spy_score)
    monkeypatch.setattr(FoldedHyperModel, "__init__", spy_init)
    # standard scaling: its means and spreads show exactly which rows the encoding was fitted on
    est = ag.ImportanceGuidedRegressor(epochs=2, n_repeats=2, random_state=0, scaling="standard")
    est.tune(frame, y, max_trials=1, cv=cv, directory=tmp_path)
    assert len(folds) == (cv or 1) and len(scored) == len(folds) + 1  # one scoring per fold, then the refit's
    for fold, rows_scored in zip(folds, scored):
        held_out = _rows(fold.x_val)
        assert _rows(rows_scored) <= _rows(fold.x) and not (_rows(rows_scored) & held_out)
        # the encoding (its means and scales) was fitted on the training rows too
        np.testing.assert_allclose(fold.x.mean(axis=0), 0.0, atol=1e-5)
        np.testing.assert_allclose(fold.x.std(axis=0), 1.0, atol=1e-4)
        assert len(fold.x) + len(fold.x_val) == len(frame)
    if cv:  # the held-out folds cover every row once
        assert sum(len(f.x_val) for f in folds) == len(frame)


def test_sample_weight_weights_the_held_out_folds_too(data):
    scores, X, y = data
    y = y.copy()
    outliers = np.arange(0, len(y), 10)
    y[outliers] += 100.0  # rows the caller weights out, training and validation alike
    weights = np.ones(len(y), dtype="float32")
    weights[outliers] = 0.0
    hm = ImportanceHyperModel(scores, cv=3, seed=0, rescoring=[None])
    hp = kt.HyperParameters()
    histories = hm.fit(hp, hm.build(hp), X, y, sample_weight=weights, epochs=2, verbose=0)
    weighted = [min(h.history["val_data_loss"]) for h in histories]
    assert max(weighted) < 10  # an unweighted validation loss would be near 100**2 / 10 = 1000
    histories = hm.fit(hp, hm.build(hp), X, y, epochs=2, verbose=0)
    assert min(min(h.history["val_data_loss"]) for h in histories) > 100


def test_a_search_takes_validation_split_as_keras_does(data, tmp_path):
    scores, X, y = data
    hm = ImportanceHyperModel(scores, seed=0, patience=2)
    tuner = kt.RandomSearch(hm, objective=hm.objective, max_trials=1, directory=tmp_path, seed=0)
    tuner.search(X, y, validation_split=0.2, epochs=2, verbose=0)
    trial = tuner.oracle.get_best_trials(1)[0]
    assert trial.status == "COMPLETED" and np.isfinite(trial.score)


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_validation_split_holds_out_the_last_rows_or_every_class(data, task, monkeypatch):
    scores, X, y = data
    labels = np.sort(y) if task == "regression" else (np.arange(len(y)) >= 240).astype("float32")  # 1s at the end
    hm = ImportanceHyperModel(scores, task=task, seed=0)
    seen = {}

    def spy(hp, model, x, y_fit, validation, *args):
        seen["x"], seen["val"] = x, validation
        return None

    monkeypatch.setattr(hm, "_fit_one", spy)
    hp = kt.HyperParameters()
    hm.fit(hp, None, X, labels, validation_split=0.25, epochs=1)
    x_val, y_val = seen["val"]
    assert len(y_val) == 75 and len(seen["x"]) == 225
    if task == "regression":  # the last quarter, unshuffled, as Keras' own validation_split
        np.testing.assert_array_equal(y_val, labels[225:])
    else:  # Keras' last rows would hold only the class 1; stratified, both are there in proportion
        assert y_val.mean() == pytest.approx(labels.mean(), abs=0.02)
    with pytest.raises(DataError, match=r"validation_split must be a fraction in \(0, 1\)"):
        hm.fit(hp, None, X, labels, validation_split=1.5)
    with pytest.raises(DataError, match="holds out its own folds"):
        ImportanceHyperModel(scores, cv=2).fit(hp, None, X, labels, validation_split=0.2)


def test_early_stopping_on_val_data_loss_works_as_the_readme_writes_it(data):
    scores, X, y = data
    model = ag.build_model(ag.plan_architecture(scores, total_units=16), learning_rate=0.05, seed=0)
    stop = keras.callbacks.EarlyStopping(monitor="val_data_loss", patience=2, restore_best_weights=True)
    history = model.fit(X[:240], y[:240], validation_data=(X[240:], y[240:]), epochs=40, callbacks=[stop], verbose=0)
    losses = history.history["val_data_loss"]
    assert len(losses) < 40  # it stopped, on the data loss, minimised
    evaluated = model.evaluate(X[240:], y[240:], verbose=0, return_dict=True)["data_loss"]
    assert evaluated == pytest.approx(min(losses), rel=1e-4)  # and restored the best weights


def test_refit_keeps_a_network_trained_on_the_validation_rows_and_says_so(tmp_path):
    X, y = make_friedman1(n_samples=300, n_features=5, random_state=0)
    fast = {**FAST, "learning_rate": 0.01}
    plain = ag.ImportanceGuidedRegressor(random_state=0, **fast).fit(X, y)
    val = plain.validation_indices_  # the split depends on the seed and the row count only
    marker = np.zeros(len(y))
    marker[val] = 1.0  # seen in training only by a network that trained on the validation rows
    X2, y2 = np.column_stack([X, marker]), y + 8.0 * marker
    first = ag.ImportanceGuidedRegressor(random_state=0, **fast).fit(X2, y2)
    refitted = ag.ImportanceGuidedRegressor(random_state=0, refit=True, **fast).fit(X2, y2)
    np.testing.assert_array_equal(first.validation_indices_, val)
    miss_first = np.mean(y2[val] - first.predict(X2[val]))
    miss_refit = np.mean(y2[val] - refitted.predict(X2[val]))
    assert miss_first > 5 and abs(miss_refit) < miss_first / 2  # the saved model learned the validation rows
    assert len(refitted.refit_history_["data_loss"]) == refitted.best_epoch_ and first.refit_history_ is None
    ag.save_run(refitted, tmp_path / "run", X=X2, y=y2)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["refit"] is True and "validation" not in info["metrics"]
    validation, training = (info["metrics"][k] for k in info["metrics"])
    assert "first network" in list(info["metrics"])[0] and "saved model, every row" in list(info["metrics"])[1]
    scale = refitted.target_scale_
    assert training["mse"] == pytest.approx(refitted.refit_history_["data_loss"][-1] * scale**2)
    assert validation["mse"] == pytest.approx(refitted.history_["val_data_loss"][refitted.best_epoch_ - 1] * scale**2)
    report = (tmp_path / "run" / "report.html").read_text()
    assert "trained on every row, validation rows included" in report
    loaded = ag.load(tmp_path / "run" / "model.keras")
    assert loaded.refit_history_ == refitted.refit_history_
