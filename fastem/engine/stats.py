"""Typed additive sufficient statistics.

A model's statistics are one flat float64 vector (what the compiled kernels
write into, one partial per work unit, reduced in order), but nobody outside
the component that defines them computes offsets into it: a
:class:`StatsLayout` names the fields once, and :class:`Stats` gives named
views, addition, scaling by a weight and blending (online EM).

Every layout starts with two scalars that all models share:

* ``loglik``: sum over rows (or sequences) of weight x log-likelihood under
  the parameters the statistics were computed at;
* ``weight``: the total weight (number of rows or of observations).

Statistics about a *shift* (e.g. Gaussian moments about the current means,
which keep their precision where raw moments about zero would not) carry that
shift explicitly. Adding or blending statistics about different shifts first
moves one set onto the other's shift with the layout's ``recentre`` rule, so
sums are always of like with like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import prod

import numpy as np

COMMON_FIELDS = (("loglik", ()), ("weight", ()))


class StatsLayout:
    """Names, shapes and offsets of the fields of a statistics vector.

    Parameters
    ----------
    fields : mapping of name -> shape
        The model's own fields, in the order its kernels write them (after the
        common ``loglik`` and ``weight`` scalars).
    recentre : callable or None
        ``recentre(stats, new_shift) -> Stats``: the same statistics about
        ``new_shift``. Needed only by layouts that carry a shift.
    """

    def __init__(self, fields: Mapping[str, tuple], recentre: Callable | None = None):
        self.slices = {}
        self.shapes = {}
        offset = 0
        for name, shape in (*COMMON_FIELDS, *fields.items()):
            if name in self.slices:
                raise ValueError(f"statistics field {name!r} is defined twice")
            shape = tuple(int(s) for s in shape)
            size = prod(shape)
            self.slices[name] = slice(offset, offset + size)
            self.shapes[name] = shape
            offset += size
        self.size = offset
        self.recentre = recentre

    def __eq__(self, other):
        return (isinstance(other, StatsLayout) and self.shapes == other.shapes
                and list(self.slices) == list(other.slices))

    def __hash__(self):
        return hash(tuple(self.shapes.items()))

    def __repr__(self):
        fields = ", ".join(f"{name}{list(shape)}" for name, shape in self.shapes.items())
        return f"StatsLayout({fields})"

    def zeros(self, shift=None) -> Stats:
        """Empty statistics (the neutral element of addition)."""
        return Stats(self, np.zeros(self.size), shift)

    def wrap(self, flat, shift=None) -> Stats:
        """Statistics over an existing flat vector (no copy)."""
        flat = np.asarray(flat)
        if flat.shape != (self.size,) or flat.dtype != np.float64:
            raise ValueError(f"statistics vector must be float64 of shape ({self.size},), got "
                             f"{flat.dtype} {flat.shape}")
        return Stats(self, flat, shift)


class Stats:
    """Sufficient statistics: a flat vector read through its layout.

    ``stats["name"]`` (or ``stats.name``) is a view of one field in its shape
    (``stats["name"] += x`` adds into it);
    ``stats.flat`` is the whole vector (what kernels accumulate into);
    ``stats.shift`` the point moments are taken about (or None).
    """

    __slots__ = ("layout", "flat", "shift")

    def __init__(self, layout: StatsLayout, flat: np.ndarray, shift=None):
        self.layout = layout
        self.flat = flat
        self.shift = shift

    def __getitem__(self, name):
        layout = self.layout
        value = self.flat[layout.slices[name]]
        shape = layout.shapes[name]
        return value[0] if shape == () else value.reshape(shape)

    def __setitem__(self, name, value):
        # ``stats["mass"] += x`` adds into the view and then assigns it back: a no-op copy.
        self.flat[self.layout.slices[name]] = np.ravel(value)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"statistics have no field {name!r} (fields: "
                                 f"{', '.join(self.layout.shapes)})") from None

    def __repr__(self):
        return f"Stats(weight={self.weight:.6g}, loglik={self.loglik:.6g}, {self.layout!r})"

    def copy(self) -> Stats:
        return Stats(self.layout, self.flat.copy(),
                     None if self.shift is None else np.array(self.shift, copy=True))

    def _aligned(self, other: Stats) -> Stats:
        if other.layout != self.layout:
            raise ValueError(f"cannot combine statistics of different layouts: {self.layout!r} "
                             f"and {other.layout!r}")
        if self.shift is None or other.shift is None or np.array_equal(self.shift, other.shift):
            return other
        if self.layout.recentre is None:
            raise ValueError("statistics about different shifts, and the layout cannot "
                             "recentre them")
        return self.layout.recentre(other, self.shift)

    def __add__(self, other: Stats) -> Stats:
        other = self._aligned(other)
        return Stats(self.layout, self.flat + other.flat, self.shift)

    def __iadd__(self, other: Stats) -> Stats:
        self.flat += self._aligned(other).flat
        return self

    def scaled(self, factor: float) -> Stats:
        """The statistics of ``factor`` times the data (every field times ``factor``)."""
        return Stats(self.layout, self.flat * float(factor), self.shift)

    def blend(self, other: Stats, step: float) -> Stats:
        """``self + step * (other - self)``: the stepwise (online) EM update."""
        other = self._aligned(other)
        return Stats(self.layout, self.flat + float(step) * (other.flat - self.flat), self.shift)

    def recentred(self, shift) -> Stats:
        """The same statistics about ``shift``."""
        if self.shift is None or np.array_equal(self.shift, shift):
            return self
        return self.layout.recentre(self, shift)
