"""Exceptions and warnings raised by fastem."""


class NotFittedError(ValueError, AttributeError):
    """Raised when a method that needs a fitted model is called before ``fit``.

    Subclasses ValueError and AttributeError, like scikit-learn's, so existing
    ``except`` clauses keep working.
    """


class ConvergenceWarning(UserWarning):
    """Emitted when the best restart stopped at ``max_iter`` before converging."""
