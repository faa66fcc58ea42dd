"""Small real data sets bundled with fastem.

``faithful.csv``: Old Faithful geyser, Yellowstone National Park; 272
eruptions with ``eruptions`` (duration, minutes) and ``waiting`` (time to the
next eruption, minutes). Public data as distributed with R's ``datasets``
package (Härdle 1991; Azzalini & Bowman 1990).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .._typing import FloatArray

__all__ = ["faithful_path", "load_faithful"]


def faithful_path() -> str:
    """Path of the bundled ``faithful.csv`` (e.g. to try the ``fastem`` command on it)."""
    return str(resources.files(__name__).joinpath("faithful.csv"))


def load_faithful() -> tuple[FloatArray, list[str]]:
    """Load the Old Faithful eruptions table.

    Returns
    -------
    X : ndarray of shape (272, 2)
        Columns: eruption duration (minutes), waiting time to the next eruption (minutes).
    feature_names : list of str
    """
    with resources.files(__name__).joinpath("faithful.csv").open("r") as handle:
        header = handle.readline().strip().replace('"', "").split(",")
        X = np.loadtxt(handle, delimiter=",")
    return X, header
