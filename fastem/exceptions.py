"""Exceptions and warnings raised by fastem.

When scikit-learn is loaded, fastem raises classes that derive from both its
own classes and scikit-learn's, so code written for scikit-learn
(``except sklearn.exceptions.NotFittedError``, filters on scikit-learn's
``ConvergenceWarning``) keeps working. Importing scikit-learn costs ~0.7 s, so
fastem never imports it: if it is not loaded, nobody can be catching its
classes.
"""

from __future__ import annotations

import functools
import sys


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted model is called before ``fit``."""


class ConvergenceWarning(UserWarning):
    """Emitted when the best restart stopped at ``max_iter`` before converging."""


class DataConversionWarning(UserWarning):
    """Emitted when input is reshaped to what the estimator takes (a column vector y
    for a single-output model)."""


@functools.cache
def _bridged(ours, theirs):
    return type(ours.__name__, (ours, theirs), {"__module__": ours.__module__})


def compatible(cls):
    """``cls``, or a subclass of it and of scikit-learn's class of the same name when loaded."""
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    theirs = getattr(sklearn_exceptions, cls.__name__, None)
    return cls if theirs is None else _bridged(cls, theirs)


def interruption(error: BaseException | None) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt behind ``error``, if Ctrl-C caused it.

    A KeyboardInterrupt delivered while a compiled kernel runs surfaces, when the
    kernel returns, as numba's ``SystemError`` ("returned a result with an
    exception set") chained to it.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
