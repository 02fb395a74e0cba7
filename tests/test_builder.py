import json

import keras
import numpy as np
import pytest
from conftest import make_scores, run_python

import archguide as ag
from archguide.builder import DATA_LOSS_METRIC
from archguide.exceptions import ConfigError
from archguide.layers import ColumnSelector, FeatureGate

IMPORTANCES = {"a": 0.6, "b": 0.4, "c": 0.2, "d": 0.1, **{f"n{i}": 0.0 for i in range(4)}}
WEAK = [f"n{i}" for i in range(4)]


@pytest.fixture
def plan():
    return ag.plan_architecture(make_scores(IMPORTANCES, weak=WEAK), total_units=24, n_tiers=3, head_units=8)


def _x(n=64, p=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, p)).astype("float32")


# ------------------------------------------------------------------ FeatureGate


def test_gate_adds_its_penalty_to_the_loss():
    gate = FeatureGate(strengths=[0.5, 0.0, 2.0])
    out = gate(_x(4, 3))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), _x(4, 3))  # gates start at 1
    assert len(gate.losses) == 1
    assert float(keras.ops.convert_to_numpy(gate.losses[0])) == pytest.approx(2.5)
    gate.gate.assign([-2.0, 1.0, 0.5])
    gate.set_strengths([1.0, 1.0, 1.0])
    assert gate.penalty() == pytest.approx(3.5)
    np.testing.assert_allclose(gate.get_strengths(), [1.0, 1.0, 1.0])


def test_gate_strengths_are_a_non_trainable_weight():
    gate = FeatureGate(strengths=[0.1, 0.2])
    gate.build((None, 2))
    assert [w.name for w in gate.trainable_weights] == ["gate"]
    assert [w.name for w in gate.non_trainable_weights] == ["strength"]


@pytest.mark.parametrize(
    ("strengths", "match"),
    [([0.1, -1.0], "finite numbers >= 0"), ([0.1, float("nan")], "finite numbers >= 0"), ([0.1], "expected 2 values")],
)
def test_gate_rejects_bad_strengths(strengths, match):
    gate = FeatureGate(strengths=[0.0, 0.0])
    gate.build((None, 2))
    with pytest.raises(ValueError, match=match):
        gate.set_strengths(strengths)


def test_gate_config_is_plain_json_and_round_trips():
    gate = FeatureGate(strengths=[0.1, 0.2], feature_names=["u", "v"], name="g")
    gate.build((None, 2))
    gate.set_strengths([0.3, 0.4])
    config = gate.get_config()
    json.dumps(config)
    again = FeatureGate.from_config(config)
    again.build((None, 2))
    np.testing.assert_allclose(again.get_strengths(), [0.3, 0.4])
    assert again.feature_names == ["u", "v"]


def test_column_selector():
    layer = ColumnSelector([2, 0])
    out = keras.ops.convert_to_numpy(layer(_x(5, 3)))
    np.testing.assert_array_equal(out, _x(5, 3)[:, [2, 0]])
    assert ColumnSelector.from_config(layer.get_config()).indices == [2, 0]
    with pytest.raises(ValueError, match="indices"):
        ColumnSelector([])


# ------------------------------------------------------------------ build_model


def test_layers_have_readable_names_and_the_head_follows_the_merge(plan):
    model = ag.build_model(plan)
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["features", "gate"]
    for b in plan.branches:
        for i in range(1, len(b.units) + 1):
            assert f"branch_{b.name}_dense_{i}" in names
    assert names[-3:] == ["merge", "head_dense_1", "output"]
    assert model.get_layer("merge").output.shape[-1] == sum(b.units[-1] for b in plan.branches)
    assert model.input_shape == (None, len(plan.features))
    # The plan's parameter estimate is exact.
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert plan.n_params() == trainable


@pytest.mark.parametrize(
    ("task", "n_outputs", "activation", "loss"),
    [
        ("regression", 1, "linear", "mean_squared_error"),
        ("regression", 3, "linear", "mean_squared_error"),
        ("binary", 1, "sigmoid", "binary_crossentropy"),
        ("multiclass", 4, "softmax", "sparse_categorical_crossentropy"),
    ],
)
def test_output_and_loss_follow_the_task(plan, task, n_outputs, activation, loss):
    model = ag.build_model(plan, task=task, n_outputs=n_outputs)
    out = model.get_layer("output")
    assert out.units == n_outputs and out.activation.__name__ == activation
    assert model.loss == loss
    assert model.predict(_x(), verbose=0).shape == (64, n_outputs)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"task": "ranking"}, "task"),
        ({"task": "binary", "n_outputs": 2}, "n_outputs=1"),
        ({"task": "multiclass", "n_outputs": 1}, "at least 2"),
        ({"n_outputs": 0}, "n_outputs"),
        ({"dropout": 1.0}, "dropout"),
        ({"head_units": [8, -1]}, "head_units"),
    ],
)
def test_bad_options_raise_config_error(plan, options, match):
    with pytest.raises(ConfigError, match=match):
        ag.build_model(plan, **options)


def test_not_a_plan():
    with pytest.raises(ConfigError, match="ArchitecturePlan"):
        ag.build_model({"features": []})


def test_model_trains_on_friedman_and_its_loss_falls(friedman, friedman_scores):
    X, y = friedman
    plan = ag.plan_architecture(friedman_scores, total_units=48)
    model = ag.build_model(plan, seed=0, learning_rate=3e-3)
    history = model.fit(X.astype("float32"), y, epochs=15, batch_size=64, verbose=0, validation_split=0.2)
    data_loss = history.history[f"val_{DATA_LOSS_METRIC}"]
    assert data_loss[-1] < 0.25 * data_loss[0]
    # The data loss is the loss without the gate's penalty.
    penalty = model.get_layer("gate").penalty()
    assert history.history["loss"][-1] > history.history[DATA_LOSS_METRIC][-1]
    assert penalty > 0


def test_weak_drop_model_ignores_weak_features():
    plan = ag.plan_architecture(make_scores(IMPORTANCES, weak=WEAK), total_units=24, weak="drop")
    model = ag.build_model(plan, seed=0)
    X = _x()
    changed = X.copy()
    weak_columns = [plan.features.index(f) for f in WEAK]
    changed[:, weak_columns] = np.random.default_rng(5).normal(size=(len(X), len(WEAK))) * 100
    np.testing.assert_array_equal(model.predict(X, verbose=0), model.predict(changed, verbose=0))
    strong = X.copy()
    strong[:, 0] += 10
    assert not np.allclose(model.predict(X, verbose=0), model.predict(strong, verbose=0))


def test_plans_with_different_tiers_take_the_same_input(friedman_scores):
    shapes = {
        ag.build_model(ag.plan_architecture(friedman_scores, n_tiers=k), compile=False).input_shape
        for k in (1, 2, 3, 5)
    }
    assert shapes == {(None, 20)}


def test_seed_makes_the_model_reproducible(plan):
    a = ag.build_model(plan, seed=3).predict(_x(), verbose=0)
    b = ag.build_model(plan, seed=3).predict(_x(), verbose=0)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ persistence


def test_save_and_load_in_a_fresh_process(plan, tmp_path):
    model = ag.build_model(plan, seed=0)
    X = _x(200)
    y = X[:, 0] * 2 + X[:, 1]
    model.fit(X, y, epochs=2, verbose=0)
    strengths = np.linspace(0.01, 0.5, len(plan.features))
    model.get_layer("gate").set_strengths(strengths)
    expected = model.predict(X, verbose=0)
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "X.npy", X)
    run_python(
        f"""
        import numpy as np, keras
        import archguide  # registers archguide's layers; no custom_objects below
        model = keras.models.load_model({str(tmp_path / "model.keras")!r})
        np.save({str(tmp_path / "pred.npy")!r}, model.predict(np.load({str(tmp_path / "X.npy")!r}), verbose=0))
        np.save({str(tmp_path / "strengths.npy")!r}, model.get_layer("gate").get_strengths())
        """
    )
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), expected)
    np.testing.assert_allclose(np.load(tmp_path / "strengths.npy"), strengths.astype("float32"))


class _ChangeStrengthsThenFail(keras.callbacks.Callback):
    def __init__(self, strengths):
        super().__init__()
        self.strengths = strengths

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.model.get_layer("gate").set_strengths(self.strengths)

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


def test_strengths_survive_backup_and_restore(plan, tmp_path):
    X = _x(128)
    y = X[:, 0]
    changed = np.full(len(plan.features), 0.123)
    backup = str(tmp_path / "backup")
    first = ag.build_model(plan, seed=0)
    with pytest.raises(RuntimeError, match="interrupted"):
        first.fit(
            X,
            y,
            epochs=3,
            verbose=0,
            callbacks=[_ChangeStrengthsThenFail(changed), keras.callbacks.BackupAndRestore(backup)],
        )
    resumed = ag.build_model(plan, seed=1)  # a fresh model starts from the plan's strengths
    assert not np.allclose(resumed.get_layer("gate").get_strengths(), changed)
    resumed.fit(X, y, epochs=1, verbose=0, callbacks=[keras.callbacks.BackupAndRestore(backup)])
    np.testing.assert_allclose(resumed.get_layer("gate").get_strengths(), changed.astype("float32"))
