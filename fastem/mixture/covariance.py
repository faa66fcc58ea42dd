"""The covariance structures' previous home: see :mod:`fastem.components.structures`."""

from ..components.structures import (  # noqa: F401  (re-exported)
    MASS_EPS,
    SPECS,
    degenerate_error,
    lower_cholesky,
)
