"""A plain Keras MLP for comparisons (the demo): what a user would train without archguide."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from archguide._backend import import_keras

keras = import_keras()

__all__ = ["PlainMLP", "plain_mlp"]


class PlainMLP:
    """A fitted plain MLP regressor on numeric columns: standardised inputs and target, 64-32 ReLU."""

    def __init__(self, model, columns, target_mean: float, target_scale: float):
        self.model_, self.columns = model, list(columns)
        self.target_mean, self.target_scale = target_mean, target_scale

    def predict(self, X) -> np.ndarray:
        values = np.asarray(X[self.columns] if hasattr(X, "columns") else X, dtype=np.float32)
        out = self.model_.predict(values, batch_size=4096, verbose=0)[:, 0]
        return out.astype(np.float64) * self.target_scale + self.target_mean


def plain_mlp(X, y, training: Mapping[str, Any], *, seed: int, units=(64, 32), verbose: int = 0) -> PlainMLP:
    """Train a plain MLP regressor as a Keras user would: Adam, early stopping with restored best weights.

    Args:
        X, y: Numeric training rows and targets.
        training: The ``training`` section of a config (epochs, batch_size, learning_rate,
            validation_fraction, patience): the same budget archguide's estimator gets
            (``batch_size="auto"`` is resolved by the same rule, on the rows it trains on).
        seed: Keras' seed for the run.
        units: Hidden layer widths.
        verbose: 1 shows a progress bar over epochs.
    """
    from archguide.estimators._training import _batch_size, _EpochProgress

    columns = list(X.columns) if hasattr(X, "columns") else list(range(np.shape(X)[1]))
    values = np.asarray(X, dtype=np.float32)
    target = np.asarray(y, dtype=np.float64)
    mean, scale = float(target.mean()), float(target.std()) or 1.0
    keras.utils.set_random_seed(seed)
    normalize = keras.layers.Normalization()
    normalize.adapt(values)
    inputs = keras.Input((values.shape[1],))
    hidden = normalize(inputs)
    for width in units:
        hidden = keras.layers.Dense(width, activation="relu")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(1)(hidden), name="plain_mlp")
    model.compile(optimizer=keras.optimizers.Adam(training["learning_rate"]), loss="mse")
    callbacks = [keras.callbacks.EarlyStopping(patience=training["patience"], restore_best_weights=True)]
    if verbose == 1:
        n_train = len(values) - int(round(training["validation_fraction"] * len(values)))
        callbacks.append(_EpochProgress(training["epochs"], "plain MLP", n_train, monitor="val_loss"))
    model.fit(
        values,
        ((target - mean) / scale).astype(np.float32),
        validation_split=training["validation_fraction"],
        epochs=training["epochs"],
        batch_size=_batch_size(training["batch_size"], int(len(values) * (1 - training["validation_fraction"]))),
        callbacks=callbacks,
        verbose=2 if verbose == 2 else 0,
    )
    return PlainMLP(model, columns, mean, scale)
