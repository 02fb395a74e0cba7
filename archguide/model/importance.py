"""Importance measured on a trained network.

:func:`network_importance` works on any Keras model that takes one 2-D float
input (a plain ``Sequential`` too, not only archguide's models). Its methods,
with ``sigma_i`` the standard deviation of input ``i`` over the rows given:

- ``"gradient"``: ``I_i = sigma_i * mean_rows |d y / d x_i|``; with several
  output units (or several outputs, as a list or dict), the mean over every
  unit of that quantity. Computed in chunks of ``batch_size`` rows. Caveat: it
  measures *sensitivity*, which on training rows can reflect what the network
  overfits; use held-out rows.
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
- ``"permutation"``: increase of the loss (see :func:`resolve_loss`: the
  model's compiled loss by default) when a feature (or a group) is
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

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int, check_seed
from archguide.exceptions import ConfigError, DataError
from archguide.model.layers import EnsembleAdapter, FeatureGate
from archguide.schema import column_mismatch, format_names, repeated
from archguide.scoring._permutation import copies_per_chunk, effective_permutations, stacked_copies

keras = import_keras()

__all__ = [
    "METHODS",
    "aligned_input",
    "check_model_input",
    "input_gate",
    "model_features",
    "network_importance",
    "resolve_loss",
]

#: The methods that read the weights of the first Dense layers (undefined through an embedding or an ensemble).
WEIGHT_METHODS = ("weights", "garson", "olden")
METHODS = ("gradient", *WEIGHT_METHODS, "permutation", "ablation")
LOSSES = ("mse", "binary_crossentropy", "sparse_categorical_crossentropy")
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
    """The model's :class:`~archguide.FeatureGate` at its input, if it has one."""
    n = check_model_input(model)
    for layer in model.layers:
        if isinstance(layer, FeatureGate):
            return layer if layer.n_features == n else None
    return None


def _gate_names(model) -> list[str] | None:
    gate = input_gate(model)
    if gate is not None and gate.feature_names and len(gate.feature_names) == gate.n_features:
        return list(gate.feature_names)
    return None


def _named_columns(X) -> list[str] | None:
    """A DataFrame's column names when they are all strings (scikit-learn's rule), else None."""
    if isinstance(X, pd.DataFrame) and all(isinstance(c, str) for c in X.columns):
        return list(X.columns)
    return None


def model_features(model, X=None) -> list[str]:
    """Feature names for a model's inputs: the gate's names, X's columns, or ``x0, x1, ...``."""
    n = check_model_input(model)
    names = _gate_names(model)
    if names is None:
        columns = _named_columns(X)
        names = columns if columns is not None and len(columns) == n else [f"x{i}" for i in range(n)]
    return names


def aligned_input(model, X, *, feature_names: Sequence[str] | None = None, argument: str = "X"):
    """``(names, array)``: X as a float32 matrix in the model's input order.

    The model's feature names are ``feature_names`` if given, else its gate's
    names. A DataFrame whose column names are strings is matched to them by
    name (any column order); without names on the model, its columns name the
    features. Anything else is taken by position.

    Raises:
        DataError: the DataFrame's columns are not the model's features (the
            missing and unexpected ones are named), or X does not have the
            model's width.
    """
    n = check_model_input(model)
    known = [str(f) for f in feature_names] if feature_names is not None else _gate_names(model)
    if known is not None and len(known) != n:
        raise DataError(f"feature_names has {len(known)} names but the model takes {n} features.")
    columns = _named_columns(X)
    if columns is not None and known is not None:
        problems = column_mismatch(known, columns)
        if problems:
            raise DataError(
                f"{argument} is a DataFrame whose columns are not the model's features: {problems}. "
                "Columns are matched by name."
            )
        X = X[known]
    names = known if known is not None else model_features(model, X)
    return names, _as_float_matrix(X, n, argument)


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


def n_output_tensors(model) -> int:
    """How many output tensors the model has (a list or dict of outputs counts each)."""
    return len(getattr(model, "outputs", None) or [None])


def resolve_loss(model, loss=None):
    """The loss that permutation and ablation measure.

    ``loss`` if given (a Keras loss name, a ``keras.losses.Loss`` or a callable);
    otherwise the loss the model was compiled with (so a classifier compiled
    with ``from_logits=True`` is measured with that loss); otherwise the loss
    implied by the output activation (:func:`infer_loss`).

    Raises:
        ConfigError: the name is not a Keras loss, or the model was compiled
            with one loss per output.
    """
    if loss is None and getattr(model, "compiled", False) and getattr(model, "loss", None) is not None:
        loss = model.loss
        if isinstance(loss, (list, tuple, Mapping)):
            raise ConfigError(
                "The model was compiled with one loss per output; pass loss= (a callable on the stacked outputs)."
            )
    if loss is None:
        loss = infer_loss(model)
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError as exc:
            raise ConfigError(
                f"Received an invalid value for loss, expected a Keras loss name (for example {list(LOSSES)}), "
                f"a keras.losses.Loss or a callable. Received: loss={loss!r}"
            ) from exc
    if isinstance(loss, keras.losses.Loss):
        return loss.call  # the unreduced, per-sample values
    if not callable(loss):
        raise ConfigError(f"Received an invalid value for loss, expected a name or a callable. Received: loss={loss!r}")
    return loss


def _losses(loss: Callable, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Mean loss of each copy; ``pred`` is ``(k, n_rows, *output_shape)``.

    Keras losses return per-sample values, so all copies are scored in one call
    and each copy's mean is its loss (Keras' ``sum_over_batch_size``). A callable
    that returns one number is called once per copy.
    """
    k, n = pred.shape[:2]
    if y.size == n * int(np.prod(pred.shape[2:])):  # one target per output unit: give y the output's shape
        y = y.reshape(pred.shape[1:])
    flat = pred.reshape(k * n, *pred.shape[2:])
    values = keras.ops.convert_to_numpy(loss(np.tile(y, (k,) + (1,) * (y.ndim - 1)), flat))
    if values.size and values.size % (k * n) == 0:
        return values.reshape(k, -1).astype(np.float64).mean(axis=1)
    return np.array([float(np.mean(keras.ops.convert_to_numpy(loss(y, p)))) for p in pred])


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(model, kind: str):
    """A tf.function of the model's forward pass (or its input gradient), cached per model.

    Called on fixed-size chunks, it traces once; ``model.predict`` would pay its loop's
    per-call set-up on every re-scoring. The functions reach the model through a weak
    reference, so the cache does not keep a model alive (a tuner search builds many).
    """
    import tensorflow as tf

    cache = _COMPILED.setdefault(model, {})
    if kind not in cache:
        ref = weakref.ref(model)
        if kind == "forward":

            def forward(x):
                return ref()(x, training=False)

            cache[kind] = tf.function(forward, reduce_retracing=True)
        else:
            n_outputs = sum(int(np.prod(o.shape[1:])) for o in model.outputs)

            def mean_abs_gradient(x):
                # Per row, the mean over every output unit (of every output tensor) of |d out / d x|.
                # Rows do not interact at inference, so the gradient of a column's sum is per-row.
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch(x)
                    outs = keras.tree.flatten(ref()(x, training=False))
                    out = tf.concat([tf.reshape(o, (tf.shape(o)[0], -1)) for o in outs], axis=1)
                    columns = [out[:, k] for k in range(n_outputs)]
                return tf.add_n([tf.abs(tape.gradient(c, x)) for c in columns]) / n_outputs

            cache[kind] = tf.function(mean_abs_gradient, reduce_retracing=True)
    return cache[kind]


def _chunked(function, X: np.ndarray, batch_size: int):
    """``function`` on fixed-size chunks of X (the last one padded), yielding the rows' results."""
    size = min(batch_size, len(X))
    for start in range(0, len(X), size):
        chunk = X[start : start + size]
        valid = len(chunk)
        if valid < size:  # pad the last chunk: one traced shape for every call
            chunk = np.concatenate([chunk, np.zeros((size - valid, X.shape[1]), X.dtype)])
        yield keras.ops.convert_to_numpy(function(chunk))[:valid]


def _predict(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Predictions of a one-output model, shape ``(n_rows, *output_shape)``."""
    if keras.backend.backend() != "tensorflow":
        return np.asarray(model.predict(X, batch_size=batch_size, verbose=0))
    return np.concatenate(list(_chunked(_compiled(model, "forward"), X, batch_size)))


def _loss_increase(model, X, y, loss, edits, batch_size) -> tuple[float, np.ndarray]:
    """Loss on each edited copy of X minus the loss on X; edits as in ``stacked_copies``."""
    n = len(X)
    baseline = float(_losses(loss, y, _predict(model, X, batch_size)[None])[0])
    out = np.empty(len(edits))
    per_chunk = copies_per_chunk(X)
    for start in range(0, len(edits), per_chunk):
        chunk = edits[start : start + per_chunk]
        pred = _predict(model, stacked_copies(X, chunk), batch_size)
        out[start : start + len(chunk)] = _losses(loss, y, pred.reshape(len(chunk), n, *pred.shape[1:]))
    return baseline, out - baseline


# ----------------------------------------------------------------------- gradient


def _gradient(model, X: np.ndarray, batch_size: int) -> np.ndarray:
    """Mean over rows of the mean over output units of ``|d out / d x_i|``, in chunks of ``batch_size`` rows."""
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"method='gradient' is implemented for the TensorFlow backend; the active backend is "
            f"{keras.backend.backend()!r}. Use method='permutation' or 'ablation'."
        )
    total = np.zeros(X.shape[1])
    for rows in _chunked(_compiled(model, "gradient"), X, batch_size):
        total += rows.sum(axis=0, dtype=np.float64)
    return total / len(X)


# ------------------------------------------------------------------------ weights


def _first_dense_maps(model, n: int):
    """(layer, effective kernel (n, units)) for each Dense layer fed linearly by the input."""
    if any(isinstance(layer, EnsembleAdapter) for layer in model.layers):
        raise ConfigError(
            "The model is an ensemble (it has an EnsembleAdapter): its members' weights differ, so weight-based "
            "importance is undefined; use method='gradient', 'permutation' or 'ablation'."
        )
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
        twice = repeated(members)
        if twice:
            raise DataError(f"groups[{g!r}] lists {format_names(twice)} more than once; list each feature once.")
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
        X: Rows to measure on, shape ``(n_samples, n_features)``: an array
            in the model's input order, or a DataFrame, whose columns are
            matched to the model's feature names (the gate's, or
            ``feature_names``) by name. Use held-out rows: on training rows
            the methods measure sensitivity, which can be overfitting.
        y: Targets, needed by ``"permutation"`` and ``"ablation"``.
        method: One of ``"gradient"``, ``"weights"``, ``"garson"``, ``"olden"``,
            ``"permutation"``, ``"ablation"`` (see the module docstring for
            each formula and its caveats).
        n_repeats: Shuffles per feature for ``"permutation"``.
        groups: For ``"permutation"`` and ``"ablation"``: ``{group: [features]}``
            shuffled or ablated together; the result is then indexed by group.
        loss: For ``"permutation"``/``"ablation"``: a Keras loss name
            (``"mse"``, ``"binary_crossentropy"``, ...), a ``keras.losses.Loss``,
            or a callable ``loss(y_true, y_pred)`` returning per-row values or
            one number. By default the loss the model was compiled with, or,
            for an uncompiled model, the one its output activation implies
            (sigmoid, softmax, else MSE); see :func:`resolve_loss`.
        max_rows: Use a random sample of at most this many rows.
        random_state: Seed (int), ``numpy.random.RandomState`` (advanced by
            each call, so repeated calls draw fresh shuffles) or None.
        feature_names: Names of the inputs (default: the gate's names, X's
            columns, or ``x0, x1, ...``).
        batch_size: Rows per predict or gradient call.

    Returns:
        pd.Series of importances indexed by feature (or group); higher = more
        important (Olden's values are signed).

    Raises:
        ConfigError: unknown method or loss, or a method undefined for the
            network's shape (Garson and Olden on a multi-branch network;
            permutation and ablation on a model with several outputs).
        DataError: X does not match the model's input, the model does not
            take one 2-D input, or y is missing or of the wrong length.
    """
    check_choice("method", method, METHODS)
    check_int("n_repeats", n_repeats)
    check_int("max_rows", max_rows, allow_none=True)
    check_int("batch_size", batch_size)
    rng = check_seed(random_state)
    names, X = aligned_input(model, X, feature_names=feature_names)
    y_arr = None
    if method in ("permutation", "ablation"):
        if n_output_tensors(model) > 1:
            raise ConfigError(
                f"method={method!r} measures the loss of one output, but the model has {n_output_tensors(model)} "
                "outputs. Use method='gradient' (it averages over every output), or score a one-output sub-model."
            )
        loss = resolve_loss(model, loss)
        if y is None:
            raise DataError(f"method={method!r} needs y, the targets of the rows in X.")
        try:
            y_arr = np.asarray(y, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"y must hold numbers (the model's targets): {exc}") from exc
        if y_arr.ndim == 0 or y_arr.shape[0] != X.shape[0]:
            raise DataError(f"y has {y_arr.size} values but X has {X.shape[0]} rows; they must match.")
    if max_rows is not None and X.shape[0] > max_rows:
        rows = np.sort(rng.choice(X.shape[0], max_rows, replace=False))
        X = X[rows]
        y_arr = None if y_arr is None else y_arr[rows]
    sigma = X.std(axis=0).astype(np.float64)

    if method == "gradient":
        values = sigma * _gradient(model, X, batch_size)
    elif method == "weights":
        values = _weights(model, X, sigma)
    elif method == "garson":
        values = _garson(model, X, sigma)
    elif method == "olden":
        values = _olden(model, X, sigma)
    else:
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
