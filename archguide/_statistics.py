"""Column statistics, the numbers an encoding is fitted from (no Keras, so a dataset's pass can gather them).

:meth:`~archguide.estimators.preprocessing.ColumnEncoding.fit` takes them from a table in memory;
:func:`archguide.datasets.scan` gathers the same ones in one pass over a dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ColumnStatistics", "QUANTILES", "TAIL"]

#: With ``scaling="robust"`` values beyond the training rows' ``TAIL`` and ``1 - TAIL`` quantiles are clamped to them.
TAIL = 0.001
#: The quantiles robust scaling reads: the clamp's edges, the quartiles and the median.
QUANTILES = (TAIL, 0.25, 0.5, 0.75, 1 - TAIL)


@dataclass(frozen=True)
class ColumnStatistics:
    """What an encoding needs to know of one column, all in float64.

    Attributes:
        kind: ``"numeric"``, ``"boolean"`` or ``"categorical"``.
        n_rows: Rows seen, missing values included.
        missing: Whether any of them was missing.
        n_present, mean, std, minimum, maximum: Of the present values (numbers only; ``std`` the
            population's).
        quantiles: The present values' :data:`QUANTILES` (robust scaling of a numeric column only).
        counts: Label -> rows (categorical only).
    """

    kind: str
    n_rows: int
    missing: bool
    n_present: int = 0
    mean: float = 0.0
    std: float = 0.0
    minimum: float = 0.0
    maximum: float = 0.0
    quantiles: tuple[float, ...] | None = None
    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def numbers(cls, kind: str, n_rows: int, present: np.ndarray, *, robust: bool):
        """The statistics of a numeric or boolean column from its present values (float64)."""
        if present.size == 0:
            return cls(kind, n_rows, n_rows > 0)
        quantiles = None
        if robust and kind == "numeric":
            quantiles = tuple(float(q) for q in np.quantile(present, QUANTILES))
        return cls(
            kind, n_rows, present.size < n_rows, n_present=int(present.size), mean=float(present.mean()),
            std=float(present.std()), minimum=float(present.min()), maximum=float(present.max()),
            quantiles=quantiles,
        )  # fmt: skip

    @classmethod
    def categorical(cls, n_rows: int, counts: Mapping[str, int]):
        """The statistics of a categorical column from its labels' counts."""
        return cls("categorical", n_rows, sum(counts.values()) < n_rows, n_present=sum(counts.values()),
                   counts=dict(counts))  # fmt: skip
