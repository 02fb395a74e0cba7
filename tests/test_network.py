import keras
import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance

import archguide as ag
from archguide.exceptions import ConfigError, DataError

INFORMATIVE = [f"x{i}" for i in range(5)]


def _linear_model(weights, bias=0.5):
    model = keras.Sequential([keras.Input((len(weights),)), keras.layers.Dense(1)])
    model.layers[-1].set_weights([np.asarray(weights, dtype="float32").reshape(-1, 1), np.array([bias], "float32")])
    return model


@pytest.fixture(scope="module")
def linear_data():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(500, 3)) * [1.0, 2.0, 0.5]).astype("float32")
    w = np.array([2.0, -1.0, 0.0], dtype="float32")
    return X, X @ w + 0.5, w


@pytest.fixture(scope="module")
def mlp():
    """A plain Sequential with one hidden layer, trained on x0 and x1.

    Its first layer has an L1 penalty (the source notes' scenario 3): weight-based methods can
    only tell noise apart once the weights of irrelevant inputs have been driven down.
    """
    rng = np.random.default_rng(1)
    X = rng.normal(size=(800, 4)).astype("float32")
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1]).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="tanh", kernel_regularizer=keras.regularizers.L1(3e-3)),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    model.fit(X, y, epochs=60, verbose=0, batch_size=32)
    return model, X, y


# ------------------------------------------------------------------ formulas


def test_gradient_and_weights_of_a_linear_model_are_sigma_times_abs_weight(linear_data):
    X, y, w = linear_data
    model = _linear_model(w)
    expected = X.std(axis=0) * np.abs(w)
    np.testing.assert_allclose(ag.network_importance(model, X, method="gradient"), expected, rtol=1e-5)
    np.testing.assert_allclose(ag.network_importance(model, X, method="weights"), expected, rtol=1e-5)
    # Olden on a chain without a hidden layer is the signed, rescaled weight.
    np.testing.assert_allclose(ag.network_importance(model, X, method="olden"), X.std(axis=0) * w, rtol=1e-5)


def test_permutation_equals_sklearn_on_the_same_model(linear_data):
    X, y, w = linear_data
    model = _linear_model(w)

    class Wrapped(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            return self

        def predict(self, X):
            return model.predict(np.asarray(X, dtype="float32"), verbose=0).ravel()

    theirs = permutation_importance(
        Wrapped().fit(X, y), X, y, scoring="neg_mean_squared_error", n_repeats=4, random_state=3
    )
    ours = ag.network_importance(model, X, y, method="permutation", n_repeats=4, random_state=3)
    np.testing.assert_allclose(ours.to_numpy(), theirs.importances_mean, rtol=1e-4, atol=1e-6)


def test_ablation_is_the_loss_increase_when_a_feature_takes_its_mean(linear_data):
    X, y, w = linear_data
    model = _linear_model(w)
    result = ag.network_importance(model, X, y, method="ablation")
    for j in range(3):
        ablated = X.copy()
        ablated[:, j] = X[:, j].mean()
        pred = model.predict(ablated, verbose=0).ravel()
        base = model.predict(X, verbose=0).ravel()
        expected = np.mean((pred - y) ** 2) - np.mean((base - y) ** 2)
        assert result.iloc[j] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert result["x2"] == pytest.approx(0.0, abs=1e-6)  # weight 0: nothing changes


def test_every_method_scores_a_plain_sequential(mlp):
    model, X, y = mlp
    for method in ("gradient", "weights", "garson", "olden", "permutation", "ablation"):
        imp = ag.network_importance(model, X, y, method=method, random_state=0)
        assert imp.index.tolist() == ["x0", "x1", "x2", "x3"]
        top = imp.abs().nlargest(2).index
        assert set(top) == {"x0", "x1"}, (method, imp)
    garson = ag.network_importance(model, X, method="garson")
    assert garson.sum() == pytest.approx(1.0)
    assert (garson >= 0).all()


def test_groups_and_max_rows(mlp):
    model, X, y = mlp
    imp = ag.network_importance(
        model, X, y, method="permutation", groups={"signal": ["x0", "x1"], "rest": ["x2", "x3"]}, max_rows=200
    )
    assert imp.index.tolist() == ["signal", "rest"]
    assert imp["signal"] > 10 * abs(imp["rest"])


def test_classifier_losses_are_inferred_from_the_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)).astype("float32")
    y = (X[:, 0] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(X, y, epochs=30, verbose=0)
    imp = ag.network_importance(model, X, y, method="permutation", random_state=0)
    assert imp.idxmax() == "x0"
    multi = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    labels = np.argmax(X, axis=1)
    assert np.isfinite(ag.network_importance(multi, X, labels, method="ablation")).all()
    assert np.isfinite(ag.network_importance(multi, X, method="gradient")).all()


# ------------------------------------------------------------------ errors


def test_garson_and_olden_are_undefined_on_multi_branch_networks(friedman_scores, friedman):
    X, _ = friedman
    model = ag.build_model(ag.plan_architecture(friedman_scores, total_units=32), compile=False)
    for method in ("garson", "olden"):
        with pytest.raises(ConfigError, match="multi-branch.*method='weights'"):
            ag.network_importance(model, X, method=method)
    assert len(ag.network_importance(model, X, method="weights")) == 20  # weights are defined


def test_weight_based_importance_of_an_embedded_network_is_undefined_and_says_so(friedman_scores, friedman):
    X, _ = friedman
    plan = ag.plan_architecture(friedman_scores, total_units=32, embedding=4)
    model = ag.build_model(plan, compile=False)
    with pytest.raises(ConfigError, match="not linear.*use method='gradient', 'permutation' or 'ablation'"):
        ag.network_importance(model, X, method="weights")
    assert len(ag.network_importance(model, X, method="gradient")) == 20


def test_weight_based_importance_of_an_ensemble_is_undefined_and_says_so(friedman_scores, friedman):
    X, _ = friedman
    model = ag.build_model(ag.plan_architecture(friedman_scores, total_units=32), ensemble_size=4, compile=False)
    for method in ("weights", "garson", "olden"):
        with pytest.raises(ConfigError, match="ensemble.*use method='gradient', 'permutation' or 'ablation'"):
            ag.network_importance(model, X, method=method)
    assert len(ag.network_importance(model, X, method="gradient")) == 20


def test_garson_needs_exactly_one_hidden_layer(linear_data):
    X, _, w = linear_data
    with pytest.raises(ConfigError, match="exactly one hidden"):
        ag.network_importance(_linear_model(w), X, method="garson")


def test_bad_inputs(mlp):
    model, X, y = mlp
    with pytest.raises(ConfigError, match="method"):
        ag.network_importance(model, X, method="shap")
    with pytest.raises(DataError, match=r"shape \(800, 3\).*\(n_samples, 4\)"):
        ag.network_importance(model, X[:, :3])
    with pytest.raises(DataError, match="needs y"):
        ag.network_importance(model, X, method="permutation")
    with pytest.raises(DataError, match="799 values but X has 800 rows"):
        ag.network_importance(model, X, y[:-1], method="ablation")
    with pytest.raises(DataError, match="feature_names"):
        ag.network_importance(model, X, feature_names=["a"])
    a, b = keras.Input((2,)), keras.Input((2,))
    two = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(DataError, match="2 inputs"):
        ag.network_importance(two, X[:, :2])
    named = keras.Input((2,), name="u")
    with pytest.raises(DataError, match="dict inputs"):
        ag.network_importance(keras.Model({"u": named}, keras.layers.Dense(1)(named)), X[:, :2])


# ------------------------------------------------------------------ soundness


def test_a_scored_model_is_freed():
    """The cache of traced functions must not keep a model alive (a tuner search builds one per trial)."""
    import gc
    import weakref

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    for method in ("gradient", "permutation", "ablation"):
        ag.network_importance(model, X, X[:, 0], method=method)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_a_dataframe_is_matched_to_the_gate_by_name(friedman_scores, friedman):
    import pandas as pd

    X, y = friedman
    model = ag.build_model(ag.plan_architecture(friedman_scores, total_units=32), seed=0)
    frame = pd.DataFrame(X[:400], columns=[f"x{i}" for i in range(20)])
    reordered = frame[frame.columns[::-1]]
    for method in ("gradient", "ablation"):
        expected = ag.network_importance(model, X[:400], y[:400], method=method)
        got = ag.network_importance(model, reordered, y[:400], method=method)
        assert got.index.tolist() == expected.index.tolist()
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-4, atol=1e-6)
    renamed = frame.rename(columns={"x3": "size", "x7": "colour"})
    with pytest.raises(DataError, match=r"missing 'x3', 'x7'; unexpected 'size', 'colour'"):
        ag.network_importance(model, renamed)
    with pytest.raises(DataError, match=r"unexpected 'extra'"):
        ag.network_importance(model, frame.assign(extra=1.0))


def test_permutation_and_ablation_measure_the_compiled_loss():
    """A linear-output classifier trained from logits is measured with its own loss, not MSE."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3)).astype("float32")
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(X, y, epochs=20, verbose=0)
    result = ag.network_importance(model, X, y, method="ablation")
    base = model.evaluate(X, y, verbose=0, batch_size=len(X))
    for j in range(3):
        ablated = X.copy()
        ablated[:, j] = X[:, j].mean()
        expected = model.evaluate(ablated, y, verbose=0, batch_size=len(X)) - base
        assert result.iloc[j] == pytest.approx(expected, rel=1e-3, abs=1e-5)
    # An explicit loss still wins over the compiled one.
    mse = ag.network_importance(model, X, y, method="ablation", loss="mse")
    assert not np.allclose(mse.to_numpy(), result.to_numpy())
    with pytest.raises(ConfigError, match="loss"):
        ag.network_importance(model, X, y, method="ablation", loss="no_such_loss")


def test_gradient_runs_in_batches_of_batch_size(mlp):
    from archguide.model import importance as network

    model, X, _ = mlp
    whole = ag.network_importance(model, X, method="gradient")
    real = network._compiled(model, "gradient")
    sizes = []

    def recording(x):
        sizes.append(len(x))
        return real(x)

    network._COMPILED[model]["gradient"] = recording
    try:
        batched = ag.network_importance(model, X, method="gradient", batch_size=64)
    finally:
        network._COMPILED[model]["gradient"] = real
    assert sizes == [64] * int(np.ceil(len(X) / 64))  # the last chunk is padded, not retraced
    np.testing.assert_allclose(batched.to_numpy(), whole.to_numpy(), rtol=1e-5)


def _hand_gradient(model, X):
    """sigma_i * mean over output units of mean over rows |d out / d x_i|, one tape per output unit."""
    import tensorflow as tf

    x = tf.constant(X)
    units = []
    for k in range(len(keras.tree.flatten(model(x[:1])))):
        for u in range(int(np.prod(keras.tree.flatten(model(x[:1]))[k].shape[1:]))):
            with tf.GradientTape() as tape:
                tape.watch(x)
                out = keras.tree.flatten(model(x, training=False))[k]
                column = tf.reshape(out, (len(X), -1))[:, u]
            units.append(np.abs(tape.gradient(column, x).numpy()).mean(axis=0))
    return X.std(axis=0) * np.mean(units, axis=0)


@pytest.mark.parametrize("outputs", ["list", "dict", "rank3"])
def test_gradient_of_models_with_several_outputs_matches_a_hand_written_tape(outputs):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(200, 4)) * [1.0, 3.0, 0.5, 2.0]).astype("float32")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="tanh")(inputs)
    if outputs == "rank3":
        out = keras.layers.Reshape((2, 3))(keras.layers.Dense(6)(hidden))
    else:
        # Two heads of very different scale: the old stacking differentiated only part of them.
        a, b = keras.layers.Dense(1)(hidden), keras.layers.Dense(1, kernel_initializer="ones")(inputs)
        out = [a, b] if outputs == "list" else {"a": a, "b": b}
    model = keras.Model(inputs, out)
    got = ag.network_importance(model, X, method="gradient")
    np.testing.assert_allclose(got.to_numpy(), _hand_gradient(model, X), rtol=1e-5)
    if outputs != "rank3":
        with pytest.raises(ConfigError, match="2 outputs.*method='gradient'"):
            ag.network_importance(model, X, X[:, 0], method="permutation")


def test_groups_listing_a_feature_twice_are_refused(mlp):
    model, X, y = mlp
    with pytest.raises(DataError, match="'x0' more than once"):
        ag.network_importance(model, X, y, method="permutation", groups={"g": ["x0", "x0", "x1"]})


def test_bad_random_state_is_a_config_error(mlp):
    model, X, _ = mlp
    with pytest.raises(ConfigError, match="random_state"):
        ag.network_importance(model, X, method="gradient", random_state="abc")


def test_an_uncompiled_model_is_measured_with_the_loss_its_activation_implies():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)).astype("float32")
    y = (X[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation="sigmoid")])
    model.layers[-1].set_weights([np.array([[3.0], [0.5]], "float32"), np.zeros(1, "float32")])

    def bce(X_):
        p = np.clip(model.predict(X_, verbose=0).ravel(), 1e-7, 1 - 1e-7)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    result = ag.network_importance(model, X, y, method="ablation")
    for j in range(2):
        ablated = X.copy()
        ablated[:, j] = X[:, j].mean()
        assert result.iloc[j] == pytest.approx(bce(ablated) - bce(X), rel=1e-3)
