"""Tables bigger than memory: Parquet datasets and dask DataFrames, read piece by piece.

A *dataset* is what the estimators take besides a table in memory: a directory of Parquet files, a
list of Parquet files or a ``pyarrow.dataset.Dataset`` (read with :mod:`pyarrow.dataset`), or a
``dask.dataframe.DataFrame``. :func:`open_dataset` checks it once and returns a :class:`Source`:
its columns, their kinds (from the files' schema or the frame's dtypes) and its *pieces* (a row
group of a file, a partition of a frame), each with its row count and the position of its first
row, so that every row has a position that does not depend on the order pieces are read in.

:func:`scan` reads every row once, in float64, and gathers what a fit needs before it trains: each
column's statistics (:class:`~archguide.estimators.preprocessing.ColumnStatistics`: count, mean,
spread, extremes, category counts, gaps), the target's, a bounded sample of rows to score on
(stratified by class), a uniform sample of the numbers for robust scaling's quantiles, and the
validation rows, chosen by position before the pass. Memory stays bounded whatever the row count:
at most ``SAMPLE_ROWS + QUANTILE_ROWS + MAX_VALIDATION_ROWS`` rows and one piece's batch are held
(the category counts aside, one entry per distinct label).

No Keras here: the training pipeline over the pieces is
:mod:`archguide.estimators._streaming`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from archguide._statistics import QUANTILES, ColumnStatistics
from archguide.exceptions import DataError
from archguide.schema import Table, as_table, format_names

__all__ = [
    "MAX_VALIDATION_ROWS",
    "Piece",
    "QUANTILE_ROWS",
    "SAMPLE_ROWS",
    "Scan",
    "Source",
    "among",
    "is_dataset",
    "open_dataset",
    "parquet_files",
    "scan",
    "target_values",
    "validation_positions",
]

#: Rows of the sample the features are scored on (the scorer fits its forest on at most 3,000).
SAMPLE_ROWS = 10_000
#: Rows of the uniform sample robust scaling's quantiles are taken from (exact below it).
QUANTILE_ROWS = 200_000
#: The most validation rows a streamed fit holds out (``validation_fraction`` of the rows, up to this).
MAX_VALIDATION_ROWS = 50_000
#: The most rows read from a piece at once.
BATCH_ROWS = 65_536
#: Distinct labels of a classifier's target past which it is taken for a continuous one.
_MAX_CLASSES = 10_000


def is_dataset(X) -> bool:
    """Whether ``X`` is a dataset to stream (a path, a list of paths, a pyarrow Dataset, a dask DataFrame)."""
    if isinstance(X, (str, os.PathLike)):
        return True
    if isinstance(X, (list, tuple)) and X and all(isinstance(x, (str, os.PathLike)) for x in X):
        return True
    module = type(X).__module__
    return isinstance(X, Source) or module.startswith(("pyarrow._dataset", "pyarrow.dataset")) or _is_dask_frame(X)


def _is_dask_frame(X) -> bool:
    return type(X).__module__.startswith("dask") and hasattr(X, "npartitions") and hasattr(X, "columns")


@dataclass(frozen=True)
class Piece:
    """One piece of a dataset: a row group of a file, or a partition.

    Attributes:
        index: Its place in :attr:`Source.pieces`.
        label: How messages name it (``"file 'a.parquet', row group 3"``).
        n_rows: Its rows, as the metadata said when the dataset was opened.
        start: The position of its first row in the dataset.
    """

    index: int
    label: str
    n_rows: int
    start: int


@dataclass
class Source:
    """A dataset opened for reading (see :func:`open_dataset`).

    Attributes:
        names: The feature columns, in the dataset's order (the target left out).
        kinds: Column -> ``"numeric"``, ``"boolean"`` or ``"categorical"`` (None: missing in every
            file's schema, typed by its values).
        target: The target column's name, or None (prediction).
        pieces: Every piece, in order.
        description: What the dataset is, for messages (``"3 Parquet files in 'data/'"``).
    """

    names: list[str]
    kinds: dict[str, str | None]
    target: str | None
    pieces: list[Piece]
    description: str

    @property
    def n_rows(self) -> int:
        return sum(p.n_rows for p in self.pieces)

    def batches(self, piece: Piece, columns: Sequence[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
        """``(position of the first row, frame)`` of at most :data:`BATCH_ROWS` rows, over ``piece``.

        ``columns`` defaults to the features and the target. Raises DataError if the piece no longer
        holds the rows it held when the dataset was opened.
        """
        raise NotImplementedError

    def _changed(self, piece: Piece, what: str) -> DataError:
        return DataError(
            f"The dataset changed while it was read: {piece.label} {what}. Keep {self.description} unchanged "
            "during a fit or a prediction (write a new dataset next to it instead)."
        )


# --------------------------------------------------------------------------- Parquet


def _arrow_kind(arrow_type, name: str, where: str) -> str | None:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        return "categorical"
    if t.is_boolean(arrow_type):
        return "boolean"
    if t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return "numeric"
    if (
        t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or getattr(t, "is_string_view", t.is_string)(arrow_type)
    ):
        return "categorical"
    if t.is_null(arrow_type):
        return None
    if t.is_temporal(arrow_type):
        raise DataError(
            f"Column {name!r} of {where} has type {arrow_type}, which archguide does not encode. Convert it to numbers "
            "first (for example days since a date, or its year and month)."
        )
    raise DataError(
        f"Column {name!r} of {where} has type {arrow_type}, which archguide does not encode (numbers, booleans and "
        "strings are). Expand nested values into one column per value first."
    )


class _ParquetSource(Source):
    def __init__(self, readers, names, kinds, target, pieces, description, stamps):
        super().__init__(names, kinds, target, pieces, description)
        self._readers = readers  # piece index -> (fragment of one row group, path)
        self._stamps = stamps  # path -> (size, mtime_ns) when opened

    def batches(self, piece, columns=None):
        fragment, path = self._readers[piece.index]
        columns = list(columns) if columns is not None else self.names + ([self.target] if self.target else [])
        try:
            stat = os.stat(path)
        except OSError:
            raise self._changed(piece, "is gone") from None
        if (stat.st_size, stat.st_mtime_ns) != self._stamps[path]:
            raise self._changed(piece, "was rewritten")
        position, seen = piece.start, 0  # every file holds every column read (_agreed_schema)
        for batch in fragment.to_batches(columns=columns, batch_size=BATCH_ROWS, use_threads=False):
            frame = batch.to_pandas()
            yield position, frame
            position += len(frame)
            seen += len(frame)
        if seen != piece.n_rows:
            raise self._changed(piece, f"held {piece.n_rows} rows and now holds {seen}")


def parquet_files(X, argument: str) -> tuple[list[str], str]:
    """The Parquet files a path, a list of paths or a pyarrow Dataset names, and how to describe them."""
    if isinstance(X, (str, os.PathLike)):
        path = Path(X)
        if not path.exists():
            raise DataError(
                f"{argument}: {str(path)!r} does not exist (expected a Parquet file or a directory of them)."
            )
        if path.is_file():
            return [str(path)], f"the Parquet file {str(path)!r}"
        files = sorted(
            str(p)
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not files:
            raise DataError(f"{argument}: the directory {str(path)!r} holds no data files (an empty dataset).")
        return files, f"the {len(files)} Parquet file{'s' if len(files) > 1 else ''} in {str(path)!r}"
    if isinstance(X, (list, tuple)):
        missing = [str(x) for x in X if not Path(x).is_file()]
        if missing:
            raise DataError(
                f"{argument} is a list of paths, read as Parquet files; {format_names(missing)} "
                f"{'is not a file' if len(missing) == 1 else 'are not files'}. (For a table in memory pass a 2-D "
                "array or a DataFrame.)"
            )
        return [str(x) for x in X], f"the {len(X)} Parquet files listed"
    files = list(getattr(X, "files", None) or [])  # a pyarrow FileSystemDataset
    if getattr(X, "files", None) is None:
        raise DataError(
            f"{argument} is a pyarrow {type(X).__name__}; archguide streams datasets of Parquet files "
            "(pyarrow.dataset.dataset('dir/', format='parquet')). For a table in memory pass X.to_table().to_pandas()."
        )
    if not files:
        raise DataError(f"{argument} is a pyarrow dataset of no files (an empty dataset).")
    return files, f"the pyarrow dataset of {len(files)} files"


def _open_parquet(X, target: str | None, argument: str, columns=None) -> Source:
    try:
        import pyarrow.dataset as ds
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the parquet extra
        raise DataError(f"Reading {argument} as Parquet needs pyarrow: pip install 'archguide[parquet]'.") from None
    files, description = parquet_files(X, argument)
    schemas, fragments = {}, {}
    for path in files:
        try:
            fragment = next(iter(ds.dataset(path, format="parquet").get_fragments()))
            schemas[path] = fragment.physical_schema
        except (OSError, ValueError, StopIteration) as exc:
            raise DataError(f"{argument}: could not read {path!r} as Parquet: {exc}") from None
        fragments[path] = fragment
    names, kinds = _agreed_schema(schemas, target, argument, columns)
    stamps = {p: (stat.st_size, stat.st_mtime_ns) for p, stat in ((p, os.stat(p)) for p in files)}
    pieces, readers, start = [], {}, 0
    for path in files:
        for group in fragments[path].split_by_row_group():
            n = sum(g.num_rows for g in group.row_groups)
            if n == 0:
                continue
            piece = Piece(len(pieces), f"file {path!r}, row group {group.row_groups[0].id}", n, start)
            readers[piece.index] = (group, path)
            pieces.append(piece)
            start += n
    if not pieces:
        raise DataError(f"{argument}: {description} hold no rows (an empty dataset).")
    return _ParquetSource(readers, names, kinds, target, pieces, description, stamps)


def _agreed_schema(schemas: dict, target: str | None, argument: str, columns: Sequence[str] | None = None):
    """The columns and kinds every file agrees on; DataError naming the file and the column otherwise.

    With ``columns`` (prediction), only those are read: every file needs them, other columns may differ.
    """
    first_path, first = next(iter(schemas.items()))
    order = [str(n) for n in first.names] if columns is None else [*columns, *([target] if target else [])]
    kinds: dict[str, str | None] = {}
    where: dict[str, str] = {}
    for path, schema in schemas.items():
        present = [str(n) for n in schema.names]
        if target is not None and target not in present:
            raise DataError(
                f"{argument}: the target column {target!r} is missing from {path!r}"
                + (
                    f" (columns: {format_names(present, limit=10)})."
                    if path == first_path
                    else ", which other files have."
                )
            )
        lacks = [c for c in order if c not in present]
        extra = [c for c in present if c not in order] if columns is None else []
        if lacks or extra:
            what = "; ".join(
                ([f"lacks {format_names(lacks)}"] if lacks else [])
                + ([f"has {format_names(extra)} too"] if extra else [])
            )
            against = f", against {first_path!r}" if columns is None else " (the model's columns)"
            raise DataError(
                f"{argument}: the files' schemas disagree: {path!r} {what}{against}. Every file of a dataset needs "
                "the same columns."
            )
        for name in order:
            arrow_type = schema.field(name).type
            kind = _arrow_kind(arrow_type, name, repr(path))
            known = kinds.get(name)
            if kind is not None and known is not None and kind != known:
                other = where[name]
                raise DataError(
                    f"{argument}: column {name!r} changes type between files: {schemas[other].field(name).type} in "
                    f"{other!r}, {arrow_type} in {path!r}. Write it with one type in every file."
                )
            if known is None and kind is not None:
                kinds[name], where[name] = kind, path
    names = [c for c in order if c != target]
    if not names:
        raise DataError(f"{argument} has no feature columns (only the target {target!r}).")
    return names, {n: kinds.get(n) for n in names}


# --------------------------------------------------------------------------- dask


class _DaskSource(Source):
    def __init__(self, frame, y, names, kinds, target, pieces, description):
        super().__init__(names, kinds, target, pieces, description)
        self._frame, self._y = frame, y

    def batches(self, piece, columns=None):
        import dask

        columns = list(columns) if columns is not None else self.names + ([self.target] if self.target else [])
        features = [c for c in columns if c != self.target or self._y is None]
        if self._y is not None and self.target in columns:
            part, y = dask.compute(self._frame.partitions[piece.index][features], self._y.partitions[piece.index])
            part = part.assign(**{self.target: np.asarray(y)}) if len(y) == len(part) else None
        else:
            part = self._frame.partitions[piece.index][features].compute()
        if part is None or len(part) != piece.n_rows:
            raise self._changed(
                piece, f"held {piece.n_rows} rows and now holds {'other' if part is None else len(part)}"
            )
        part = part.reset_index(drop=True)
        for start in range(0, len(part), BATCH_ROWS):
            yield piece.start + start, part.iloc[start : start + BATCH_ROWS][columns]


def _open_dask(frame, y, target: str | None, argument: str, columns=None) -> Source:
    import dask

    wanted, columns = columns, [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise DataError(f"{argument} has duplicate column names; feature names must be unique.")
    y_series = None
    if y is not None and not isinstance(y, str):
        if not (type(y).__module__.startswith("dask") and hasattr(y, "npartitions")):
            raise DataError(
                f"With a dask DataFrame {argument}, y is a column name or a dask Series with the same partitions. "
                f"Received {type(y).__name__}."
            )
        if y.npartitions != frame.npartitions:
            raise DataError(
                f"y has {y.npartitions} partitions and {argument} {frame.npartitions}: a dask y needs the same "
                "partitions."
            )
        y_series, target = y, str(y.name) if y.name is not None else "y"
        if target in columns:
            raise DataError(f"y is named {target!r}, which is also a column of {argument}; rename one of them.")
    elif target is not None and target not in columns:
        raise DataError(
            f"{argument}: the target column {target!r} is not a column (columns: {format_names(columns, 10)})."
        )
    if wanted is not None:
        lacks = [c for c in wanted if c not in columns]
        if lacks:
            raise DataError(f"{argument} lacks the model's columns {format_names(lacks)}.")
    names = [c for c in (wanted or columns) if c != target or y_series is not None]
    if not names:
        raise DataError(f"{argument} has no feature columns (only the target {target!r}).")
    dtypes = dict(zip(columns, frame.dtypes))
    kinds = {n: _dtype_kind(dtypes[n], n, argument) for n in names}
    (lengths,) = dask.compute(frame.map_partitions(len))
    pieces, start = [], 0
    for i, n in enumerate(int(v) for v in np.asarray(lengths)):
        if n:
            pieces.append(Piece(i, f"partition {i}", n, start))
            start += n
    if not pieces:
        raise DataError(f"{argument} is a dask DataFrame with no rows (an empty dataset).")
    return _DaskSource(
        frame, y_series, names, kinds, target, pieces, f"the dask DataFrame of {frame.npartitions} partitions"
    )


def _dtype_kind(dtype, name: str, argument: str) -> str | None:
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(dtype):
        return "categorical"
    if ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype):
        return "numeric"
    if ptypes.is_object_dtype(dtype):
        return None  # typed by its values, as a column in memory
    raise DataError(
        f"Column {name!r} of {argument} has dtype {dtype}, which archguide does not encode. Convert it to numbers "
        "first (for example days since a date)."
    )


def open_dataset(X, y=None, *, target: str | None = None, columns=None, argument: str = "X") -> Source:
    """Check a dataset and list its pieces (nothing but the files' footers, or the partitions' lengths, is read).

    Args:
        X: A directory of Parquet files (files whose names start with ``.`` or ``_`` are left out, as
            pyarrow and Spark do), a Parquet file, a list of Parquet files, a ``pyarrow.dataset.Dataset``
            of Parquet files, or a ``dask.dataframe.DataFrame``. A :class:`Source` is returned as it is.
        y: The target: a column name (as ``target``), or with a dask ``X`` a dask Series with the
            same partitions. None at prediction.
        target: The target column's name (the same as passing it as ``y``).
        columns: Read these columns only (prediction: the model's); other columns may differ between
            files. None: every column but the target, the same in every file.
        argument: The argument's name, for messages.

    Raises:
        DataError: a path that does not exist, an empty dataset, files whose schemas disagree or
            whose column types change between them (both named), a target some file lacks, a
            column type archguide does not encode.
    """
    if isinstance(X, Source):  # opened already (the command line chooses the columns itself)
        if y is not None or target is not None:
            raise DataError("An opened dataset carries its target; pass neither y nor target with it.")
        return X
    if y is not None and target is not None:
        raise DataError(f"Pass the target once: y={y!r} or target={target!r}, not both.")
    if isinstance(y, str):
        y, target = None, y
    if _is_dask_frame(X):
        return _open_dask(X, y, target, argument, columns)
    if y is not None:
        raise DataError(
            f"With a Parquet dataset {argument}, name the target column (target='price'); received y of type "
            f"{type(y).__name__}."
        )
    return _open_parquet(X, target, argument, columns)


# --------------------------------------------------------------------------- the pass


class _Reservoir:
    """A uniform sample without replacement of at most ``size`` rows: the rows of the smallest random keys."""

    def __init__(self, size: int):
        self.size = size
        self.keys = np.empty(0)
        self.positions = np.empty(0, dtype=np.int64)
        self.parts: list = []

    def offer(self, keys: np.ndarray, positions: np.ndarray, rows) -> None:
        """Offer rows (a frame or an array, one key each); keeps the ``size`` smallest keys."""
        if len(self.keys) >= self.size:
            chosen = np.flatnonzero(keys < self.threshold)
            if not len(chosen):
                return
            keys, positions = keys[chosen], positions[chosen]
            rows = rows.iloc[chosen] if isinstance(rows, pd.DataFrame) else rows[chosen]
        self.keys = np.concatenate([self.keys, keys])
        self.positions = np.concatenate([self.positions, positions])
        self.parts.append(rows)
        if len(self.keys) > 2 * self.size:
            self._trim()

    @property
    def threshold(self) -> float:
        return float(np.partition(self.keys, self.size - 1)[self.size - 1]) if len(self.keys) >= self.size else 1.0

    def _trim(self) -> None:
        data = _concat(self.parts)
        keep = np.sort(np.argsort(self.keys, kind="stable")[: self.size])
        self.keys, self.positions = self.keys[keep], self.positions[keep]
        self.parts = [data.iloc[keep] if isinstance(data, pd.DataFrame) else data[keep]]

    def taken(self, size: int | None = None):
        """``(positions, rows)`` of the sample (of its ``size`` smallest keys), in position order."""
        self._trim()  # one part left
        data = self.parts[0]
        keep = np.argsort(self.keys, kind="stable")[: self.size if size is None else size]
        keep = keep[np.argsort(self.positions[keep], kind="stable")]
        return self.positions[keep], data.iloc[keep] if isinstance(data, pd.DataFrame) else data[keep]


def _concat(parts):
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


@dataclass
class _Moments:
    """Count, mean and sum of squared deviations, merged piece by piece (Chan et al.) in float64."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = np.inf
    maximum: float = -np.inf

    def add(self, values: np.ndarray) -> None:
        if not values.size:
            return
        n, mean = values.size, float(values.mean())
        m2 = float(np.square(values - mean).sum())
        delta, total = mean - self.mean, self.n + n
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total
        self.minimum, self.maximum = min(self.minimum, float(values.min())), max(self.maximum, float(values.max()))

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.n)) if self.n else 0.0


@dataclass
class Scan:
    """What one pass over a dataset found (see :func:`scan`).

    Attributes:
        n_rows: Rows read.
        statistics: Column -> :class:`~archguide.estimators.preprocessing.ColumnStatistics`.
        kinds: Column -> kind, as the values showed where the schema did not say.
        target: The target's moments (regression) or its labels' counts (classes).
        sample, sample_y, sample_positions: The rows to score on (at most ``SAMPLE_ROWS``, drawn by
            class in proportion for classes, at least two of each class that has them), their
            targets and positions, in position order.
        validation, validation_y, validation_positions: The validation rows, their targets and positions.
        missing: Column -> rows where it was missing (the columns with gaps).
    """

    n_rows: int
    statistics: dict
    kinds: dict
    target: _Moments | dict
    sample: pd.DataFrame
    sample_y: np.ndarray
    sample_positions: np.ndarray
    validation: pd.DataFrame
    validation_y: np.ndarray
    validation_positions: np.ndarray
    missing: dict = field(default_factory=dict)


def among(positions: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Which of ``positions`` are in ``chosen`` (sorted): a boolean mask."""
    if not len(chosen):
        return np.zeros(len(positions), dtype=bool)
    where = np.minimum(np.searchsorted(chosen, positions), len(chosen) - 1)
    return chosen[where] == positions


def validation_positions(n_rows: int, fraction: float, seed: int) -> np.ndarray:
    """The validation rows of a streamed fit: ``fraction`` of ``n_rows``, at most ``MAX_VALIDATION_ROWS``,
    at positions drawn with ``seed`` (sorted)."""
    n_val = min(MAX_VALIDATION_ROWS, max(1, int(round(fraction * n_rows))))
    return np.sort(np.random.RandomState(seed).choice(n_rows, n_val, replace=False))


def scan(source: Source, *, classes: bool, scaling: str, validation: np.ndarray, seed: int) -> Scan:
    """One pass over every row of ``source``: statistics, samples and the validation rows.

    Args:
        source: From :func:`open_dataset`, with a target.
        classes: Whether the target holds class labels (counted) or numbers (moments).
        scaling: ``"robust"`` keeps a uniform sample of the numbers for the quantiles.
        validation: The validation rows' positions (sorted; :func:`validation_positions`).
        seed: Seed of the samples.

    Raises:
        DataError: what a table in memory would be refused for (infinite values, a value beyond
            float32, a column entirely missing, a missing target, labels where numbers are needed),
            named with the piece it is in; a column whose values change kind between pieces.
    """
    state = _ScanState(source, classes=classes, scaling=scaling, validation=validation)
    for piece in source.pieces:
        for position, frame in source.batches(piece):
            state.add(piece, position, frame, np.random.RandomState([seed, piece.index, position - piece.start]))
    return state.result()


class _ScanState:
    def __init__(self, source: Source, *, classes: bool, scaling: str, validation: np.ndarray):
        self.source, self.classes, self.validation = source, classes, validation
        self.kinds = dict(source.kinds)
        self.moments = {n: _Moments() for n in source.names}
        self.counts: dict[str, dict[str, int]] = {n: {} for n in source.names}
        self.missing = dict.fromkeys(source.names, 0)
        self.n_rows = 0
        self.target = {} if classes else _Moments()
        self.samples: dict = {}  # class label (or None) -> _Reservoir of (features + target) rows
        self.numbers = _Reservoir(QUANTILE_ROWS) if scaling == "robust" else None
        self.held: list[tuple[np.ndarray, pd.DataFrame]] = []

    def add(self, piece: Piece, position: int, frame: pd.DataFrame, rng: np.random.RandomState) -> None:
        names, target = self.source.names, self.source.target
        X, y = frame[names], frame[target]
        table = _checked(X, piece, self.kinds)
        encoded = table.encode(dtype=np.float64)
        positions = position + np.arange(len(frame))
        y_values = _checked_target(y, piece, positions, self.classes)
        self.n_rows += len(frame)
        numeric = []
        for j, name in enumerate(names):
            values = encoded[:, j]
            present = ~np.isnan(values)
            self.missing[name] += int((~present).sum())
            if self.kinds[name] == "categorical":
                labels = table.categories[name]
                codes, counts = np.unique(values[present].astype(int), return_counts=True)
                seen = self.counts[name]
                for code, count in zip(codes, counts):
                    seen[labels[code]] = seen.get(labels[code], 0) + int(count)
            else:
                self.moments[name].add(values[present])
                numeric.append(j)
        self._add_target(y_values)
        keys = rng.random_sample(len(frame))
        if self.numbers is not None and numeric:
            self.numbers.offer(keys, positions, encoded[:, numeric])
        rows = X.assign(**{"\0target": y_values}).reset_index(drop=True)
        for label in pd.unique(y_values) if self.classes else [None]:
            chosen = np.flatnonzero(y_values == label) if self.classes else np.arange(len(frame))
            self.samples.setdefault(label, _Reservoir(SAMPLE_ROWS)).offer(
                keys[chosen], positions[chosen], rows.iloc[chosen]
            )
        inside = np.flatnonzero(among(positions, self.validation))
        if len(inside) or not self.held:  # an empty first part keeps the columns, should no row be held
            self.held.append((positions[inside], rows.iloc[inside]))

    def _add_target(self, y_values: np.ndarray) -> None:
        if not self.classes:
            self.target.add(y_values.astype(np.float64))
            return
        try:
            labels, counts = np.unique(y_values, return_counts=True)
        except TypeError:
            types = sorted({type(v).__name__ for v in y_values})
            raise DataError(
                f"y mixes labels of types {types}: labels of one type are needed (for example all strings)."
            ) from None
        for label, count in zip(labels.tolist(), counts):
            self.target[label] = self.target.get(label, 0) + int(count)
        if len(self.target) > _MAX_CLASSES:
            raise DataError(
                f"y has more than {_MAX_CLASSES:,} distinct labels: it looks like continuous values, not classes. "
                "For a continuous target use ImportanceGuidedRegressor."
            )

    def result(self) -> Scan:
        empty = [n for n in self.source.names if self.missing[n] == self.n_rows]
        if empty:
            raise DataError(
                f"Columns {format_names(empty)} of {self.source.description} are entirely missing. Drop them or fill "
                "them in; a column needs at least one value."
            )
        quantiles = {}
        if self.numbers is not None and self.numbers.parts:  # no number column: nothing was offered
            _, numbers = self.numbers.taken()
            numeric = [n for n in self.source.names if self.kinds[n] != "categorical"]
            for j, name in enumerate(numeric):
                present = numbers[:, j][~np.isnan(numbers[:, j])]
                if present.size and self.kinds[name] == "numeric":
                    quantiles[name] = tuple(float(q) for q in np.quantile(present, QUANTILES))
        statistics = {}
        for name in self.source.names:
            if self.kinds[name] == "categorical":
                statistics[name] = ColumnStatistics.categorical(self.n_rows, self.counts[name])
                continue
            m = self.moments[name]
            statistics[name] = ColumnStatistics(
                self.kinds[name], self.n_rows, m.n < self.n_rows, n_present=m.n, mean=m.mean, std=m.std,
                minimum=m.minimum, maximum=m.maximum, quantiles=quantiles.get(name),
            )  # fmt: skip
        sample, sample_y, sample_positions = self._sample()
        held_positions = np.concatenate([p for p, _ in self.held])  # a part from the first batch at least
        held = pd.concat([r for _, r in self.held], ignore_index=True)
        return Scan(
            self.n_rows, statistics, self.kinds, self.target, sample[self.source.names], sample_y, sample_positions,
            held[self.source.names], held["\0target"].to_numpy(), held_positions,
            {n: k for n, k in self.missing.items() if k},
        )  # fmt: skip

    def _sample(self):
        """The scoring sample: every class in proportion to its rows (at least two where it has them)."""
        if not self.classes:
            positions, rows = self.samples[None].taken()
        else:
            sizes = {c: max(min(2, n), int(round(SAMPLE_ROWS * n / self.n_rows))) for c, n in self.target.items()}
            parts = [self.samples[c].taken(sizes[c]) for c in sorted(self.samples, key=str)]
            positions = np.concatenate([p for p, _ in parts])
            rows = pd.concat([r for _, r in parts], ignore_index=True)
            order = np.argsort(positions, kind="stable")
            positions, rows = positions[order], rows.iloc[order].reset_index(drop=True)
        return rows.drop(columns=["\0target"]), rows["\0target"].to_numpy(), positions


def _checked(X: pd.DataFrame, piece: Piece, kinds: dict) -> Table:
    """The batch as a validated table (what ``as_table`` refuses in memory, refused here with the piece named)."""
    try:
        table = as_table(X, argument=piece.label, allow_missing_columns=True)
    except DataError as exc:
        raise DataError(f"{exc} (in {piece.label})") from None
    for name in table.names:
        now = table.kinds[name]
        if name in table.missing_columns:
            continue
        if kinds.get(name) is None:
            kinds[name] = now
        elif now != kinds[name]:
            raise DataError(
                f"Column {name!r} holds {now} values in {piece.label}, {kinds[name]} values before. A column needs one "
                "type in every file (or partition)."
            )
    return table


def target_values(y: pd.Series, classes: bool) -> np.ndarray:
    """A batch's target as an array: class labels as they are (strings as objects), numbers as float64."""
    if not classes:
        return y.to_numpy(dtype=np.float64)
    return y.to_numpy() if ptypes.is_numeric_dtype(y.dtype) else y.astype("object").to_numpy()


def _checked_target(y: pd.Series, piece: Piece, positions: np.ndarray, classes: bool) -> np.ndarray:
    missing = y.isna().to_numpy()
    if missing.any():
        where = positions[np.flatnonzero(missing)[:5]].tolist()
        raise DataError(
            f"The target {y.name!r} has {int(missing.sum())} missing values in {piece.label} (rows {where} of the "
            "dataset); drop those rows or fill them in: the target cannot be missing."
        )
    if classes:
        return target_values(y, classes)
    if not (ptypes.is_numeric_dtype(y.dtype) or ptypes.is_bool_dtype(y.dtype)):
        raise DataError(
            f"The target {y.name!r} holds values of dtype {y.dtype} in {piece.label}: a regressor needs numbers. For "
            "class labels use ImportanceGuidedClassifier."
        )
    values = target_values(y, classes)
    if not np.all(np.isfinite(values)):
        raise DataError(f"The target {y.name!r} has values that are not finite in {piece.label}.")
    return values
