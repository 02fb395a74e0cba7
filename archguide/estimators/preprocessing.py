"""Preprocessing that travels with the model: raw columns in, the network's float features out.

A :class:`ColumnEncoding` is fitted on a table (pure NumPy and pandas: means,
scales, category lists) and then builds the Keras layers that apply it, so a
saved model takes raw columns and every number it computes is computed by
those layers, at training and at prediction time alike.

Each source column becomes one or more features of the network:

- numeric and boolean: the standardised value ``(x - mean) / scale``, with a
  missing value set to 0 (the mean); if the column had missing values at fit
  time, a second feature ``"<column>=<missing>"`` is 1 where it was missing.
  With ``scaling="robust"`` a numeric column is instead clamped to its 0.1% and
  99.9% quantiles (a value beyond what the training rows showed is read as
  their edge, as a tree reads it, never extrapolated from), centred on its
  median, divided by its interquartile range (half its range if that is 0)
  and smoothly clipped, ``z / sqrt(1 + (z / 3)^2)`` (RealMLP's robust scaling),
  so that a skewed column or a few wild values (diamonds' zero sizes) stay
  within ±3 while the bulk keeps its spacing; booleans stay standardised.
  The mean and scale are taken in float64, and the model takes these columns
  as float64 and centres them before the cast to float32: a column of large
  values with small differences (timestamps near 1.7e9, say) keeps its
  resolution;
- categorical: one-hot over the categories seen at fit time (features
  ``"<column>=<category>"``); a category never seen at fit time is all zeros,
  so it predicts without error; if the column had missing values at fit time,
  ``"<column>=<missing>"`` is 1 where it was missing. Any string is a
  category, ``""`` and ``"[UNK]"`` included: the model's string input passes a
  missing value as ``""`` and a label as itself, except a label that is ``""``
  or starts with ``"\\ue000"``, which is passed behind one more ``"\\ue000"``
  (:func:`model_label`), so that no label is taken for a missing value.
  With ``min_frequency`` or ``max_categories`` (scikit-learn's
  ``OneHotEncoder`` options, with its meaning) the rare categories share one
  feature, ``"<column>=<infrequent>"``, and so does a category never seen at
  fit time: a high-cardinality column (identifiers, zip codes) becomes at
  most ``max_categories`` features instead of one per level.

The features of one source column form one feature group, named after the
column, so that scores, plans and penalties speak in the user's column names.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from archguide._backend import import_keras
from archguide._checks import check_choice, check_int
from archguide._statistics import ColumnStatistics
from archguide.exceptions import ConfigError, DataError
from archguide.schema import Table, unique_name

keras = import_keras()
ops = keras.ops

__all__ = [
    "CategoryEncoder",
    "Column",
    "ColumnStatistics",
    "ColumnEncoding",
    "MISSING_LABEL",
    "NumericEncoder",
    "SCALINGS",
    "check_pooling",
    "dict_keys_not_names",
    "infrequent_mask",
    "model_label",
]

#: How :meth:`ColumnEncoding.fit` scales numeric columns: by mean and standard deviation, or robustly.
SCALINGS = ("standard", "robust")
#: The smooth clip's bound for ``scaling="robust"``: ``z / sqrt(1 + (z / CLIP)^2)`` stays within ±CLIP.
CLIP = 3.0

#: The label a missing categorical value is passed to the model as.
MISSING_LABEL = ""
#: Prefixes a label that would otherwise read as a missing value (``""``) or as another escaped label.
_ESCAPE = "\ue000"  # a private-use character; NumPy strips a trailing NUL from strings


def model_label(label: str) -> str:
    """The string the model's input takes for a category label: one-to-one, never ``MISSING_LABEL``."""
    return _ESCAPE + label if label == MISSING_LABEL or label.startswith(_ESCAPE) else label


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


@contextlib.contextmanager
def dict_keys_not_names():
    """Silence Keras' warning that a dict key is not its input's name: a column name with "/" cannot be one."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="When providing `inputs` as a dict", category=UserWarning)
        yield


@keras.saving.register_keras_serializable(package="archguide")
class NumericEncoder(keras.layers.Layer):
    """Standardise one numeric column; a missing value (NaN) becomes 0, optionally flagged.

    Args:
        mean: Subtracted from the value (the median, for robust scaling).
        scale: The difference is divided by it (> 0).
        missing_indicator: Add a second output column, 1 where the value is missing.
        clip: If set (> 0), the scaled value ``z`` becomes ``z / sqrt(1 + (z / clip)^2)``: near ``z`` for
            small values, never beyond ``±clip``.
        lower, upper: If set, the value is first clamped to ``[lower, upper]`` (in the column's units).
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size,)`` or ``(batch_size, 1)``; any real dtype (booleans too).

    Output shape:
        ``(batch_size, 1)``, or ``(batch_size, 2)`` with the indicator.
    """

    def __init__(
        self,
        mean: float = 0.0,
        scale: float = 1.0,
        missing_indicator: bool = False,
        clip: float | None = None,
        lower: float | None = None,
        upper: float | None = None,
        **kwargs,
    ):
        kwargs.setdefault("autocast", False)  # the float64 input is centred before the cast, not after
        super().__init__(**kwargs)
        self.mean = float(mean)
        self.scale = float(scale)
        self.missing_indicator = bool(missing_indicator)
        self.clip, self.lower, self.upper = _optional_float(clip), _optional_float(lower), _optional_float(upper)

    def call(self, inputs):
        # Centred in float64, then cast: float32 resolves 1.7e9 to 128, its differences from the mean to far less.
        x = ops.reshape(ops.cast(inputs, "float64"), (-1, 1))
        missing = ops.isnan(x)
        if self.lower is not None or self.upper is not None:
            x = ops.clip(x, -np.inf if self.lower is None else self.lower, np.inf if self.upper is None else self.upper)
        z = ops.where(missing, ops.zeros_like(x), (x - self.mean) / self.scale)
        if self.clip is not None:
            z = z / ops.sqrt(1.0 + ops.square(z / self.clip))
        z = ops.cast(z, self.compute_dtype)
        if self.missing_indicator:
            return ops.concatenate([z, ops.cast(missing, z.dtype)], axis=1)
        return z

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 if self.missing_indicator else 1)

    def get_config(self):
        config = {"mean": self.mean, "scale": self.scale, "missing_indicator": self.missing_indicator}
        for key in ("clip", "lower", "upper"):  # absent from models saved before robust scaling: they still load
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="archguide")
class CategoryEncoder(keras.layers.Layer):
    """One-hot encode one string column over a fixed vocabulary.

    A label outside the vocabulary is all zeros, or, with ``infrequent``, sets
    the column after the vocabulary's (the rare and the unseen labels share
    it); the empty string stands for a missing value and, with
    ``missing_indicator``, sets an extra last column.

    Args:
        vocabulary: The known labels as the model takes them (strings, no
            duplicates, not ``""``; see :func:`model_label`). May be empty
            with ``infrequent``.
        missing_indicator: Add a last column, 1 where the label is ``""``.
        infrequent: Add a column, 1 where the label is neither in the
            vocabulary nor ``""``.
        **kwargs: Base layer keyword arguments.

    Input shape:
        ``(batch_size,)`` or ``(batch_size, 1)`` strings.

    Output shape:
        ``(batch_size, len(vocabulary) + infrequent + missing_indicator)``.
    """

    def __init__(self, vocabulary, missing_indicator: bool = False, infrequent: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary = [str(v) for v in vocabulary]
        self.missing_indicator = bool(missing_indicator)
        self.infrequent = bool(infrequent)
        if not self.vocabulary and not self.infrequent:
            raise ValueError("CategoryEncoder needs a vocabulary, or infrequent=True (every label shares one column).")
        # One out-of-vocabulary slot (index 0), dropped in call: unseen labels are all zeros. Its token must not
        # be a label: "[UNK]" (StringLookup's default) unless a label is "[UNK]", then one no model label can be.
        oov = "[UNK]" if "[UNK]" not in self.vocabulary else _ESCAPE + "[UNK]"
        self._lookup = None
        if self.vocabulary:  # StringLookup refuses an empty vocabulary
            self._lookup = keras.layers.StringLookup(
                vocabulary=self.vocabulary, num_oov_indices=1, oov_token=oov, output_mode="one_hot", name="lookup"
            )

    def build(self, input_shape):
        if self._lookup is not None:
            self._lookup.build((None, 1))

    def call(self, inputs):
        import tensorflow as tf  # string comparison is TensorFlow's; StringLookup needs it anyway

        labels = ops.reshape(inputs, (-1, 1))
        if self._lookup is None:
            parts, outside = [], ops.ones((ops.shape(labels)[0], 1), dtype=self.compute_dtype)
        else:
            onehot = ops.cast(self._lookup(labels), self.compute_dtype)
            parts, outside = [onehot[:, 1:]], onehot[:, :1]
        if not (self.infrequent or self.missing_indicator):
            return parts[0]  # the one-hot columns alone: no string comparison to make
        missing = ops.cast(tf.equal(labels, MISSING_LABEL), self.compute_dtype)
        if self.infrequent:  # outside the vocabulary and not missing: a rare or an unseen label
            parts.append(outside * (1.0 - missing))
        if self.missing_indicator:
            parts.append(missing)
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.vocabulary) + int(self.infrequent) + int(self.missing_indicator))

    def get_config(self):
        config = {"vocabulary": list(self.vocabulary), "missing_indicator": self.missing_indicator}
        if self.infrequent:  # absent from models saved before pooling: they still load
            config["infrequent"] = True
        return {**super().get_config(), **config}


@dataclass(frozen=True)
class Column:
    """How one source column is encoded (see :class:`ColumnEncoding`)."""

    name: str
    kind: str  # "numeric" | "boolean" | "categorical"
    features: tuple[str, ...]
    mean: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()  # each with a feature of its own
    missing_indicator: bool = False
    clip: float | None = None
    lower: float | None = None
    upper: float | None = None
    infrequent: tuple[str, ...] = ()  # the rare categories, sharing the feature "<column>=<infrequent>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "features": list(self.features),
            "mean": self.mean,
            "scale": self.scale,
            "categories": list(self.categories),
            "infrequent": list(self.infrequent),
            "missing_indicator": self.missing_indicator,
            "clip": self.clip,
            "lower": self.lower,
            "upper": self.upper,
        }


@dataclass(frozen=True)
class ColumnEncoding:
    """The fitted encoding of a table's columns into the network's features.

    Attributes:
        columns: One :class:`Column` per source column, in the table's order.
        features: Every feature of the network, column by column.
        groups: Source column name -> its features.
    """

    columns: tuple[Column, ...]
    features: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(f for c in self.columns for f in c.features))

    @property
    def names(self) -> list[str]:
        """The source columns' names, in order."""
        return [c.name for c in self.columns]

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns}

    @property
    def groups(self) -> dict[str, list[str]]:
        return {c.name: list(c.features) for c in self.columns}

    @property
    def embeddable(self) -> list[str]:
        """The features an embedding may encode: numeric columns' values (not flags, levels or booleans)."""
        return [c.features[0] for c in self.columns if c.kind == "numeric"]

    @property
    def levels(self) -> dict[str, list[str]]:
        """Categorical column -> its level features (the pooled one included, the missing flag not)."""
        return {
            c.name: list(c.features[: len(c.features) - c.missing_indicator])
            for c in self.columns
            if c.kind == "categorical"
        }

    @classmethod
    def fit(
        cls,
        table: Table,
        rows: np.ndarray | None = None,
        scaling: str = "standard",
        min_frequency: int | float | None = None,
        max_categories: int | None = None,
    ) -> ColumnEncoding:
        """Means, scales and categories of ``table`` (of ``rows`` when given).

        A constant column gets scale 1; a category only present outside
        ``rows`` is unseen at fit time (all zeros). ``scaling="robust"``
        centres numeric columns on the median, scales by the interquartile
        range (half the range if it is 0) and smoothly clips (see the module).

        ``min_frequency`` and ``max_categories`` pool a categorical column's
        rare categories into one feature, ``"<column>=<infrequent>"``, as
        scikit-learn's ``OneHotEncoder`` does (see :func:`infrequent_mask`);
        a category unseen at fit time then sets that feature too.

        Raises:
            ConfigError: ``scaling`` is not one of :data:`SCALINGS`, or
                ``min_frequency`` or ``max_categories`` is out of range.
        """
        check_choice("scaling", scaling, SCALINGS)
        check_pooling(min_frequency, max_categories)
        encoded = table.encode(rows, dtype=np.float64)
        statistics = {}
        for j, name in enumerate(table.names):
            kind, values = table.kinds[name], encoded[:, j]
            present = values[~np.isnan(values)]
            if kind == "categorical":
                codes, counts = np.unique(present.astype(int), return_counts=True)
                labels = table.categories[name]
                statistics[name] = ColumnStatistics.categorical(
                    len(values), {labels[i]: int(n) for i, n in zip(codes, counts)}
                )
            else:
                statistics[name] = ColumnStatistics.numbers(kind, len(values), present, robust=scaling == "robust")
        return cls.from_statistics(
            statistics, scaling=scaling, min_frequency=min_frequency, max_categories=max_categories
        )

    @classmethod
    def from_statistics(
        cls,
        statistics: Mapping[str, ColumnStatistics],
        scaling: str = "standard",
        min_frequency: int | float | None = None,
        max_categories: int | None = None,
    ) -> ColumnEncoding:
        """The encoding of columns described by their :class:`ColumnStatistics`, in the mapping's order.

        :meth:`fit` computes the statistics from a table in memory; a streamed fit
        (:mod:`archguide.datasets`) gathers the same ones in one pass over the files.
        """
        check_choice("scaling", scaling, SCALINGS)
        check_pooling(min_frequency, max_categories)
        used = set(statistics)
        columns = []
        for name, stats in statistics.items():
            indicator = unique_name(f"{name}=<missing>", used) if stats.missing else None
            if stats.kind == "categorical":
                labels = sorted(stats.counts)
                counts = np.asarray([stats.counts[label] for label in labels], dtype=np.int64)
                pooled = infrequent_mask(counts, stats.n_rows, min_frequency, max_categories)
                categories = tuple(label for label, p in zip(labels, pooled) if not p)
                infrequent = tuple(label for label, p in zip(labels, pooled) if p)
                features = tuple(unique_name(f"{name}={c}", used) for c in categories)
                if infrequent:
                    features += (unique_name(f"{name}=<infrequent>", used),)
                features += (indicator,) if indicator else ()
                columns.append(
                    Column(name, "categorical", features, categories=categories, missing_indicator=stats.missing,
                           infrequent=infrequent)
                )  # fmt: skip
                continue
            robust = scaling == "robust" and stats.kind == "numeric" and stats.n_present > 0
            if robust:
                lowest, low, mean, high, highest = stats.quantiles
                spread = float(high - low) or 0.5 * float(stats.maximum - stats.minimum)
            else:
                mean, spread = stats.mean, stats.std
            scale = spread if spread > 0 and np.isfinite(spread) else 1.0
            features = (name,) + ((indicator,) if indicator else ())
            column = Column(name, stats.kind, features, mean=float(mean), scale=scale, missing_indicator=stats.missing)
            if robust:
                column = replace(column, clip=CLIP, lower=float(lowest), upper=float(highest))
            columns.append(column)
        return cls(tuple(columns))

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnEncoding:
        columns = []
        for c in data["columns"]:
            columns.append(
                Column(
                    name=str(c["name"]),
                    kind=str(c["kind"]),
                    features=tuple(str(f) for f in c["features"]),
                    mean=float(c["mean"]),
                    scale=float(c["scale"]),
                    categories=tuple(str(v) for v in c["categories"]),
                    infrequent=tuple(str(v) for v in c.get("infrequent", ())),  # absent before pooling
                    missing_indicator=bool(c["missing_indicator"]),
                    clip=_optional_float(c.get("clip")),
                    lower=_optional_float(c.get("lower")),
                    upper=_optional_float(c.get("upper")),
                )
            )
        return cls(tuple(columns))

    # ------------------------------------------------------------------ Keras

    def inputs(self) -> dict[str, Any]:
        """One ``keras.Input`` per source column, keyed by the column's name.

        Numeric and boolean columns are float64 inputs (centred before the cast to float32).
        """
        out, used = {}, set()
        for c in self.columns:
            dtype = "string" if c.kind == "categorical" else "float64"
            # A layer name cannot hold "/"; "a/b" and "a_b" must still be two inputs.
            out[c.name] = keras.Input(shape=(1,), dtype=dtype, name=unique_name(c.name.replace("/", "_"), used))
        return out

    def encode_layers(self, inputs: Mapping[str, Any]):
        """The network's feature matrix from the raw inputs, in :attr:`features` order."""
        parts = []
        for i, c in enumerate(self.columns):
            if c.kind == "categorical":
                layer = CategoryEncoder(
                    [model_label(v) for v in c.categories],
                    missing_indicator=c.missing_indicator,
                    infrequent=bool(c.infrequent),
                    name=f"archguide_encode_{i}",
                )
            else:
                layer = NumericEncoder(
                    c.mean,
                    c.scale,
                    missing_indicator=c.missing_indicator,
                    clip=c.clip,
                    lower=c.lower,
                    upper=c.upper,
                    name=f"archguide_encode_{i}",
                )
            parts.append(layer(inputs[c.name]))
        if len(parts) == 1:
            return parts[0]
        return keras.layers.Concatenate(name="archguide_encoded")(parts)

    def encoder_model(self):
        """A Keras model: raw columns (a dict) -> the feature matrix."""
        inputs = self.inputs()
        with dict_keys_not_names():
            return keras.Model(inputs, self.encode_layers(inputs), name="archguide_encoder")

    def encode(self, raw: Mapping[str, np.ndarray], batch_size: int = 65_536) -> np.ndarray:
        """The feature matrix (float32) of raw inputs, computed by the encoding's Keras layers, in blocks."""
        encoder = self.encoder_model()
        n = len(next(iter(raw.values())))
        blocks = [
            keras.ops.convert_to_numpy(encoder({k: v[start : start + batch_size] for k, v in raw.items()}))
            for start in range(0, n, batch_size)
        ]
        return np.concatenate(blocks).astype(np.float32, copy=False)

    # ------------------------------------------------------------------ raw values

    def raw_inputs(self, table: Table, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The model's raw inputs from a table with these columns, in the same order.

        Numeric and boolean columns become float64 (NaN where missing);
        categorical columns become 1-D object arrays of strings (see
        :func:`model_label`), ``""`` where missing. The caller's data is only read.
        """
        encoded = table.encode(rows, dtype=np.float64)
        out = {}
        for j, c in enumerate(self.columns):
            if c.kind != "categorical":
                out[c.name] = encoded[:, j]
                continue
            labels = np.asarray([model_label(v) for v in table.categories.get(table.names[j], ())], dtype=object)
            codes = encoded[:, j]
            present = ~np.isnan(codes)
            column = np.full(len(codes), MISSING_LABEL, dtype=object)
            column[present] = labels[codes[present].astype(int)]
            out[c.name] = column
        return out

    def raw_frame(self, frame) -> dict[str, np.ndarray]:
        """The model's raw inputs from a DataFrame of these columns (by name), as :meth:`raw_inputs` gives them.

        For a dataset's batches, already checked (:func:`archguide.datasets.scan`): no typing, no
        validation, categories mapped label by distinct label rather than row by row.
        """
        import pandas as pd

        out = {}
        for c in self.columns:
            col = frame[c.name]
            if c.kind != "categorical":
                out[c.name] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            codes, labels = pd.factorize(col, use_na_sentinel=True)
            mapped = np.asarray([model_label(str(v)) for v in labels] + [MISSING_LABEL], dtype=object)
            out[c.name] = mapped[np.where(codes < 0, len(labels), codes)]
        return out

    def check_kinds(self, table: Table, argument: str = "X") -> None:
        """Raise DataError for a column whose type changed since fit (numbers <-> labels).

        Numeric and boolean are interchangeable (both are numbers); a column
        that is entirely missing fits any type.
        """
        changed = []
        for c, name in zip(self.columns, table.names):
            now = table.kinds[name]
            if (now == "categorical") != (c.kind == "categorical") and name not in table.missing_columns:
                changed.append(f"{name!r} ({c.kind} at fit, {now} now)")
        if changed:
            raise DataError(
                f"Columns of {argument} changed type since fit: {', '.join(changed[:5])}"
                f"{', ...' if len(changed) > 5 else ''}. Pass them with the types they had when the model was fitted."
            )


def check_pooling(min_frequency, max_categories) -> None:
    """Raise ConfigError unless ``min_frequency`` and ``max_categories`` are as :func:`infrequent_mask` takes them."""
    if min_frequency is not None:
        if isinstance(min_frequency, numbers.Integral) and not isinstance(min_frequency, bool):
            check_int("min_frequency", min_frequency)
        elif not (
            isinstance(min_frequency, numbers.Real) and not isinstance(min_frequency, bool) and 0 < min_frequency < 1
        ):
            raise ConfigError(
                "Received an invalid value for min_frequency, expected None, a count (an integer >= 1) or a "
                f"fraction of the rows (a number in (0, 1)). Received: min_frequency={min_frequency!r}"
            )
    check_int("max_categories", max_categories, allow_none=True)


def infrequent_mask(
    counts: np.ndarray, n_rows: int, min_frequency: int | float | None = None, max_categories: int | None = None
) -> np.ndarray:
    """Which categories, of ``counts`` rows each (of ``n_rows``), share the infrequent feature.

    As scikit-learn's ``OneHotEncoder``: a category is infrequent when it has
    fewer than ``min_frequency`` rows (a count), or fewer than
    ``min_frequency * n_rows`` (a fraction in (0, 1)); then, if more than
    ``max_categories`` features would remain, only the ``max_categories - 1``
    most frequent categories keep their own (the earlier category on a tie)
    and the rest join the infrequent one. Unlike scikit-learn, a column that
    already has at most ``max_categories`` categories is left whole.

    Args:
        counts: Rows of each category (missing values are not a category).
        n_rows: The rows the counts come from, missing values included.
        min_frequency: None, a count or a fraction.
        max_categories: None, or the most features a column becomes (its
            missing-value flag aside).

    Returns:
        A boolean mask over ``counts``: True for an infrequent category.
    """
    counts = np.asarray(counts)
    if min_frequency is None:
        pooled = np.zeros(counts.shape, dtype=bool)
    elif isinstance(min_frequency, numbers.Integral):
        pooled = counts < min_frequency
    else:
        pooled = counts < min_frequency * n_rows
    kept = int((~pooled).sum())
    if max_categories is not None and kept + bool(pooled.any()) > max_categories:
        # the most frequent first; on a tie, the earlier category
        frequent = [j for j in np.argsort(-counts, kind="stable") if not pooled[j]]
        pooled = np.ones(counts.shape, dtype=bool)
        pooled[frequent[: max_categories - 1]] = False
    return pooled
