"""Column typing and input validation.

archguide accepts a pandas DataFrame (its column names are the feature names)
or a 2-D array-like (features are named ``x0``, ``x1``, ...). Every column is
typed as one of three kinds:

- ``"numeric"``: integer or float values (nullable pandas dtypes included);
- ``"boolean"``: ``True``/``False`` values, encoded as 0/1;
- ``"categorical"``: strings, pandas ``category`` columns and other object
  columns of plain values, encoded as integer codes of the sorted categories.

Missing values (``NaN``, ``None``, ``pd.NA``) are allowed anywhere in ``X``;
they are encoded as ``NaN``. Everything that cannot be used (an empty table,
duplicate names, complex or nested values, infinities, a column that is
entirely missing, a finite value beyond the float32 range that the network
computes in) raises a :class:`~archguide.exceptions.DataError` that names the
columns. Nothing here writes into the caller's data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from archguide.exceptions import DataError

__all__ = [
    "Table",
    "as_table",
    "check_target",
    "column_mismatch",
    "format_names",
    "encoded_table",
    "repeated",
    "unique_name",
]

KINDS = ("numeric", "boolean", "categorical")

#: The largest magnitude the network's float32 arithmetic holds; a finite value beyond it is refused.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# Rows are checked in blocks so that a check on a large array never allocates
# a temporary as large as the array itself.
_CHECK_BLOCK_ROWS = 65_536


def format_names(names: Sequence[object], limit: int = 5) -> str:
    """Format at most ``limit`` names for an error message, then ``...``."""
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    return shown + (", ..." if len(names) > limit else "")


def column_mismatch(expected: Sequence[str], columns: Sequence[str]) -> str | None:
    """``"missing 'a'; unexpected 'b'"`` for columns that differ from ``expected`` (at most five each), else None."""
    missing = [n for n in expected if n not in set(columns)]
    unexpected = [c for c in columns if c not in set(expected)]
    problems = [f"missing {format_names(missing)}"] if missing else []
    problems += [f"unexpected {format_names(unexpected)}"] if unexpected else []
    return "; ".join(problems) or None


def repeated(items) -> list:
    """The items that occur more than once, each once, in order of first appearance."""
    return [x for x, count in Counter(items).items() if count > 1]


def unique_name(name: str, used: set[str], *, separator: str = "_") -> str:
    """``name``, or ``name<separator>2``, ``3``, ... : the first not in ``used``, which it joins."""
    candidate, i = name, 1
    while candidate in used:
        i += 1
        candidate = f"{name}{separator}{i}"
    used.add(candidate)
    return candidate


@dataclass(frozen=True, eq=False)
class Table:
    """A validated, typed view of ``X`` that encodes rows on demand.

    It keeps a reference to the caller's data (never a copy of it) and
    produces float32 blocks of selected rows with :meth:`encode`.

    Attributes:
        names: The feature names, in column order.
        kinds: Feature name -> ``"numeric"`` | ``"boolean"`` | ``"categorical"``.
        categories: Feature name -> tuple of category labels (categoricals only).
        n_rows: The number of rows.
        missing_columns: Columns with no value at all (only with
            ``allow_missing_columns``).
    """

    names: tuple[str, ...]
    kinds: dict[str, str]
    categories: dict[str, tuple[str, ...]]
    n_rows: int
    _array: np.ndarray | None
    _frame: pd.DataFrame | None
    missing_columns: frozenset[str] = frozenset()

    @property
    def n_features(self) -> int:
        return len(self.names)

    def encode(self, rows: np.ndarray | None = None, dtype=np.float32) -> np.ndarray:
        """Encode ``rows`` (all rows when None) as a new array of ``dtype`` (float32; float64 for statistics).

        Numeric values are cast, booleans become 0/1, categoricals become the
        index of their label in ``categories[name]``; missing values are NaN.

        Returns:
            A new, writable array of shape ``(len(rows), n_features)``.
        """
        if self._array is not None:
            block = self._array if rows is None else self._array[rows]
            return np.array(block, dtype=dtype, copy=True)
        frame = self._frame if rows is None else self._frame.iloc[rows]
        out = np.empty((len(frame), self.n_features), dtype=dtype)
        for j, name in enumerate(self.names):
            out[:, j] = _encode_column(frame.iloc[:, j], self.kinds[name], self.categories.get(name))
        return out


def _encode_column(col: pd.Series, kind: str, categories: tuple[str, ...] | None) -> np.ndarray:
    if kind == "categorical":
        labels = col.astype("object").where(col.notna(), None)
        labels = labels.map(lambda v: v if v is None else str(v))
        codes = pd.Categorical(labels, categories=list(categories)).codes.astype(np.float32)
        codes[codes < 0] = np.nan
        return codes
    return col.to_numpy(dtype=np.float64, na_value=np.nan)


def as_table(X, *, argument: str = "X", allow_missing_columns: bool = False) -> Table:
    """Validate ``X`` and type its columns.

    Args:
        X: A pandas DataFrame or a 2-D array-like of shape
            ``(n_samples, n_features)``; a :class:`Table` is returned as it is.
        argument: The argument's name, used in error messages.
        allow_missing_columns: Accept a column with no value at all (a few
            rows to predict may all lack one value); such columns are listed
            in ``missing_columns``.

    Returns:
        A :class:`Table` over ``X``.

    Raises:
        DataError: ``X`` is empty, not 2-D, has duplicate column names, or has
            a column that is complex, nested, of an unsupported dtype,
            entirely missing, or contains infinite values.
    """
    if isinstance(X, Table):  # typed at the door already
        return X
    if isinstance(X, pd.Series):
        raise DataError(
            f"Expected {argument} to be 2-D (a DataFrame or an array of shape (n_samples, n_features)). "
            f"Received a Series named {X.name!r}; use X.to_frame() for a single feature."
        )
    if isinstance(X, pd.DataFrame):
        return _frame_table(X, argument, allow_missing_columns)
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise DataError(
            f"Sparse data is not supported: {argument} is a {type(X).__name__}. Pass a dense array "
            f"({argument}.toarray()) or a DataFrame."
        )
    try:
        array = np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise DataError(f"Could not read {argument} as a 2-D table: {exc}") from exc
    if array.ndim != 2:
        hint = (
            " Reshape your data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single sample."
            if array.ndim == 1
            else ""
        )
        raise DataError(
            f"Expected {argument} to be 2-D with shape (n_samples, n_features). "
            f"Received an array of shape {array.shape}.{hint}"
        )
    _check_shape(array.shape, argument)
    names = tuple(f"x{j}" for j in range(array.shape[1]))
    if array.dtype.kind in "iuf":
        missing = _check_numeric_array(array, names, argument, allow_missing_columns)
        return Table(names, dict.fromkeys(names, "numeric"), {}, array.shape[0], array, None, missing)
    if array.dtype.kind == "b":
        return Table(names, dict.fromkeys(names, "boolean"), {}, array.shape[0], array, None)
    if array.dtype.kind == "c":
        raise DataError(
            f"Complex data not supported: columns {format_names(names)} of {argument} are complex-valued; "
            "archguide takes real numbers. Split them into real and imaginary parts."
        )
    # Strings or Python objects: type each column as a DataFrame column would be.
    return _frame_table(pd.DataFrame(array, columns=list(names)), argument, allow_missing_columns)


def _check_shape(shape: tuple[int, ...], argument: str) -> None:
    if shape[0] == 0:
        raise DataError(
            f"{argument} is empty: it has 0 rows, 0 sample(s) (shape={shape}) while a minimum of 1 is required. "
            "Pass at least one row per sample."
        )
    if shape[1] == 0:
        raise DataError(
            f"{argument} has {shape[0]} rows but 0 columns: 0 feature(s) (shape={shape}) while a minimum of 1 is "
            "required. Pass at least one feature."
        )


def _check_numeric_array(
    array: np.ndarray, names: tuple[str, ...], argument: str, allow_missing_columns: bool = False
) -> frozenset[str]:
    """Raise for infinite (and, unless allowed, entirely missing) columns; return the entirely missing ones."""
    if array.dtype.kind not in "f":
        return frozenset()  # integers hold neither NaN nor inf
    has_value = np.zeros(array.shape[1], dtype=bool)
    has_inf = np.zeros(array.shape[1], dtype=bool)
    too_large = np.zeros(array.shape[1], dtype=bool)
    for start in range(0, array.shape[0], _CHECK_BLOCK_ROWS):
        block = array[start : start + _CHECK_BLOCK_ROWS]
        has_value |= ~np.isnan(block).all(axis=0)
        has_inf |= np.isinf(block).any(axis=0)
        if array.dtype.itemsize > 4:
            too_large |= _beyond_float32(block).any(axis=0)
    return _raise_for_columns(names, ~has_value, has_inf, argument, allow_missing_columns, too_large)


def _beyond_float32(values: np.ndarray) -> np.ndarray:
    """Where ``values`` are finite but too large for the network's float32."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)


def _raise_for_columns(
    names, all_missing, has_inf, argument: str, allow_missing_columns: bool, too_large
) -> frozenset[str]:
    missing = [n for n, bad in zip(names, all_missing) if bad]
    if missing and not allow_missing_columns:
        raise DataError(
            f"Columns {format_names(missing)} of {argument} are entirely missing. "
            "Drop them or fill them in; a column needs at least one value."
        )
    infinite = [n for n, bad in zip(names, has_inf) if bad]
    if infinite:
        raise DataError(
            f"Columns {format_names(infinite)} of {argument} contain infinite values. "
            "Replace them with finite values or NaN (missing values are allowed)."
        )
    large = [n for n, bad in zip(names, too_large) if bad]
    if large:
        raise DataError(
            f"Columns {format_names(large)} of {argument} hold values beyond the float32 range (magnitude above "
            f"{FLOAT32_MAX:.4g}), which the network computes in. Rescale them (for example a logarithm or a change "
            "of units)."
        )
    return frozenset(missing)


def _frame_table(frame: pd.DataFrame, argument: str, allow_missing_columns: bool = False) -> Table:
    _check_shape(frame.shape, argument)
    if isinstance(frame.columns, pd.MultiIndex):
        raise DataError(f"{argument} has MultiIndex columns; flatten them to one level of names first.")
    names = tuple(str(c) for c in frame.columns)
    dupes = repeated(names)
    if dupes:
        raise DataError(f"{argument} has duplicate column names: {format_names(dupes)}. Feature names must be unique.")

    kinds: dict[str, str] = {}
    categories: dict[str, tuple[str, ...]] = {}
    all_missing, has_inf, too_large = [], [], []
    for j, name in enumerate(names):
        col = frame.iloc[:, j]
        kind = _column_kind(col, name, argument)
        kinds[name] = kind
        missing = bool(col.isna().all())
        all_missing.append(missing)
        inf = large = False
        if kind == "numeric" and not missing:
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            inf = bool(np.isinf(values).any())
            large = bool(_beyond_float32(values).any())
        has_inf.append(inf)
        too_large.append(large)
        if kind == "categorical" and missing:
            categories[name] = ()
        elif kind == "categorical":
            if isinstance(col.dtype, pd.CategoricalDtype):
                labels = col.cat.categories.astype("object").map(str)
            else:
                labels = col.dropna().astype("object").map(str)
            categories[name] = tuple(sorted(pd.unique(np.asarray(labels, dtype=object))))
    missing = _raise_for_columns(names, all_missing, has_inf, argument, allow_missing_columns, too_large)
    return Table(names, kinds, categories, frame.shape[0], None, frame, missing)


def _column_kind(col: pd.Series, name: str, argument: str) -> str:
    dtype = col.dtype
    if ptypes.is_complex_dtype(dtype):
        raise DataError(
            f"Complex data not supported: column {name!r} of {argument} is complex-valued ({dtype}); "
            "archguide takes real numbers."
        )
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric"
    if ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        raise DataError(
            f"Column {name!r} of {argument} has dtype {dtype}, which archguide does not encode. "
            "Convert it to numbers first (for example days since a date, or its year and month)."
        )
    if ptypes.is_string_dtype(dtype) or ptypes.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(col, skipna=True)
        if inferred in ("string", "bytes", "categorical", "empty"):
            return "categorical"
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric"
        if inferred == "boolean":
            return "boolean"
        if inferred == "complex":
            raise DataError(
                f"Complex data not supported: column {name!r} of {argument} holds complex numbers; "
                "archguide takes real numbers."
            )
        nested = col.dropna().map(lambda v: isinstance(v, (list, tuple, dict, set, np.ndarray))).any()
        if nested:
            raise DataError(
                f"Column {name!r} of {argument} holds nested values (lists, dicts or arrays in cells). "
                "Expand them into one column per value first."
            )
        if inferred in ("mixed", "mixed-integer"):
            return "categorical"  # plain values of several types: labels, compared as strings
        raise DataError(
            f"Column {name!r} of {argument} holds values of type {inferred!r}, which archguide does not encode. "
            "Convert it to numbers or strings first."
        )
    raise DataError(f"Column {name!r} of {argument} has unsupported dtype {dtype}.")


def check_target(y, n_rows: int, *, argument: str = "y") -> np.ndarray:
    """Validate a 1-D target of ``n_rows`` values and return it as an array.

    Args:
        y: A pandas Series, a one-column DataFrame, a list or an array.
        n_rows: The number of rows of ``X``.
        argument: The argument's name, used in error messages.

    Returns:
        A 1-D array (a new object; ``y`` itself is not modified).

    Raises:
        DataError: ``y`` has the wrong length, is not 1-D, or holds missing
            or infinite values.
    """
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise DataError(f"Expected {argument} to be one column. Received a DataFrame with {y.shape[1]} columns.")
        y = y.iloc[:, 0]
    dtype = getattr(y, "dtype", None)
    if dtype is not None and (
        ptypes.is_datetime64_any_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.PeriodDtype)
    ):
        raise DataError(
            f"{argument} has dtype {dtype}, which archguide does not take as a target. Convert it to numbers first "
            "(for example days since a date), as for a column of X."
        )
    if isinstance(y, pd.Series):
        values = y.to_numpy()
        if isinstance(y.dtype, pd.CategoricalDtype) or ptypes.is_string_dtype(y.dtype):
            values = y.astype("object").to_numpy()
        elif ptypes.is_extension_array_dtype(y.dtype) and ptypes.is_numeric_dtype(y.dtype):
            values = y.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            values = np.asarray(y)
        except (ValueError, TypeError) as exc:
            raise DataError(f"Could not read {argument} as a 1-D array: {exc}") from exc
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise DataError(f"Expected {argument} to be 1-D with one value per row. Received shape {values.shape}.")
    if values.shape[0] != n_rows:
        raise DataError(f"{argument} has {values.shape[0]} values but X has {n_rows} rows; they must match.")
    if values.dtype.kind == "c":
        raise DataError(
            f"Complex data not supported: {argument} is complex-valued; expected real numbers or class labels."
        )
    if values.dtype.kind in "mM":
        raise DataError(
            f"{argument} has dtype {values.dtype}, which archguide does not take as a target. Convert it to numbers "
            "first (for example days since a date), as for a column of X."
        )
    missing = pd.isna(values) if values.dtype.kind in "fOUSM" else np.zeros(len(values), dtype=bool)
    if missing.any():
        where = np.flatnonzero(missing)
        raise DataError(
            f"{argument} has {len(where)} missing values (NaN), first at rows {where[:5].tolist()}. "
            "Drop those rows or fill them in; the target cannot be missing."
        )
    if values.dtype.kind == "f":
        inf = np.isinf(values)
        if inf.any():
            raise DataError(
                f"{argument} has {int(inf.sum())} infinite values, first at rows {np.flatnonzero(inf)[:5].tolist()}."
            )
    return np.array(values, copy=True)


def encoded_table(matrix: np.ndarray, features) -> Table:
    """A :class:`Table` over a matrix archguide encoded itself (finite numbers, one column per feature).

    The data was validated at the door, as the user's columns; its encoding is not validated again.
    """
    names = tuple(str(f) for f in features)
    return Table(names, dict.fromkeys(names, "numeric"), {}, matrix.shape[0], matrix, None)
