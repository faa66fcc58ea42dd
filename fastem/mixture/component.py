"""The statistics of Gaussian components, shared by every Gaussian model.

The Gaussian kernels (:mod:`fastem.kernels.gaussian`) write, after the common
``loglik`` and ``weight`` scalars, per component k about a shift c_k:

* ``mass``: N_k = sum_i r_ik
* ``first``: S_k = sum_i r_ik (x_i - c_k)
* ``second``: Q_k = sum_i r_ik (x_i - c_k)(x_i - c_k)^T, upper triangle only
  (or its diagonal for diagonal covariances)

The mixture, the Gaussian and GMM HMMs and missing-data EM all read them through
these helpers, so the layout is defined here once.
"""

from __future__ import annotations

import numpy as np

from ..engine import StatsLayout


def gaussian_fields(n_components, n_features, diagonal):
    """Field shapes of the Gaussian statistics (in the kernels' order)."""
    second = (n_components, n_features) if diagonal else (n_components, n_features, n_features)
    return {"mass": (n_components,), "first": (n_components, n_features), "second": second}


def gaussian_layout(n_components, n_features, diagonal):
    """The statistics layout of a Gaussian mixture."""
    return StatsLayout(gaussian_fields(n_components, n_features, diagonal),
                       recentre=recentre_gaussian)


def second_moments(stats):
    """Q_k of ``stats``: symmetric (K, D, D) matrices, or the (K, D) diagonals."""
    second = stats["second"]
    if second.ndim == 2:
        return second
    upper = np.triu(second)
    return upper + np.swapaxes(np.triu(upper, 1), 1, 2)


class MomentRecentre:
    """A layout's ``recentre`` rule for per-component moments about a shift: fields
    ``mass`` (K,), ``first`` (K, D) and ``second`` (K, D) diagonal or (K, D, D) (only its
    upper triangle kept when ``triangular``).

    With d = c - c', moments about c' are S' = S + N d and
    Q' = Q + S d^T + d S^T + N d d^T (exact).

    A class rather than a closure: layouts live on fitted models (the mixture of experts'
    Gaussian gate), which must pickle.
    """

    def __init__(self, first="first", second="second", triangular=True):
        self.first = first
        self.second = second
        self.triangular = bool(triangular)

    def __repr__(self):
        return (f"MomentRecentre({self.first!r}, {self.second!r}, "
                f"triangular={self.triangular})")

    def __eq__(self, other):
        return (isinstance(other, MomentRecentre)
                and (self.first, self.second, self.triangular)
                == (other.first, other.second, other.triangular))

    def __hash__(self):
        return hash((self.first, self.second, self.triangular))

    def __call__(self, stats, new_shift):
        first, second = self.first, self.second
        new_shift = np.asarray(new_shift, dtype=np.float64)
        out = stats.copy()
        delta = np.asarray(stats.shift, dtype=np.float64) - new_shift
        mass = stats["mass"]
        sums = stats[first]
        out[first][...] = sums + mass[:, None] * delta
        if out[second].ndim == 2:
            out[second][...] += 2.0 * delta * sums + mass[:, None] * delta * delta
        else:
            update = (sums[:, :, None] * delta[:, None, :] + delta[:, :, None] * sums[:, None, :]
                      + mass[:, None, None] * delta[:, :, None] * delta[:, None, :])
            out[second][...] += np.triu(update) if self.triangular else update
        out.shift = new_shift.copy()
        return out


def moment_recentre(first="first", second="second", triangular=True):
    """The :class:`MomentRecentre` rule for the fields ``first`` and ``second`` (a
    picklable callable)."""
    return MomentRecentre(first, second, triangular)


recentre_gaussian = moment_recentre()
"""Gaussian moments (``first``, upper-triangular ``second``) about a new shift."""
