"""Importance measured on a trained network.

:func:`network_importance` works on any Keras model that takes one 2-D float
input (a plain ``Sequential`` too, not only archguide's models). Its methods,
with ``sigma_i`` the standard deviation of input ``i`` over the rows given:

- ``"gradient"``: ``I_i = sigma_i * mean_rows |d y / d x_i|``; with several
  outputs, the mean over outputs of that quantity. One batched gradient
  computation over all rows. Caveat: it measures *sensitivity*, which on
  training rows can reflect what the network overfits; use held-out rows.
- ``"weights"``: ``I_i = sigma_i * sum_j |w_ij|`` over the first Dense
  layer(s) that read input ``i``, with ``w`` the effective weights from the
  input (through the gate's scale and column selection, if present). Caveat:
  says nothing of what later layers do with those units.
- ``"garson"``: Garson's algorithm, for a network with exactly one hidden
  Dense layer between a single input path and the output:
  ``Q_ij = |w_ij v_j| / sum_k |w_kj v_j|``, ``I_i = sum_j Q_ij / sum_ij Q_ij``
  (weights rescaled to unit-variance inputs; several outputs averaged).
- ``"olden"``: Olden's connection weights, the signed product of the weight
  matrices along a chain of Dense layers, ``I_i = sum (W1 W2 ... Wout)_i``
  (rescaled inputs; several outputs: mean absolute value). Signed: a negative
  value is an important feature that lowers the output.
- ``"permutation"``: increase of the loss when a feature (or a group) is
  shuffled, averaged over ``n_repeats``; all shuffled copies are predicted in
  a few large calls. Shuffles are drawn as in scikit-learn.
- ``"ablation"``: increase of the loss when a feature (or a group) is
  replaced by its mean over the rows given; no retraining.

Garson and Olden are defined only where the weights form one chain of Dense
layers; on a multi-branch network they raise a ``ConfigError`` naming the
methods that do apply.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int
from archguide._permutation import copies_per_chunk, effective_permutations, stacked_copies
from archguide.exceptions import ConfigError, DataError
from archguide.layers import FeatureGate
from archguide.schema import format_names

keras = import_keras()

__all__ = ["METHODS", "network_importance", "model_features", "check_model_input", "input_gate"]

METHODS = ("gradient", "weights", "garson", "olden", "permutation", "ablation")
LOSSES = ("mse", "binary_crossentropy", "sparse_categorical_crossentropy")
_EPS = 1e-7
_MERGE_LAYERS = (
    keras.layers.Concatenate,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Dot,
)


def check_model_input(model, *, argument: str = "model") -> int:
    """The number of input features of a single-input 2-D model.

    Raises:
        DataError: the model has several inputs, dict inputs, or an input
            that is not ``(batch, n_features)``.
    """
    inputs = getattr(model, "inputs", None)
    if isinstance(getattr(model, "_inputs_struct", None), Mapping) or isinstance(inputs, Mapping):
        raise DataError(f"{argument} takes dict inputs; archguide scores models with one 2-D float input.")
    if inputs is None:
        raise DataError(f"{argument} has not been built; call it on data or give it an Input first.")
    if len(inputs) != 1:
        raise DataError(
            f"{argument} has {len(inputs)} inputs; archguide scores models with one 2-D float input "
            "(concatenate the inputs into one, or score a sub-model)."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 2 or shape[1] is None:
        raise DataError(f"{argument} takes inputs of shape {shape}; expected (batch, n_features).")
    return int(shape[1])


def input_gate(model) -> FeatureGate | None:
    """The model's :class:`~archguide.layers.FeatureGate` at its input, if it has one."""
    n = check_model_input(model)
    for layer in model.layers:
        if isinstance(layer, FeatureGate):
            return layer if layer.n_features == n else None
    return None


def model_features(model, X=None) -> list[str]:
    """Feature names for a model's inputs: the gate's names, X's columns, or ``x0, x1, ...``."""
    n = check_model_input(model)
    gate = input_gate(model)
    if gate is not None and gate.feature_names and len(gate.feature_names) == n:
        return list(gate.feature_names)
    if isinstance(X, pd.DataFrame) and X.shape[1] == n:
        return [str(c) for c in X.columns]
    return [f"x{i}" for i in range(n)]


def _as_float_matrix(X, n_features: int, argument: str = "X") -> np.ndarray:
    try:
        array = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{argument} must be numeric (the model's float input): {exc}") from exc
    if array.ndim != 2 or array.shape[1] != n_features:
        raise DataError(
            f"{argument} has shape {array.shape} but the model takes inputs of shape (n_samples, {n_features})."
        )
    if array.shape[0] == 0:
        raise DataError(f"{argument} is empty: it has 0 rows.")
    return array


def infer_loss(model) -> str:
    """The loss implied by the model's output activation: sigmoid, softmax, or else MSE."""
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return {"sigmoid": "binary_crossentropy", "softmax": "sparse_categorical_crossentropy"}.get(activation, "mse")


def _losses(loss: str | Callable, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-copy loss; ``pred`` is ``(k, n_rows, n_outputs)``."""
    if callable(loss):
        return np.array([float(loss(y, p)) for p in pred])
    if loss == "mse":
        target = y.reshape(1, len(y), -1)
        return ((pred - target) ** 2).mean(axis=(1, 2))
    if loss == "binary_crossentropy":
        p = np.clip(pred.reshape(pred.shape[0], pred.shape[1]), _EPS, 1 - _EPS)
        target = y.reshape(1, -1)
        return -(target * np.log(p) + (1 - target) * np.log(1 - p)).mean(axis=1)
    picked = np.take_along_axis(pred, y.astype(int).reshape(1, -1, 1), axis=2)[..., 0]
    return -np.log(np.clip(picked, _EPS, 1.0)).mean(axis=1)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(model, kind: str):
    """A tf.function of the model's forward pass (or its input gradient), cached per model.

    Called on fixed-size chunks, it traces once; ``model.predict`` would pay its loop's
    per-call set-up on every re-scoring.
    """
    import tensorflow as tf

    cache = _COMPILED.setdefault(model, {})
    if kind not in cache:
        if kind == "forward":

            def forward(x):
                out = model(x, training=False)
                return tf.reshape(out, (tf.shape(out)[0], -1))

            cache[kind] = tf.function(forward, reduce_retracing=True)
        else:
            n_outputs = int(np.prod(model.outputs[0].shape[1:]))

            def mean_abs_gradient(x):
                # Rows do not interact at inference, so the gradient of a column's sum is per-row.
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch(x)
                    out = model(x, training=False)
                    out = tf.reshape(out, (tf.shape(out)[0], -1))
                    columns = [out[:, k] for k in range(n_outputs)]
                grads = [tf.reduce_mean(tf.abs(tape.gradient(c, x)), axis=0) for c in columns]
                return tf.reduce_mean(tf.stack(grads), axis=0)

            cache[kind] = tf.function(mean_abs_gradient, reduce_retracing=True)
    return cache[kind]


def _predict(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    if keras.backend.backend() != "tensorflow":
        return np.asarray(model.predict(X, batch_size=batch_size, verbose=0)).reshape(len(X), -1)
    forward = _compiled(model, "forward")
    size = min(batch_size, len(X))
    parts = []
    for start in range(0, len(X), size):
        chunk = X[start : start + size]
        if len(chunk) < size:  # pad the last chunk: one traced shape for every call
            chunk = np.concatenate([chunk, np.zeros((size - len(chunk), X.shape[1]), X.dtype)])
        parts.append(forward(chunk).numpy()[: min(size, len(X) - start)])
    return np.concatenate(parts)


def _loss_increase(model, X, y, loss, edits, batch_size) -> tuple[float, np.ndarray]:
    """Loss on each edited copy of X minus the loss on X; edits as in ``stacked_copies``."""
    n = len(X)
    baseline = float(_losses(loss, y, _predict(model, X, batch_size)[None])[0])
    out = np.empty(len(edits))
    per_chunk = copies_per_chunk(X)
    for start in range(0, len(edits), per_chunk):
        chunk = edits[start : start + per_chunk]
        pred = _predict(model, stacked_copies(X, chunk), batch_size).reshape(len(chunk), n, -1)
        out[start : start + len(chunk)] = _losses(loss, y, pred)
    return baseline, out - baseline


# ----------------------------------------------------------------------- gradient


def _gradient(model, X: np.ndarray) -> np.ndarray:
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"method='gradient' is implemented for the TensorFlow backend; the active backend is "
            f"{keras.backend.backend()!r}. Use method='permutation' or 'ablation'."
        )
    return _compiled(model, "gradient")(X).numpy()


# ------------------------------------------------------------------------ weights


def _first_dense_maps(model, n: int):
    """(layer, effective kernel (n, units)) for each Dense layer fed linearly by the input."""
    maps = []
    eye = np.eye(n, dtype=np.float32)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Dense):
            continue
        probe = keras.Model(model.inputs[0], layer.input)
        if any(isinstance(inner, keras.layers.Dense) for inner in probe.layers):
            continue

        basis, zero, doubled = (
            keras.ops.convert_to_numpy(probe(x, training=False)).reshape(len(x), -1)
            for x in (eye, np.zeros((1, n), dtype=np.float32), 2 * eye)
        )
        if not (np.allclose(zero, 0.0, atol=1e-6) and np.allclose(doubled, 2 * basis, rtol=1e-5, atol=1e-6)):
            raise ConfigError(
                f"The path from the input to Dense layer {layer.name!r} is not linear, so weight-based "
                "importance is undefined; use method='gradient', 'permutation' or 'ablation'."
            )
        kernel = layer.kernel.numpy()
        maps.append((layer, basis @ kernel))
    if not maps:
        raise ConfigError("The model has no Dense layer reading its input; weight-based importance is undefined.")
    return maps


def _dense_chain(model, n: int):
    """Effective first kernel and the kernels after it, for a single chain of Dense layers."""
    maps = _first_dense_maps(model, n)
    if len(maps) > 1:
        raise ConfigError(
            f"Garson's and Olden's methods need one chain of Dense layers, but the input feeds {len(maps)} "
            f"({format_names([m[0].name for m in maps])}): a multi-branch network. Use method='weights', "
            "'gradient', 'permutation' or 'ablation'."
        )
    first, w_eff = maps[0]
    merges = [layer.name for layer in model.layers if isinstance(layer, _MERGE_LAYERS)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    chain = dense[dense.index(first) + 1 :]
    widths = [first.units] + [int(layer.kernel.shape[0]) for layer in chain]
    if merges or any(layer.units != width for layer, width in zip([first, *chain], widths[1:])):
        raise ConfigError(
            "The Dense layers do not form one chain (the network merges or branches); Garson's and Olden's "
            "methods are undefined. Use method='weights', 'gradient', 'permutation' or 'ablation'."
        )
    return w_eff, [layer.kernel.numpy() for layer in chain]


def _weights(model, X: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return sigma * sum(np.abs(w).sum(axis=1) for _, w in _first_dense_maps(model, X.shape[1]))


def _garson(model, X: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    w_eff, rest = _dense_chain(model, X.shape[1])
    if len(rest) != 1:
        raise ConfigError(
            f"Garson's algorithm needs exactly one hidden Dense layer before the output; this network has "
            f"{len(rest) + 1} Dense layers in its chain. Use method='olden' or 'weights'."
        )
    w = np.abs(w_eff * sigma[:, None])  # (n, hidden)
    v = np.abs(rest[0])  # (hidden, outputs)
    per_output = []
    for k in range(v.shape[1]):
        c = w * v[:, k][None, :]
        q = c / np.maximum(c.sum(axis=0, keepdims=True), np.finfo(float).tiny)
        imp = q.sum(axis=1)
        per_output.append(imp / imp.sum())
    return np.mean(per_output, axis=0)


def _olden(model, X: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    w_eff, rest = _dense_chain(model, X.shape[1])
    product = w_eff * sigma[:, None]
    for kernel in rest:
        product = product @ kernel
    return product[:, 0] if product.shape[1] == 1 else np.abs(product).mean(axis=1)


# ---------------------------------------------------------------------- public


def _column_sets(groups, names: list[str]) -> tuple[list[str], list[list[int]]]:
    if groups is None:
        return names, [[j] for j in range(len(names))]
    position = {f: j for j, f in enumerate(names)}
    labels, sets = [], []
    for g, members in groups.items():
        members = [members] if isinstance(members, str) else list(members)
        unknown = [m for m in members if m not in position]
        if unknown:
            raise DataError(f"groups[{g!r}] names features the model does not take: {format_names(unknown)}.")
        labels.append(str(g))
        sets.append([position[m] for m in members])
    return labels, sets


def network_importance(
    model,
    X,
    y=None,
    *,
    method: str = "gradient",
    n_repeats: int = 5,
    groups: Mapping[str, Sequence[str]] | None = None,
    loss: str | Callable | None = None,
    max_rows: int | None = None,
    random_state=None,
    feature_names: Sequence[str] | None = None,
    batch_size: int = 8192,
) -> pd.Series:
    """Importance of each input feature to a trained Keras model.

    Args:
        model: A Keras model with one 2-D float input.
        X: Rows to measure on, shape ``(n_samples, n_features)`` in the
            model's input order. Use held-out rows: on training rows the
            methods measure sensitivity, which can be overfitting.
        y: Targets, needed by ``"permutation"`` and ``"ablation"``.
        method: One of ``"gradient"``, ``"weights"``, ``"garson"``, ``"olden"``,
            ``"permutation"``, ``"ablation"`` (see the module docstring for
            each formula and its caveats).
        n_repeats: Shuffles per feature for ``"permutation"``.
        groups: For ``"permutation"`` and ``"ablation"``: ``{group: [features]}``
            shuffled or ablated together; the result is then indexed by group.
        loss: For ``"permutation"``/``"ablation"``: ``"mse"``,
            ``"binary_crossentropy"``, ``"sparse_categorical_crossentropy"``
            or a callable ``loss(y_true, y_pred) -> float``; by default
            inferred from the output activation (sigmoid, softmax, else MSE).
        max_rows: Use a random sample of at most this many rows.
        random_state: Seed for the row sample and the shuffles.
        feature_names: Names of the inputs (default: the gate's names, X's
            columns, or ``x0, x1, ...``).
        batch_size: Rows per predict call.

    Returns:
        pd.Series of importances indexed by feature (or group); higher = more
        important (Olden's values are signed).

    Raises:
        ConfigError: unknown method or loss, or a method undefined for the
            network's shape.
        DataError: X does not match the model's input, the model does not
            take one 2-D input, or y is missing or of the wrong length.
    """
    check_choice("method", method, METHODS)
    check_int("n_repeats", n_repeats)
    check_int("max_rows", max_rows, allow_none=True)
    n = check_model_input(model)
    names = list(feature_names) if feature_names is not None else model_features(model, X)
    if len(names) != n:
        raise DataError(f"feature_names has {len(names)} names but the model takes {n} features.")
    X = _as_float_matrix(X, n)
    y_arr = None
    if method in ("permutation", "ablation"):
        if y is None:
            raise DataError(f"method={method!r} needs y, the targets of the rows in X.")
        y_arr = np.asarray(y, dtype=np.float32)
        if y_arr.shape[0] != X.shape[0]:
            raise DataError(f"y has {y_arr.shape[0]} values but X has {X.shape[0]} rows; they must match.")
    rng = check_random_state(random_state)
    if max_rows is not None and X.shape[0] > max_rows:
        rows = np.sort(rng.choice(X.shape[0], max_rows, replace=False))
        X = X[rows]
        y_arr = None if y_arr is None else y_arr[rows]
    sigma = X.std(axis=0).astype(np.float64)

    if method == "gradient":
        values = sigma * _gradient(model, X)
    elif method == "weights":
        values = _weights(model, X, sigma)
    elif method == "garson":
        values = _garson(model, X, sigma)
    elif method == "olden":
        values = _olden(model, X, sigma)
    else:
        loss = infer_loss(model) if loss is None else loss
        if not callable(loss):
            check_choice("loss", loss, LOSSES)
        names, sets = _column_sets(groups, names)
        if method == "permutation":
            perms = effective_permutations(X.shape[0], n_repeats, rng)
            edits = [(cols, X[np.ix_(perm, cols)]) for cols in sets for perm in perms]
            _, drops = _loss_increase(model, X, y_arr, loss, edits, batch_size)
            values = drops.reshape(len(sets), n_repeats).mean(axis=1)
        else:
            means = X.mean(axis=0)
            _, values = _loss_increase(model, X, y_arr, loss, [(cols, means[cols]) for cols in sets], batch_size)
    return pd.Series(np.asarray(values, dtype=float), index=pd.Index(names, dtype=object), name=method)
