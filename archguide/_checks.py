"""Argument checks shared by the public functions. Messages follow Keras:
"Received an invalid value for X, expected ... Received: X=...".
"""

from __future__ import annotations

import math
import numbers

from sklearn.utils import check_random_state

from archguide.exceptions import ConfigError


def check_int(name: str, value, *, low: int = 1, allow_none: bool = False, words: tuple[str, ...] = ()) -> None:
    """Raise ConfigError unless ``value`` is an integer >= ``low`` (or None when allowed, or one of ``words``)."""
    if (value is None and allow_none) or (isinstance(value, str) and value in words):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        expected = ("a positive integer" if low == 1 else f"an integer >= {low}") + (" or None" if allow_none else "")
        expected += "".join(f" or {word!r}" for word in words)
        raise ConfigError(f"Received an invalid value for {name}, expected {expected}. Received: {name}={value!r}")


def check_number(
    name: str, value, *, low: float = 0.0, high: float = math.inf, open_interval: bool = False, open_high: bool = False
) -> None:
    """Raise ConfigError unless ``value`` is a real number in [low, high] (or (low, high) when open;
    [low, high) with ``open_high``, as for a rate such as dropout)."""
    open_high = open_high or open_interval
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low < value if open_interval else low <= value) and (value < high if open_high else value <= high)
    if not ok:
        bounds = f"{'(' if open_interval else '['}{low}, {high}{')' if open_high else ']'}"
        raise ConfigError(
            f"Received an invalid value for {name}, expected a number in {bounds}. Received: {name}={value!r}"
        )


def check_choice(name: str, value, choices) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(
            f"Received an invalid value for {name}, expected one of {list(choices)}. Received: {name}={value!r}"
        )


def check_seed(value, name: str = "random_state"):
    """A ``numpy.random.RandomState`` from a seed, as scikit-learn's ``check_random_state`` makes it.

    None gives NumPy's global state, an integer a new seeded state, and a
    RandomState is returned as it is (so that successive draws differ).

    Raises:
        ConfigError: the value is none of those.
    """
    try:
        if isinstance(value, bool):  # an integer to NumPy, but never a meant seed
            raise TypeError
        return check_random_state(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Received an invalid value for {name}, expected an integer seed, a numpy.random.RandomState or None. "
            f"Received: {name}={value!r}"
        ) from None


def check_units(name: str, value) -> tuple[int, ...]:
    """Layer widths as a tuple of Python ints: one integer (NumPy's too) or a non-empty sequence of them.

    Raises:
        ConfigError: a width is not a positive integer, or there is none.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)):  # iterable, but its characters are no widths
        raise ConfigError(
            f"Received an invalid value for {name}, expected a positive integer or a list of them. "
            f"Received: {name}={value!r}"
        )
    try:
        values = tuple(value)
    except TypeError:
        raise ConfigError(
            f"Received an invalid value for {name}, expected a positive integer or a list of them. "
            f"Received: {name}={value!r}"
        ) from None
    if not values:
        raise ConfigError(
            f"Received an invalid value for {name}, expected at least one width: the shared head is not optional "
            f"(without it the model is additive across branches). Received: {name}={value!r}"
        )
    for units in values:
        check_int(name, units)
    return tuple(int(units) for units in values)
