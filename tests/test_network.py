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
