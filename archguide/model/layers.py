"""archguide's registered Keras layers.

Every layer here is registered under the package name ``archguide``, returns
plain JSON types from ``get_config``, and loads in a fresh process after
``import archguide`` with no ``custom_objects``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from archguide._backend import import_keras
from archguide._checks import check_int, check_number
from archguide.exceptions import ConfigError, DataError

keras = import_keras()
ops = keras.ops

__all__ = [
    "CategoryEmbedding",
    "ColumnSelector",
    "DataLoss",
    "EnsembleAdapter",
    "EnsembleHead",
    "EnsembleMean",
    "FeatureGate",
    "PeriodicEncoding",
    "SmoothedCrossentropy",
]


def _check_strengths(values, n: int | None = None, *, argument: str = "strengths") -> list[float]:
    try:
        values = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise ConfigError(
            f"Received an invalid value for {argument}, expected a list of numbers. Received: {argument}={values!r}"
        ) from None
    if n is not None and values.shape[0] != n:
        raise ConfigError(
            f"Received an invalid value for {argument}, expected {n} values (one per feature). "
            f"Received: {values.shape[0]} values."
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(
            f"Received an invalid value for {argument}, expected finite numbers >= 0. Received: {values.tolist()}"
        )
    return values.tolist()


@keras.saving.register_keras_serializable(package="archguide")
class FeatureGate(keras.layers.Layer):
    """Per-feature gates with per-feature L1 penalties, at the model's input.

    The layer multiplies each input feature by a trainable gate (starting at 1)
    and adds ``sum(strength * |gate|)`` to the model's loss, where ``strength``
    is a per-feature L1 strength. Strengths are a non-trainable weight of the
    layer: a callback may change them between steps, the change is seen by the
    next training step on every backend, and they are saved with the model and
    in checkpoints (``BackupAndRestore`` included).

    A strong penalty drives a feature's gate towards 0, which switches the
    feature off for every branch that reads it: an adaptive lasso for networks.

    Args:
        strengths: Initial L1 strength per feature (floats >= 0), or None for 0.
        feature_names: Optional names of the input features: they label the
            scores of :func:`~archguide.network_importance`, and a
            DataFrame given there is matched to them by column name.
        l1: Optional scale the strengths were made with (the plan's ``l1``:
            the most important feature's strength). Re-scoring callbacks
            rescale the strengths by it; see
            :class:`~archguide.ImportanceRescoring`.
        **kwargs: Base layer keyword arguments (``name``, ``dtype``, ...).

    Raises:
        ConfigError: a strength is negative or not finite, ``l1`` is, or
            ``feature_names`` and ``strengths`` differ in length.
        DataError: (when built) the input is not ``(batch_size, n_features)``
            with ``n_features`` the number of strengths; a later call on
            inputs of another width raises Keras' input-spec ``ValueError``
            naming the layer and both widths.

    Input shape:
        ``(batch_size, n_features)``.

    Output shape:
        Same as the input.

    Example:
        >>> gate = FeatureGate(strengths=[0.0, 0.1])
        >>> out = gate(np.ones((2, 2), dtype="float32"))
        >>> gate.get_strengths().tolist()
        [0.0, 0.10000000149011612]
    """

    def __init__(
        self,
        strengths: Sequence[float] | None = None,
        feature_names: Sequence[str] | None = None,
        l1: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initial_strengths = None if strengths is None else _check_strengths(strengths)
        self.feature_names = None if feature_names is None else [str(f) for f in feature_names]
        if l1 is not None:
            check_number("l1", l1)
        self.l1 = None if l1 is None else float(l1)
        if self.feature_names is not None and self.initial_strengths is not None:
            if len(self.feature_names) != len(self.initial_strengths):
                raise ConfigError(
                    "Received an invalid value for feature_names, expected one name per strength "
                    f"({len(self.initial_strengths)}). Received: {len(self.feature_names)} names."
                )

    def build(self, input_shape):
        n = input_shape[-1]
        if n is None or len(input_shape) != 2:
            raise DataError(
                f"FeatureGate expects inputs of shape (batch_size, n_features) with a known n_features. "
                f"Received: input_shape={input_shape}"
            )
        if self.initial_strengths is not None and len(self.initial_strengths) != n:
            raise DataError(
                f"FeatureGate {self.name!r} has {len(self.initial_strengths)} strengths (one per feature) but its "
                f"input has {n} features."
            )
        self.input_spec = keras.InputSpec(ndim=2, axes={-1: n})
        self.gate = self.add_weight(name="gate", shape=(n,), initializer="ones", trainable=True)
        self.strength = self.add_weight(name="strength", shape=(n,), initializer="zeros", trainable=False)
        if self.initial_strengths is not None:
            self.strength.assign(np.asarray(self.initial_strengths, dtype=self.strength.dtype))

    def call(self, inputs):
        self.add_loss(ops.sum(self.strength * ops.abs(self.gate)))
        return inputs * self.gate

    def compute_output_shape(self, input_shape):
        return input_shape

    @property
    def n_features(self) -> int:
        return int(self.gate.shape[0])

    def get_strengths(self) -> np.ndarray:
        """The current L1 strength per feature, as a NumPy array."""
        return self.strength.numpy()

    def set_strengths(self, strengths: Sequence[float]) -> None:
        """Set the L1 strength per feature (floats >= 0, one per feature).

        Raises:
            ConfigError: wrong number of values, or a negative or non-finite one.
        """
        values = _check_strengths(strengths, self.n_features)
        self.strength.assign(np.asarray(values, dtype=self.strength.dtype))

    def get_gates(self) -> np.ndarray:
        """The current gate per feature, as a NumPy array."""
        return self.gate.numpy()

    def penalty(self) -> float:
        """The value this layer adds to the loss: ``sum(strength * |gate|)``."""
        return float(np.sum(self.get_strengths() * np.abs(self.get_gates())))

    def get_config(self):
        strengths = self.get_strengths().tolist() if self.built else self.initial_strengths
        return {**super().get_config(), "strengths": strengths, "feature_names": self.feature_names, "l1": self.l1}


@keras.saving.register_keras_serializable(package="archguide")
class ColumnSelector(keras.layers.Layer):
    """Select columns of the last axis: ``inputs[..., indices]``.

    Args:
        indices: Column positions to keep, in order.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size, n_features)``, or ``(batch_size, k, n_features)`` inside an ensemble.

    Output shape:
        ``(batch_size, len(indices))``, or ``(batch_size, k, len(indices))``.
    """

    def __init__(self, indices: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        indices = [int(i) for i in indices]
        if not indices or min(indices) < 0:
            raise ConfigError(
                f"Received an invalid value for indices, expected a non-empty list of column positions >= 0. "
                f"Received: indices={indices}"
            )
        self.indices = indices

    def build(self, input_shape):
        n = input_shape[-1]
        if n is not None and max(self.indices) >= n:
            raise DataError(f"ColumnSelector indices go up to {max(self.indices)} but the input has {n} columns.")

    def call(self, inputs):
        return ops.take(inputs, self.indices, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.indices))

    def get_config(self):
        return {**super().get_config(), "indices": list(self.indices)}


@keras.saving.register_keras_serializable(package="archguide")
class PeriodicEncoding(keras.layers.Layer):
    """Periodic encoding of numeric features: ``cos(2 pi c x)`` and ``sin(2 pi c x)`` per learned frequency.

    The "P" of the PLR embeddings of Gorishniy et al. (2022), "On Embeddings
    for Numerical Features in Tabular Deep Learning", with a width per
    feature: column ``j`` of the input gets ``frequencies[j]`` trainable
    frequencies ``c``, drawn from ``N(0, sigma)``. A Dense layer after it makes
    the "L" and its activation the "R". A feature held at 0 (a closed input
    gate) encodes as the constant ``(1, 0)``: it carries nothing.

    Args:
        frequencies: Frequencies per input column (positive integers).
        sigma: Standard deviation of the initial frequencies.
        seed: Seed of their initializer.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size, len(frequencies))`` (or ``(batch_size, k, len(frequencies))`` inside an ensemble).

    Output shape:
        ``(..., 2 * sum(frequencies))``: every cosine, then every sine.
    """

    def __init__(self, frequencies: Sequence[int], sigma: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        frequencies = [int(m) for m in frequencies]
        if not frequencies or min(frequencies) < 1:
            raise ConfigError(
                "Received an invalid value for frequencies, expected a non-empty list of positive integers. "
                f"Received: frequencies={frequencies}"
            )
        check_number("sigma", sigma, open_interval=True)
        self.frequencies, self.sigma, self.seed = frequencies, float(sigma), seed
        self._column = np.repeat(np.arange(len(frequencies)), frequencies).tolist()  # each frequency's column

    def build(self, input_shape):
        n = input_shape[-1]
        if n is not None and n != len(self.frequencies):
            raise DataError(f"PeriodicEncoding has {len(self.frequencies)} columns' frequencies; the input has {n}.")
        self.coefficients = self.add_weight(
            shape=(len(self._column),),
            initializer=keras.initializers.RandomNormal(stddev=self.sigma, seed=self.seed),
            name="coefficients",
        )

    def call(self, inputs):
        angles = 2.0 * np.pi * ops.take(inputs, self._column, axis=-1) * self.coefficients
        return ops.concatenate([ops.cos(angles), ops.sin(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * len(self._column))

    def get_config(self):
        return {**super().get_config(), "frequencies": list(self.frequencies), "sigma": self.sigma, "seed": self.seed}


@keras.saving.register_keras_serializable(package="archguide")
class CategoryEmbedding(keras.layers.Layer):
    """A learned embedding of one-hot levels: ``x @ E``, one row of ``E`` per level.

    On a one-hot row (a level's gated indicator) it returns that level's
    vector, as ``keras.layers.Embedding`` does for an index; on the gated
    input of :class:`FeatureGate` a shrunk gate shrinks the vector with it.
    It is linear without a bias, so the branch Dense after it still has an
    effective kernel row per level (``E @ W``), which weight-based importance
    reads. Each vector starts from ``N(0, 1 / width)`` per dimension, so its
    length is about 1, as a one-hot row's is.

    Args:
        width: Dimensions of each level's vector.
        seed: Seed of the initializer.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(..., levels)``.

    Output shape:
        ``(..., width)``.
    """

    def __init__(self, width: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_int("width", width)
        self.width, self.seed = int(width), seed

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(int(input_shape[-1]), self.width),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(self.width), seed=self.seed),
            name="embeddings",
        )

    def call(self, inputs):
        return ops.matmul(inputs, self.embeddings)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "seed": self.seed}


@keras.saving.register_keras_serializable(package="archguide")
class EnsembleAdapter(keras.layers.Layer):
    """Copy the input for ``size`` ensemble members, each scaled feature by feature: ``x * r_i``.

    The multiplicative adapter of TabM-mini (Gorishniy et al., 2025, "TabM:
    Advancing Tabular Deep Learning with Parameter-Efficient Ensembling"):
    every layer after it is shared by the members, which differ only by their
    scales ``r_i`` (drawn as random signs, then trained) and their own output
    layer (:class:`EnsembleHead`). Dense layers act on the last axis, so the
    shared layers need no change.

    Args:
        size: Number of members (at least 2).
        seed: Seed of the random signs.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size, n_features)``.

    Output shape:
        ``(batch_size, size, n_features)``.
    """

    def __init__(self, size: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_int("size", size, low=2)
        self.size, self.seed = int(size), seed

    def build(self, input_shape):
        signs = np.random.default_rng(self.seed).choice([-1.0, 1.0], size=(self.size, int(input_shape[-1])))
        self.scales = self.add_weight(shape=signs.shape, initializer=keras.initializers.Constant(signs), name="scales")

    def call(self, inputs):
        return ops.expand_dims(inputs, 1) * self.scales

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


@keras.saving.register_keras_serializable(package="archguide")
class EnsembleHead(keras.layers.Layer):
    """One linear output layer per ensemble member: ``y_i = h_i W_i + b_i``.

    Args:
        units: Outputs of each member.
        seed: Seed of the kernels' Glorot-uniform initializer.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size, size, n_inputs)``.

    Output shape:
        ``(batch_size, size, units)``.
    """

    def __init__(self, units: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        check_int("units", units)
        self.units, self.seed = int(units), seed

    def build(self, input_shape):
        size, n = int(input_shape[-2]), int(input_shape[-1])
        limit = np.sqrt(6.0 / (n + self.units))  # Glorot uniform, as a Dense layer of each member would draw
        self.kernel = self.add_weight(
            shape=(size, n, self.units),
            initializer=keras.initializers.RandomUniform(-limit, limit, seed=self.seed),
            name="kernel",
        )
        self.bias = self.add_weight(shape=(size, self.units), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.einsum("bkn,knu->bku", inputs, self.kernel) + self.bias

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "seed": self.seed}


@keras.saving.register_keras_serializable(package="archguide")
class EnsembleMean(keras.layers.Layer):
    """The ensemble's prediction, the mean of its members' outputs, and the loss that trains each member.

    TabM trains every member on its own loss (the mean of the members' losses,
    not the loss of their mean). For the three losses archguide uses, the
    members' mean loss is the loss of the mean *plus a term that does not
    depend on the target*, so this layer adds that term with ``add_loss`` and
    the model's loss (with ``data_loss``, the loss of the ensemble's
    prediction, computed as without an ensemble) is exactly the members' mean
    loss:

    - ``"squared"`` (mean squared error on the outputs): the members' variance
      around their mean, averaged over the outputs;
    - ``"softmax"`` (cross-entropy on the mean of the logits ``z_i``):
      ``mean_i logsumexp(z_i) - logsumexp(mean_i z_i)``;
    - ``"sigmoid"`` (binary cross-entropy, one logit per member):
      ``mean_i softplus(z_i) - softplus(mean_i z_i)``.

    Classes are therefore combined by averaging logits (a normalised geometric
    mean of the members' probabilities). The term is averaged over the batch
    without sample weights.

    Args:
        loss: ``"squared"``, ``"softmax"`` or ``"sigmoid"``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size, size, units)``: each member's outputs (logits for classes).

    Output shape:
        ``(batch_size, units)``: their mean (an activation goes after it).
    """

    LOSSES = ("squared", "softmax", "sigmoid")

    def __init__(self, loss: str = "squared", **kwargs):
        super().__init__(**kwargs)
        if loss not in self.LOSSES:
            raise ConfigError(
                f"Received an invalid value for loss, expected one of {list(self.LOSSES)}. Received: loss={loss!r}"
            )
        self.loss = loss

    def call(self, inputs):
        mean = ops.mean(inputs, axis=1)
        if self.loss == "squared":
            spread = ops.mean(ops.square(inputs - ops.expand_dims(mean, 1)), axis=(1, 2))
        elif self.loss == "softmax":
            spread = ops.mean(ops.logsumexp(inputs, axis=-1), axis=1) - ops.logsumexp(mean, axis=-1)
        else:
            spread = ops.mean(ops.softplus(inputs), axis=(1, 2)) - ops.mean(ops.softplus(mean), axis=-1)
        self.add_loss(ops.mean(spread))
        return mean

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "loss": self.loss}


@keras.saving.register_keras_serializable(package="archguide")
class SmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy against labels smoothed towards the uniform distribution, for class indices or 0/1.

    With ``k`` classes the target of class ``c`` becomes ``(1 - e) * onehot(c) + e / k``
    (``k = 2`` for one sigmoid unit), as Keras' ``label_smoothing`` does for one-hot
    targets; Keras' sparse cross-entropy has no such option.

    Args:
        label_smoothing: ``e``, in [0, 1).
        binary: One sigmoid unit and 0/1 targets, rather than a softmax over class indices.
        **kwargs: Base loss keyword arguments.
    """

    def __init__(self, label_smoothing: float = 0.1, binary: bool = False, **kwargs):
        kwargs.setdefault("name", "smoothed_crossentropy")
        super().__init__(**kwargs)
        check_number("label_smoothing", label_smoothing, high=1.0, open_high=True)
        self.label_smoothing, self.binary = float(label_smoothing), bool(binary)

    def call(self, y_true, y_pred):
        if self.binary:
            y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))  # a 1-D 0/1 target too
            return keras.losses.binary_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)
        n = ops.shape(y_pred)[-1]
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), n, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "binary": self.binary}


@keras.saving.register_keras_serializable(package="archguide")
class DataLoss(keras.metrics.Metric):
    """The task's loss without the model's penalties, reduced exactly as the loss is.

    Keras reduces a loss over a batch as ``sum(sample_weight * loss) / n_rows``
    and averages batches by their size; this metric adds up the same sums and
    rows over an epoch, so that ``loss - penalty == data_loss`` holds with and
    without ``sample_weight`` or ``class_weight`` (a weighted ``Mean`` would
    divide by the sum of the weights instead). Pass it in ``weighted_metrics``
    so that Keras hands it the weights.

    Args:
        loss: ``"mean_squared_error"``, ``"binary_crossentropy"`` or
            ``"sparse_categorical_crossentropy"``. Targets of rank one less
            than the output (a 1-D 0/1 target for one sigmoid unit) are
            expanded as the loss itself expands them.
        name: The metric's name (``"data_loss"``).
    """

    LOSSES = {
        "mean_squared_error": keras.losses.MeanSquaredError,
        "binary_crossentropy": keras.losses.BinaryCrossentropy,
        "sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
    }

    def __init__(self, loss: str = "mean_squared_error", name: str = "data_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if loss not in self.LOSSES:
            raise ConfigError(
                f"Received an invalid value for loss, expected one of {list(self.LOSSES)}. Received: loss={loss!r}"
            )
        self.loss = loss
        # Lower is better: lets EarlyStopping, ModelCheckpoint and KerasTuner's mode="auto" read val_data_loss
        self._direction = "down"
        self._per_row = self.LOSSES[loss](reduction=None)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.rows = self.add_variable(shape=(), initializer="zeros", name="rows")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = ops.cast(self._per_row(y_true, y_pred, sample_weight=sample_weight), self.dtype)
        self.total.assign_add(ops.sum(values))
        self.rows.assign_add(ops.cast(ops.size(values), self.dtype))

    def result(self):
        return ops.divide_no_nan(self.total, self.rows)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "loss": self.loss}
