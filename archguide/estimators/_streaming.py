"""Fitting and predicting from a dataset bigger than memory: Parquet files or a dask DataFrame, streamed.

A streamed fit reads the data twice before it trains, and once per epoch after:

1. :func:`archguide.datasets.open_dataset` checks the files' schemas (or the partitions) and counts
   the rows from the metadata; the validation rows are drawn by position
   (:func:`~archguide.datasets.validation_positions`: ``validation_fraction`` of the rows, at most
   :data:`~archguide.datasets.MAX_VALIDATION_ROWS`);
2. :func:`archguide.datasets.scan` reads every row once: the encoding's statistics (float64), the
   target's, the validation rows and a bounded sample to score on, stratified by class;
3. the network trains from a ``tf.data`` pipeline over the pieces (:class:`StreamedRows`): each epoch
   reads the row groups (or partitions) in a new order, encodes each batch with the model's own
   preprocessing layers (``Dataset.map``), and shuffles the rows through a buffer of
   :data:`SHUFFLE_ROWS`; the validation rows are never trained on.

The scores, the plan, the re-scoring, early stopping, the residual check and the sensitivity check
read the rows held in memory (the sample and the validation rows), so the fitted estimator and its
saved ``.keras`` file are the same kind of object as after a fit in memory.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from archguide._backend import import_keras
from archguide._checks import check_seed
from archguide.datasets import among, is_dataset, open_dataset, scan, target_values, validation_positions
from archguide.estimators._training import Prepared
from archguide.estimators.preprocessing import ColumnEncoding
from archguide.exceptions import DataError
from archguide.schema import format_names
from archguide.scoring.score import MIN_ROWS

keras = import_keras()

__all__ = ["SHUFFLE_ROWS", "StreamedRows", "predicted_batches", "streamed", "write_predictions"]

#: Rows of the shuffle buffer a streamed epoch passes through (after its pieces are read in a new order).
SHUFFLE_ROWS = 2**17


def streamed(estimator, X, y, target: str | None) -> Prepared:
    """Open, scan, encode and score a dataset for ``estimator.fit``; the training rows stay on disk."""
    source = open_dataset(X, y, target=target)
    if source.target is None:
        raise DataError(
            "fit needs the target of a dataset: name its column, fit(X, target='price') (or y='price'; with a dask "
            "DataFrame, y may also be a dask Series)."
        )
    if source.n_rows < MIN_ROWS:
        raise DataError(
            f"{type(estimator).__name__} needs at least {MIN_ROWS} rows (to score, train and validate). "
            f"{source.description} hold {source.n_rows}."
        )
    rng = check_seed(estimator.random_state)
    seeds = tuple(int(s) for s in rng.randint(2**31 - 1, size=4))  # split, scoring, model, re-scoring
    val = validation_positions(source.n_rows, estimator.validation_fraction, seeds[0])
    estimator._say(f"{source.description}: {source.n_rows:,} rows in {len(source.pieces)} pieces; reading them once")
    classes = estimator._task_family == "classification"
    found = scan(source, classes=classes, scaling=estimator.scaling, validation=val, seed=seeds[1])
    task = estimator._stream_target(found.target)
    encoding = ColumnEncoding.from_statistics(
        found.statistics,
        scaling=estimator.scaling,
        min_frequency=estimator.min_frequency,
        max_categories=estimator.max_categories,
    )
    X_sample = encode_frame(encoding, found.sample)
    estimator._say(
        f"{len(source.names)} columns -> {X_sample.shape[1]} features; scoring on a sample of {len(X_sample):,} rows"
    )
    scores = estimator._score(encoding, X_sample, estimator._y_score(found.sample_y), task, seeds[1])
    validation = (encode_frame(encoding, found.validation), estimator._y_net(found.validation_y))
    training = ~among(found.sample_positions, val)
    sample = (X_sample[training], estimator._y_net(found.sample_y[training]))
    estimator._data_summary = _summary(found, estimator)

    def rows(exclude):
        return StreamedRows(source, encoding, estimator._y_net, classes, exclude, sample)

    return Prepared(
        encoding, scores, task, seeds, rows(val), validation, val, lambda: rows(np.empty(0, dtype=np.int64)),
        len(source.names), np.asarray(source.names, dtype=object),
    )  # fmt: skip


def encode_frame(encoding: ColumnEncoding, frame: pd.DataFrame) -> np.ndarray:
    """The network's features (float32) of a frame of the dataset's columns."""
    if not len(frame):
        return np.zeros((0, len(encoding.features)), dtype=np.float32)
    return encoding.encode(encoding.raw_frame(frame))


def _summary(found, estimator) -> dict[str, Any]:
    """The run report's data summary, from the pass (what ``report._data_summary`` reads off a table)."""
    kinds = [s.kind for s in found.statistics.values()]
    summary: dict[str, Any] = {
        "rows": found.n_rows,
        "columns": len(kinds),
        "kinds": {kind: kinds.count(kind) for kind in sorted(set(kinds))},
        "missing": {str(c): int(n) for c, n in found.missing.items()},
    }
    if hasattr(estimator, "classes_"):
        summary["target"] = {"classes": {str(c): int(found.target.get(c, 0)) for c in estimator.classes_.tolist()}}
    else:
        m = found.target
        summary["target"] = {"mean": m.mean, "std": m.std, "min": m.minimum, "max": m.maximum}
    return summary


class StreamedRows:
    """The training rows of a dataset, read from its pieces each epoch (as :class:`~._training.ArrayRows`).

    Args:
        source: The opened dataset (with its target).
        encoding: The fitted encoding; its Keras layers encode each batch inside the pipeline.
        y_net: Labels or values -> the network's target.
        classes: Whether the target holds class labels.
        exclude: Positions never trained on (the validation rows; sorted).
        sample: ``(X, y)`` of training rows held in memory, for the residual and sensitivity checks.
    """

    def __init__(self, source, encoding, y_net, classes: bool, exclude: np.ndarray, sample):
        self.source, self.encoding, self._y_net, self.classes = source, encoding, y_net, classes
        self.exclude, self._sample = exclude, sample
        self.n = source.n_rows - len(exclude)
        self.failure: DataError | None = None

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        return self._sample

    def chunks(self, order) -> Any:
        """``(raw inputs, network target)`` of each batch of the pieces in ``order``, validation rows left out."""
        columns = [*self.source.names, self.source.target]
        for index in order:
            for position, frame in self.source.batches(self.source.pieces[index], columns):
                keep = ~among(position + np.arange(len(frame)), self.exclude)
                if not keep.all():
                    frame = frame[keep]
                if not len(frame):
                    continue
                raw = {k: v[:, None] for k, v in self.encoding.raw_frame(frame).items()}
                yield raw, self._y_net(target_values(frame[self.source.target], self.classes))

    def fit_arguments(self, batch_size: int, seed: int) -> dict[str, Any]:
        """A repeated ``tf.data`` pipeline of one pass over the training rows per epoch, for ``Model.fit``.

        Each epoch reads the pieces in a new order (seeded by ``seed`` and the epoch), encodes each batch
        with the encoding's layers (``Dataset.map``, in parallel) and shuffles rows through a buffer of
        :data:`SHUFFLE_ROWS` rows: every training row once an epoch, no validation row ever.
        """
        import tensorflow as tf

        epochs = itertools.count()

        def generate():
            order = np.random.RandomState([seed, next(epochs)]).permutation(len(self.source.pieces))
            try:
                yield from self.chunks(order)
            except DataError as exc:  # raised again by the estimator, once Keras has stopped
                self.failure = exc
                raise

        encoder = self.encoding.encoder_model()
        inputs = {
            c.name: tf.TensorSpec((None, 1), tf.string if c.kind == "categorical" else tf.float64)
            for c in self.encoding.columns
        }
        y_dtype = tf.as_dtype(self._sample[1].dtype)
        rows = tf.data.Dataset.from_generator(generate, output_signature=(inputs, tf.TensorSpec((None,), y_dtype)))
        rows = rows.map(lambda raw, y: (encoder(raw), y), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        rows = rows.unbatch().shuffle(SHUFFLE_ROWS, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        return {
            "x": rows.repeat().prefetch(tf.data.AUTOTUNE),
            "steps_per_epoch": math.ceil(self.n / batch_size),
            "shuffle": False,
        }


def predicted_batches(estimator, X, keep: tuple[str, ...] = ()):
    """``(the model's outputs, the ``keep`` columns)`` of each batch of a dataset, in the dataset's order.

    The model's columns are read by name (others, such as the target or an id, are left alone; ``keep``
    names those wanted beside the predictions).
    """
    estimator._check_fitted()
    names = list(estimator.encoding_.names)
    if getattr(estimator, "feature_names_in_", None) is None:
        raise DataError(
            f"This {type(estimator).__name__} was fitted on an array without column names; a dataset's columns are "
            f"read by name. Fit it on a DataFrame or a dataset (names {format_names(names)} were given to the array's "
            "columns)."
        )
    source = open_dataset(X, columns=[*names, *[k for k in keep if k not in names]])
    for piece in source.pieces:
        for _, frame in source.batches(piece, source.names):
            yield estimator._forward(frame[names]), frame[list(keep)]


def write_predictions(estimator, X, path, *, id_column: str | None = None) -> int:
    """Predict every row of ``X`` and write the predictions to ``path``, batch by batch.

    Memory stays bounded whatever the row count: each batch is predicted and written before the next
    is read. The format comes from the extension: Parquet (``.parquet``, ``.pq``) or CSV (any other).
    The file is written all or nothing (a failed run leaves an existing ``path`` as it was).

    Args:
        estimator: A fitted :class:`~archguide.ImportanceGuidedRegressor` or
            :class:`~archguide.ImportanceGuidedClassifier` (from ``fit`` or :func:`~archguide.load`).
        X: A table in memory, or a dataset as ``fit`` takes it (Parquet files, a dask DataFrame).
        path: Where to write. Columns: ``id_column`` first (when given), ``prediction``, and for a
            classifier one probability column per class, ``proba_<class>``.
        id_column: A column of ``X`` written beside the predictions, as the row key.

    Returns:
        The number of rows written.

    Raises:
        DataError: as ``predict``; ``id_column`` is not a column of ``X``.
    """
    from pathlib import Path

    from archguide._files import write_files

    keep = (id_column,) if id_column else ()
    if not is_dataset(X):
        frame = X if isinstance(X, pd.DataFrame) else None
        if id_column and (frame is None or id_column not in frame.columns):
            raise DataError(f"id_column {id_column!r} is not a column of X.")
        batches = [
            (estimator._forward(frame.drop(columns=list(keep)) if keep else X), frame[list(keep)] if keep else None)
        ]
    else:
        batches = predicted_batches(estimator, X, keep)
    parquet = Path(path).suffix.lower() in (".parquet", ".pq")
    written = [0]

    def write(target):
        writer = None
        try:
            for out, kept in batches:
                table = _prediction_frame(estimator, out, kept)
                if parquet:
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    arrow = pa.Table.from_pandas(table, preserve_index=False)
                    writer = writer or pq.ParquetWriter(target, arrow.schema)
                    writer.write_table(arrow)
                else:
                    table.to_csv(target, mode="a" if written[0] else "w", header=not written[0], index=False)
                written[0] += len(table)
        finally:
            if writer is not None:
                writer.close()

    write_files([(str(path), write)])
    return written[0]


def _prediction_frame(estimator, out: np.ndarray, kept) -> pd.DataFrame:
    if hasattr(estimator, "classes_"):
        proba = out.astype(np.float64)  # as predict_proba computes it
        proba = proba if proba.shape[1] > 1 else np.hstack([1.0 - proba, proba])
        frame = pd.DataFrame({"prediction": estimator.classes_[np.argmax(proba, axis=1)]})
        frame = pd.concat([frame, pd.DataFrame(proba, columns=[f"proba_{c}" for c in estimator.classes_])], axis=1)
    else:
        frame = pd.DataFrame({"prediction": out[:, 0].astype(np.float64)})
    if kept is not None and len(kept.columns):
        for i, column in enumerate(kept.columns):
            frame.insert(i, column, kept[column].to_numpy())
    return frame
