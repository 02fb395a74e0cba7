import json

import keras
import numpy as np
import pytest
from conftest import make_scores, run_python

import archguide as ag
from archguide.exceptions import ConfigError, DataError
from archguide.model.builder import DATA_LOSS_METRIC
from archguide.model.layers import (
    CategoryEmbedding,
    ColumnSelector,
    EnsembleAdapter,
    EnsembleHead,
    EnsembleMean,
    FeatureGate,
    PeriodicEncoding,
)

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
    with pytest.raises(ConfigError, match=match):
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
    with pytest.raises(ConfigError, match="indices"):
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


def test_a_fit_traces_its_training_step_once(plan):
    """The optimizer is built with the model: a training step that created its variables would be traced twice."""
    model = ag.build_model(plan, seed=0)
    step, traces = model.train_step, []

    def counted(data):  # Python inside a tf.function runs once per trace, not once per step
        traces.append(1)
        return step(data)

    model.train_step = counted
    model.fit(_x(), np.zeros(64, dtype="float32"), epochs=3, batch_size=32, verbose=0)
    assert len(traces) == 1
    assert model.optimizer.iterations.numpy() == 6


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


@pytest.mark.parametrize(("embedding", "ensemble_size"), [(0, 1), (8, 1), (4, 4)])
def test_save_and_load_in_a_fresh_process(embedding, ensemble_size, tmp_path):
    scores = make_scores(IMPORTANCES, weak=WEAK)
    plan = ag.plan_architecture(scores, total_units=24, n_tiers=3, head_units=8, embedding=embedding)
    assert bool(plan.embeddings) == bool(embedding)
    model = ag.build_model(plan, seed=0, ensemble_size=ensemble_size)
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


# ------------------------------------------------------------------ soundness


def _fit_one_epoch(model, X, y, **kwargs):
    return model.fit(X, y, epochs=1, batch_size=16, verbose=0, **kwargs).history


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_every_task_fits_the_target_shapes_users_pass(plan, task):
    import pandas as pd

    X = _x(96)
    labels = {"regression": X[:, 0] * 2.0, "binary": (X[:, 0] > 0).astype(int), "multiclass": np.arange(96) % 3}[task]
    n_outputs = 3 if task == "multiclass" else 1
    # A fresh model per shape: Keras itself cannot refit one model on a target of another rank.
    # (A plain list is not among them: Keras reads a list of targets as one target per output.)
    for y in (labels, pd.Series(labels, index=np.arange(96) * 7 + 5), labels.reshape(-1, 1)):
        model = ag.build_model(plan, task=task, n_outputs=n_outputs, seed=0)
        history = _fit_one_epoch(model, X, y)
        assert np.isfinite(history["loss"][0]) and np.isfinite(history[DATA_LOSS_METRIC][0])


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_loss_minus_penalty_is_data_loss_with_and_without_weights(plan, task):
    X = _x(200)
    rng = np.random.default_rng(1)
    y = {"regression": X[:, 0], "binary": (X[:, 0] > 0).astype("float32"), "multiclass": np.arange(200) % 3}[task]
    model = ag.build_model(plan, task=task, n_outputs=3 if task == "multiclass" else 1, seed=0)
    _fit_one_epoch(model, X, y)
    penalty = model.get_layer("gate").penalty()
    assert penalty > 0
    weights = rng.uniform(0.1, 5.0, size=200)  # mean far from 1: a weighted mean would not match
    for sample_weight in (None, weights):
        result = model.evaluate(X, y, sample_weight=sample_weight, batch_size=32, verbose=0, return_dict=True)
        assert result["loss"] - penalty == pytest.approx(result[DATA_LOSS_METRIC], rel=1e-4, abs=1e-6)
    # Training with class weights (no penalty, so the two must agree exactly).
    model.get_layer("gate").set_strengths(np.zeros(len(plan.features)))
    fit_kwargs = {"sample_weight": weights} if task == "regression" else {"class_weight": {0: 4.0, 1: 0.5, 2: 2.0}}
    if task == "binary":
        fit_kwargs["class_weight"] = {0: 4.0, 1: 0.5}
    history = _fit_one_epoch(model, X, y, **fit_kwargs)
    assert history["loss"][0] == pytest.approx(history[DATA_LOSS_METRIC][0], rel=1e-4)


def test_dropout_layers_draw_different_masks(plan):
    model = ag.build_model(plan, dropout=0.5, seed=0)
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    masks = {}
    for layer in dropouts:
        width = layer.input.shape[-1]
        mask = keras.ops.convert_to_numpy(layer(np.ones((4, width), "float32"), training=True)) > 0
        assert not any(np.array_equal(mask, other) for other in masks.get(width, [])), layer.name
        masks.setdefault(width, []).append(mask)
    assert any(len(same_width) > 1 for same_width in masks.values())  # the case that used to repeat


def test_a_gate_of_the_wrong_width_says_so(plan):
    model = ag.build_model(plan, seed=0)
    with pytest.raises(ValueError, match=r"gate.*expected axis -1 of input shape to have value 8"):
        model.get_layer("gate")(_x(4, 5))
    with pytest.raises(DataError, match="3 strengths.*4 features"):
        FeatureGate(strengths=[0.1, 0.2, 0.3])(_x(4, 4))
    with pytest.raises(ConfigError, match="one name per strength"):
        FeatureGate(strengths=[0.1, 0.2], feature_names=["a"])


def test_numpy_integers_are_accepted_as_widths(plan):
    model = ag.build_model(plan, head_units=np.int64(12), seed=0)
    assert model.get_layer("head_dense_1").units == 12
    model = ag.build_model(plan, head_units=[np.int32(6), 4], seed=0)
    assert [model.get_layer(f"head_dense_{i}").units for i in (1, 2)] == [6, 4]
    with pytest.raises(ConfigError, match="head is not optional"):
        ag.build_model(plan, head_units=[])


def test_the_gate_keeps_the_plans_l1(plan, tmp_path):
    model = ag.build_model(plan, seed=0, compile=False)
    assert model.get_layer("gate").l1 == plan.options["l1"]
    model.save(tmp_path / "m.keras")
    assert keras.models.load_model(tmp_path / "m.keras").get_layer("gate").l1 == plan.options["l1"]


def test_any_column_name_builds_a_model_that_fits():
    """Non-ASCII and punctuation in column names end up in branch names; the model must still train."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 5)), columns=["größe", "a b", "x/y", "日本", "über-maß"])
    y = 2 * frame["größe"] + frame["日本"] + 0.1 * rng.normal(size=300)
    scores = ag.score_features(frame, y, random_state=0)
    for grouping in ("groups", "tiers"):
        plan = ag.plan_architecture(scores, total_units=20, grouping=grouping)
        model = ag.build_model(plan, seed=0)
        history = model.fit(frame[list(plan.features)].to_numpy("float32"), y.to_numpy(), epochs=2, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
        imp = ag.network_importance(model, frame, y, method="ablation")
        assert imp.index.tolist() == list(frame.columns)


# ------------------------------------------------------------------ embeddings


def test_periodic_encoding_widths_and_a_closed_gate():
    layer = PeriodicEncoding([3, 1], sigma=0.5, seed=0)
    x = np.array([[0.0, 0.0], [1.0, -2.0]], dtype="float32")
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (2, 8)  # (3 + 1) cosines, then (3 + 1) sines
    np.testing.assert_allclose(out[0], [1, 1, 1, 1, 0, 0, 0, 0], atol=1e-7)  # a feature at 0 carries nothing
    np.testing.assert_allclose(out[1, :4] ** 2 + out[1, 4:] ** 2, 1.0, rtol=1e-5)
    assert [w.name for w in layer.trainable_weights] == ["coefficients"] and layer.coefficients.shape == (4,)
    again = PeriodicEncoding.from_config(json.loads(json.dumps(layer.get_config())))
    assert again.frequencies == [3, 1] and again.sigma == 0.5
    with pytest.raises(ConfigError, match="frequencies"):
        PeriodicEncoding([2, 0])
    with pytest.raises(DataError, match="2 columns' frequencies; the input has 3"):
        PeriodicEncoding([1, 1])(np.zeros((2, 3), dtype="float32"))


def test_an_embedded_plan_builds_what_it_counts_and_keeps_one_kernel_row_per_feature():
    scores = make_scores(IMPORTANCES, weak=WEAK)
    plan = ag.plan_architecture(scores, total_units=24, head_units=8, embedding=8, embeddable=["a", "b", "d"])
    model = ag.build_model(plan, seed=0)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == plan.n_params()
    for branch in plan.branches:
        kernel = model.get_layer(f"branch_{branch.name}_dense_1").kernel
        assert kernel.shape[0] == len(branch.features)  # what the re-planning's warm start copies by feature
        if any(f in plan.embeddings for f in branch.features):
            frequencies = model.get_layer(f"branch_{branch.name}_periodic").frequencies
            assert frequencies == [plan.embeddings[f] for f in branch.features if f in plan.embeddings]


def test_category_embedding_returns_each_levels_vector():
    layer = CategoryEmbedding(3, seed=0)
    onehot = np.eye(5, dtype="float32")[[4, 0, 4]]
    out = keras.ops.convert_to_numpy(layer(onehot))
    table = keras.ops.convert_to_numpy(layer.embeddings)
    assert table.shape == (5, 3) and [w.name for w in layer.trainable_weights] == ["embeddings"]
    np.testing.assert_array_equal(out[0], out[2])  # the same level, the same vector
    np.testing.assert_allclose(out, table[[4, 0, 4]], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(0.5 * onehot)), 0.5 * out, rtol=1e-6)  # a half gate
    again = CategoryEmbedding.from_config(json.loads(json.dumps(layer.get_config())))
    assert again.width == 3 and again.seed == 0
    with pytest.raises(ConfigError, match="width"):
        CategoryEmbedding(0)


def test_a_category_embedded_plan_builds_what_it_counts_and_weight_importance_reads_each_level():
    from archguide.model.importance import network_importance

    levels = [f"c={i}" for i in range(12)]
    importances = {"a": 0.6, **{f: 0.1 for f in levels}, "b": 0.05}
    plan = ag.plan_architecture(
        make_scores(importances),
        total_units=16,
        n_tiers=1,
        head_units=8,
        category_embedding=4,
        categorical={"c": levels},
    )
    (branch,) = plan.branches
    assert branch.categories == ((tuple(levels), 4),)
    model = ag.build_model(plan, seed=0)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == plan.n_params()
    assert model.get_layer(f"branch_{branch.name}_dense_1").kernel.shape[0] == 2 + 4  # a, b, then 4 dimensions
    X = np.zeros((40, len(plan.features)), dtype="float32")
    X[:, 0], X[:, -1] = np.linspace(-1, 1, 40), np.linspace(1, -1, 40)
    X[np.arange(40), 1 + np.arange(40) % 12] = 1.0  # one level per row
    before = network_importance(model, X, method="weights")
    assert np.isfinite(before.to_numpy()).all() and (before > 0).all()
    table = model.get_layer(f"branch_{branch.name}_category_0")
    rows = table.get_weights()[0]
    rows[3] = 0.0  # level c=3's vector: without it the network cannot read c=3
    table.set_weights([rows])
    after = network_importance(model, X, method="weights")
    assert after["c=3"] == 0.0 and (after.drop("c=3") > 0).all()


def test_an_embedding_fits_a_jagged_function_a_plain_branch_cannot_in_the_same_epochs():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(1500, 2)).astype("float32")
    y = np.sin(4 * X[:, 0]) + (X[:, 1] > 0.5)
    scores = make_scores({"x0": 0.6, "x1": 0.4})
    losses = {}
    for embedding in (0, 16):
        plan = ag.plan_architecture(scores, total_units=32, n_tiers=1, head_units=16, embedding=embedding)
        model = ag.build_model(plan, seed=0, learning_rate=3e-3)
        held_out = (X[1200:], y[1200:])
        history = model.fit(X[:1200], y[:1200], epochs=20, batch_size=64, verbose=0, validation_data=held_out)
        losses[embedding] = min(history.history[f"val_{DATA_LOSS_METRIC}"])
    assert losses[16] < 0.5 * losses[0], losses


# ------------------------------------------------------------------ ensembles


def _members_mean_loss(z, y, task):
    """Each member's own loss, averaged over members and rows, from its outputs ``z`` (logits for classes)."""
    z = z.astype(np.float64)
    if task == "regression":
        return np.mean((z[..., 0] - y[:, None]) ** 2)
    if task == "binary":
        p = 1 / (1 + np.exp(-z[..., 0]))
        return -np.mean(y[:, None] * np.log(p) + (1 - y[:, None]) * np.log(1 - p))
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.mean(log_p[np.arange(len(y)), :, y])


@pytest.mark.parametrize(("task", "n_outputs"), [("regression", 1), ("binary", 1), ("multiclass", 3)])
def test_an_ensemble_predicts_its_members_mean_and_trains_each_member_on_its_own_loss(plan, task, n_outputs):
    X = _x(256)
    signal = X[:, 0] + X[:, 1] ** 2
    y = {"regression": signal, "binary": (signal > 1).astype(int), "multiclass": np.digitize(signal, [0.0, 1.5])}[task]
    model = ag.build_model(plan, task=task, n_outputs=n_outputs, ensemble_size=4, seed=0)
    model.fit(X, y, epochs=2, batch_size=64, verbose=0)
    assert model.input_shape == (None, 8) and model.output_shape == (None, n_outputs)  # as without an ensemble
    members = keras.Model(model.inputs, model.get_layer("output").output)
    z = members.predict(X, verbose=0)
    assert z.shape == (256, 4, n_outputs) and np.ptp(z, axis=1).max() > 1e-3  # the members differ
    logits = z.mean(axis=1)
    expected = {"regression": logits, "binary": 1 / (1 + np.exp(-logits))}.get(task)
    if expected is None:
        expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-4, atol=1e-6)
    result = model.evaluate(X, y, batch_size=256, verbose=0, return_dict=True)
    penalty = model.get_layer("gate").penalty()
    # the loss it trains on is the members' own losses averaged, not the loss of their mean (data_loss)
    np.testing.assert_allclose(result["loss"] - penalty, _members_mean_loss(z, y, task), rtol=1e-4)
    assert result[DATA_LOSS_METRIC] < result["loss"] - penalty


def test_ensemble_members_start_from_random_signs_and_share_every_hidden_layer(plan):
    small = ag.build_model(plan, seed=0)
    model = ag.build_model(plan, seed=0, ensemble_size=8)
    scales = model.get_layer("ensemble_adapter").get_weights()[0]
    assert scales.shape == (8, 8) and set(np.unique(scales)) == {-1.0, 1.0}
    hidden = lambda m: sorted(  # noqa: E731
        (w.path.split("/")[0], tuple(w.shape)) for w in m.trainable_weights if "dense" in w.path
    )
    assert hidden(model) == hidden(small)  # the same hidden layers, once
    head = model.get_layer("output")
    assert isinstance(head, EnsembleHead) and tuple(head.kernel.shape) == (8, 8, 1)


def test_ensemble_layers_refuse_bad_arguments():
    with pytest.raises(ConfigError, match="size"):
        EnsembleAdapter(1)
    with pytest.raises(ConfigError, match="units"):
        EnsembleHead(0)
    with pytest.raises(ConfigError, match="loss"):
        EnsembleMean("hinge")
    with pytest.raises(ConfigError, match="ensemble_size"):
        ag.build_model(ag.plan_architecture(make_scores(IMPORTANCES, weak=WEAK)), ensemble_size=0)
    again = EnsembleAdapter.from_config(json.loads(json.dumps(EnsembleAdapter(3, seed=1).get_config())))
    assert (again.size, again.seed) == (3, 1)


# ------------------------------------------------------------------ weight decay


def test_weight_decay_shrinks_the_kernels_and_leaves_gates_biases_and_scales_alone():
    plan = ag.plan_architecture(make_scores(IMPORTANCES, weak=WEAK), total_units=24, head_units=8, l1=0.0)
    model = ag.build_model(plan, seed=0, learning_rate=0.01, weight_decay=2.0, ensemble_size=2)
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.trainable_weights}
    # zero inputs and a zero target: every gradient is 0, so only the decay moves anything
    model.fit(np.zeros((64, 8), "float32"), np.zeros(64), epochs=5, batch_size=16, verbose=0, shuffle=False)
    for w in model.trainable_weights:
        factor = 1 - 0.01 * 2.0
        after = keras.ops.convert_to_numpy(w)
        if w.name == "kernel":
            np.testing.assert_allclose(after, before[w.path] * factor**20, rtol=1e-4)
        else:  # gate, bias, scales
            np.testing.assert_array_equal(after, before[w.path])
    with pytest.raises(ConfigError, match="weight_decay"):
        ag.build_model(plan, weight_decay=-1.0)


# ------------------------------------------------------------------ label smoothing


def test_label_smoothing_trains_on_smoothed_labels_and_data_loss_stays_the_log_loss(plan):
    X = _x(200)
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])  # three classes, as indices
    model = ag.build_model(plan, task="multiclass", n_outputs=3, label_smoothing=0.2, seed=0)
    model.fit(X, y, epochs=2, verbose=0)
    result = model.evaluate(X, y, batch_size=200, verbose=0, return_dict=True)
    p = model.predict(X, verbose=0).astype(np.float64)
    target = 0.8 * np.eye(3)[y] + 0.2 / 3
    smoothed = -np.mean(np.sum(target * np.log(p), axis=1))
    np.testing.assert_allclose(result["loss"] - model.get_layer("gate").penalty(), smoothed, rtol=1e-4)
    np.testing.assert_allclose(result[DATA_LOSS_METRIC], -np.mean(np.log(p[np.arange(200), y])), rtol=1e-4)
    binary = ag.build_model(plan, task="binary", label_smoothing=0.2, seed=0)
    t = (y > 0).astype(float)
    q = binary.predict(X, verbose=0)[:, 0].astype(np.float64)
    smoothed = -np.mean((0.8 * t + 0.1) * np.log(q) + (0.9 - 0.8 * t) * np.log(1 - q))
    result = binary.evaluate(X, t, batch_size=200, verbose=0, return_dict=True)
    np.testing.assert_allclose(result["loss"] - binary.get_layer("gate").penalty(), smoothed, rtol=1e-4)
    with pytest.raises(ConfigError, match="label_smoothing applies to classes"):
        ag.build_model(plan, label_smoothing=0.1)
    with pytest.raises(ConfigError, match="label_smoothing"):
        ag.build_model(plan, task="binary", label_smoothing=1.0)
