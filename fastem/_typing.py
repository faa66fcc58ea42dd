"""Type aliases of the public API (the annotations users' type checkers see)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .components.structures import names as structure_names

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10: checkers take typing_extensions' Self
    try:
        from typing_extensions import Self
    except ImportError:
        Self = Any

__all__ = ["Acceleration", "ArrayLike", "Callback", "CovarianceType", "DataSource",
           "FloatArray", "IntArray", "Method", "MissingPolicy", "NDArray", "PathLike", "Prior",
           "RandomStateLike", "Self", "SequenceDataSource"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
RandomStateLike = int | np.random.RandomState | np.random.Generator | None
PathLike = str | os.PathLike[str]
CovarianceType = Literal[structure_names()]  # type: ignore[valid-type]
"""A registered covariance structure's name (:mod:`fastem.components.structures`)."""
Acceleration = Literal["none", "squarem"]
MissingPolicy = Literal["raise", "marginalize"]
Prior = float | ArrayLike
Callback = Callable[[int, float, Any], bool | None]
"""``callback(iteration, objective, parameters)``; a true return stops the fit."""
DataSource = ArrayLike | Callable[[], Iterable[Any]]
"""An array (or np.memmap), or a callable returning a fresh iterator of row blocks."""
SequenceDataSource = ArrayLike | Callable[[], Iterable[tuple[Any, Any]]]
"""An array, or a callable returning a fresh iterator of ``(X, lengths)`` pairs."""
Method = TypeVar("Method", bound=Callable[..., Any])
"""A method passed through a signature-preserving decorator."""
