"""Argument checks shared by the public functions. Messages follow Keras:
"Received an invalid value for X, expected ... Received: X=...".
"""

from __future__ import annotations

import math
import numbers

from archguide.exceptions import ConfigError


def check_int(name: str, value, *, low: int = 1, allow_none: bool = False) -> None:
    """Raise ConfigError unless ``value`` is an integer >= ``low`` (or None when allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        expected = ("a positive integer" if low == 1 else f"an integer >= {low}") + (" or None" if allow_none else "")
        raise ConfigError(f"Received an invalid value for {name}, expected {expected}. Received: {name}={value!r}")


def check_number(name: str, value, *, low: float = 0.0, high: float = math.inf, open_interval: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a real number in [low, high] (or (low, high) when open)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = low < value < high if open_interval else low <= value <= high
    if not ok:
        bounds = f"({low}, {high})" if open_interval else f"[{low}, {high}]"
        raise ConfigError(
            f"Received an invalid value for {name}, expected a number in {bounds}. Received: {name}={value!r}"
        )


def check_choice(name: str, value, choices) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(
            f"Received an invalid value for {name}, expected one of {list(choices)}. Received: {name}={value!r}"
        )
