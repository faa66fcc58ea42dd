"""The one registry of fastem's estimators: model files, the command line and warmup
read it, so that a new estimator is registered once, where it is defined.

A class registers itself with a keyword of its class statement
(:meth:`fastem._base.EstimatorBase.__init_subclass__`)::

    class GaussianMixture(EstimatorBase, kind="gmm"): ...

``kind`` is the name ``fastem fit KIND`` knows it by; ``command=False`` keeps a class
out of the command line (it is still saved and loaded by :mod:`fastem.io`). Model
files name the class (``GaussianMixture``), never the kind, so that files of earlier
releases keep loading. This module imports nothing of fastem: anything may read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """One registered estimator class."""

    kind: str
    cls: type
    command: bool


_ENTRIES: dict[str, Entry] = {}  # by kind, in registration order


def register(cls: type, kind: str, command: bool = True) -> None:
    """Register ``cls`` under ``kind`` (TypeError when another class holds the kind or
    the class name: model files name classes, and a name must read back as one class)."""
    if not (isinstance(kind, str) and kind):
        raise TypeError(f"{cls.__name__}: kind must be a non-empty string, got {kind!r}")
    for entry in _ENTRIES.values():
        same = (entry.cls.__module__, entry.cls.__qualname__) == (cls.__module__,
                                                                  cls.__qualname__)
        if same:  # the same class defined again (a module reloaded): the new one wins
            continue
        if entry.kind == kind or entry.cls.__name__ == cls.__name__:
            raise TypeError(f"{cls.__name__} (kind {kind!r}) clashes with the registered "
                            f"{entry.cls.__name__} (kind {entry.kind!r})")
    stale = [name for name, entry in _ENTRIES.items() if entry.cls.__name__ == cls.__name__]
    for name in stale:
        del _ENTRIES[name]
    _ENTRIES[kind] = Entry(kind, cls, bool(command))


def _loaded() -> dict[str, Entry]:
    # Every shipped estimator registers when fastem is imported (the package imports
    # them all); importing it here makes the registry complete for any reader.
    import fastem  # noqa: F401

    return _ENTRIES


def classes() -> dict[str, type]:
    """Class name -> class of every registered estimator (what model files may hold)."""
    return {entry.cls.__name__: entry.cls for entry in _loaded().values()}


def command_kinds() -> dict[str, type]:
    """Kind -> class of the estimators ``fastem fit KIND`` fits, in registration order."""
    return {kind: entry.cls for kind, entry in _loaded().items() if entry.command}


def kind_of(estimator) -> str | None:
    """The kind of a registered estimator (or of its class), None for another object."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    for entry in _loaded().values():
        if entry.cls is cls:
            return entry.kind
    return None
