"""Exceptions and warnings raised by archguide.

Every error also subclasses the builtin a caller would catch anyway, so that
``except ValueError`` keeps working around archguide calls.
"""


class ArchguideError(Exception):
    """Base class of every error archguide raises on purpose."""


class DataError(ArchguideError, ValueError):
    """The data passed in (``X``, ``y``, a file) cannot be used as it is.

    The message names the argument or the offending columns, what was
    expected and what was received.
    """


class ConfigError(ArchguideError, ValueError):
    """An option, a configuration file or an override is invalid."""


class TrainingError(ArchguideError, RuntimeError):
    """Training failed in a way that leaves no usable model (the loss became NaN or infinite).

    The message says what to try.
    """


class ArchguideWarning(UserWarning):
    """Something worth knowing happened, but the result is still usable."""


def _not_fitted_error():
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    class NotFittedError(ArchguideError, SklearnNotFittedError):
        """An estimator was used before ``fit``.

        It is also scikit-learn's ``NotFittedError`` (so an ``AttributeError``
        and a ``ValueError``): code written for scikit-learn catches it.
        """

    NotFittedError.__module__ = __name__
    NotFittedError.__qualname__ = "NotFittedError"
    return NotFittedError


def __getattr__(name: str):
    # NotFittedError subclasses scikit-learn's, defined on first use: the command line's argument and config
    # errors answer without importing scikit-learn.
    if name == "NotFittedError":
        cls = globals()["NotFittedError"] = _not_fitted_error()
        return cls
    raise AttributeError(f"module 'archguide.exceptions' has no attribute {name!r}")
