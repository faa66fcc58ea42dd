"""scikit-learn estimator conventions without a dependency on scikit-learn.

get_params/set_params/clone/repr follow scikit-learn's contract (constructor
arguments are stored unchanged, one attribute each), so fastem estimators work
in Pipelines, GridSearchCV and ``sklearn.base.clone``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
import weakref
from typing import Any

import numpy as np

from . import io
from ._registry import register
from ._typing import Method, PathLike, Self
from .engine.monitor import ConvergenceMonitor
from .exceptions import NotFittedError, compatible, interruption


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def fitting_lock(estimator: Any) -> threading.RLock:
    """The lock that serialises the fitting calls of one estimator.

    It lives beside the estimator rather than in it, so that pickling, copying,
    ``clone`` and model files never see it. Re-entrant: a fitting method may call
    another (``fit_predict`` calls ``fit``).
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
    return lock


def transactional(fit_method: Method) -> Method:
    """Make a fitting method all-or-nothing, and one call at a time per estimator.

    If it raises anything, KeyboardInterrupt included (a callback that fails,
    Ctrl-C, a degenerate component), the estimator's attributes are put back
    exactly as they were before the call: a refit never leaves parameters of the
    new data beside ``n_features_in_`` of the old. A shallow copy suffices
    because fitting assigns new arrays and never writes into fitted ones.

    Calls on one estimator from several threads run one after the other (each
    ``partial_fit`` counts), and Ctrl-C inside a kernel is raised as the
    KeyboardInterrupt itself, so that ``except KeyboardInterrupt`` works.
    """

    @functools.wraps(fit_method)
    def fit_all_or_nothing(self, *args, **kwargs):
        with fitting_lock(self):
            saved = dict(vars(self))
            try:
                return fit_method(self, *args, **kwargs)
            except BaseException as error:
                # Put back without emptying first: a reader in another thread never sees
                # an estimator without its attributes.
                state = vars(self)
                for key in [key for key in state if key not in saved]:
                    del state[key]
                state.update(saved)
                interrupt = interruption(error)
                if interrupt is not None and interrupt is not error:
                    raise interrupt from None
                raise

    return fit_all_or_nothing  # type: ignore[return-value]  (same signature, wrapped)


class _Requests(dict):
    """Per-method metadata requests (method -> sample_weight request)."""

    def __sklearn_clone__(self):
        return _Requests(self)


class _Unchanged:
    def __repr__(self):
        return "UNCHANGED"


_UNCHANGED = _UNCHANGED_SENTINEL = _Unchanged()  # scikit-learn's UNCHANGED, without importing it


class EstimatorBase:
    """Parameter handling shared by all fastem estimators.

    A concrete estimator registers itself in its class statement,
    ``class GaussianMixture(EstimatorBase, kind="gmm")`` (see :mod:`fastem._registry`):
    model files, the command line and warmup then know it.
    """

    def __init_subclass__(cls, *, kind: str | None = None, command: bool = True, **kwargs):
        super().__init_subclass__(**kwargs)
        if kind is not None:
            register(cls, kind, command)

    #: scikit-learn's estimator type ("density_estimator" for the mixtures).
    _estimator_type_tag: str | None = None

    @classmethod
    def _parameter_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(
            name for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters of this estimator, as a dict."""
        return {name: getattr(self, name) for name in self._parameter_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters; validation happens in ``fit``."""
        valid = set(self._parameter_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: {sorted(valid)!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={getattr(self, name)!r}" for name in self._parameter_names()
            if not _same(getattr(self, name), defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def save(self, path: PathLike) -> None:
        """Write this estimator to ``path`` (see :func:`fastem.io.save`); read it back with
        :func:`fastem.load`. The format executes nothing on load."""
        io.save(self, path)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "n_features_in_")

    # -- model files ----------------------------------------------------------
    #: Fitted attributes that a model file must hold (all of them, or none).
    _required_fitted: tuple = ()
    #: Fitted attributes that a model file may hold besides.
    _optional_fitted: tuple = ()

    #: The fit driver keeps scikit-learn's record of a run (converged_, n_iter_,
    #: lower_bound_, lower_bounds_) and warns when it did not converge; hmmlearn's
    #: estimators keep monitor_ only (:mod:`fastem.engine.driver`).
    _records_run: bool = True

    @classmethod
    def _warmup(cls, groups: set, say) -> None:
        """Compile (or load from the cache) the kernels common fits of this estimator run,
        for :func:`fastem.warmup`'s enabled ``groups`` ({"float32", "hmm", "missing",
        "experts"}); ``say(what)`` reports a step. A registered class that defines it in
        its own body is warmed up (subclasses do not repeat their base's)."""

    @classmethod
    def _saved_attributes(cls):
        """Attributes a model file may set: name -> None, or the class of a nested object
        (every fit's ``monitor_``: a :class:`~fastem.engine.ConvergenceMonitor`)."""
        return {**dict.fromkeys(cls._required_fitted + cls._optional_fitted),
                "monitor_": ConvergenceMonitor}

    def _require_fitted_attributes(self):
        absent = [name for name in self._required_fitted if not hasattr(self, name)]
        if absent:
            raise ValueError(f"incomplete fitted {type(self).__name__}: {', '.join(absent)} "
                             "missing")

    def _validate_loaded(self):
        """Validate a model read from a file: every fitted attribute, and their shapes
        against each other. Subclasses extend it."""
        self._require_fitted_attributes()
        names = getattr(self, "feature_names_in_", None)
        if names is not None and not (isinstance(names, np.ndarray) and names.ndim == 1
                                      and all(isinstance(n, str) for n in names)):
            raise ValueError("feature_names_in_ must be a list of column names")
        column = getattr(self, "sequence_column_", None)
        if column is not None and not isinstance(column, str):
            raise ValueError("sequence_column_ must be a column name")

    def _check_is_fitted(self):
        if not self.__sklearn_is_fitted__():
            raise compatible(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    # -- scikit-learn metadata routing -------------------------------------------
    #: Methods that accept ``sample_weight`` (scikit-learn routes it to them on request).
    _weighted_methods: tuple = ("fit",)

    def _request(self, method, sample_weight):
        if method not in self._weighted_methods:
            raise TypeError(f"{type(self).__name__}.{method} takes no sample_weight")
        if sample_weight is not _UNCHANGED:
            if not (sample_weight is None or isinstance(sample_weight, (bool, str))):
                raise TypeError(f"sample_weight must be True, False, None or an alias name, "
                                f"got {sample_weight!r}")
            # scikit-learn's clone copies this attribute (through __sklearn_clone__).
            requests = self.__dict__.setdefault("_metadata_request", _Requests())
            requests[method] = sample_weight
        return self

    def set_fit_request(self, *, sample_weight: bool | str | None = _UNCHANGED_SENTINEL) -> Self:
        """Request ``sample_weight`` in ``fit`` under scikit-learn's metadata routing
        (``sklearn.set_config(enable_metadata_routing=True)``): True, False, None
        (error if given) or an alias."""
        return self._request("fit", sample_weight)

    def get_metadata_routing(self) -> Any:
        """The metadata this estimator requests, as scikit-learn's ``MetadataRequest``."""
        from sklearn.utils.metadata_routing import MetadataRequest

        request = MetadataRequest(owner=type(self).__name__)
        requests = self.__dict__.get("_metadata_request", {})
        if not isinstance(requests, dict):
            requests = {}
        for method in self._weighted_methods:
            getattr(request, method).add_request(param="sample_weight",
                                                 alias=requests.get(method))
        return request

    def __sklearn_tags__(self):
        # Only scikit-learn's own tools call this, so scikit-learn is importable here.
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type=self._estimator_type_tag,
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=False, sparse=False),
        )


def shippable(estimator):
    """``estimator`` as sent to other processes (Dask workers): without its callback.
    Callbacks observe fits where they run, and may hold what cannot be sent (a
    terminal, a lock, a progress bar)."""
    if getattr(estimator, "callback", None) is None:
        return estimator
    estimator = copy.copy(estimator)
    estimator.callback = None
    return estimator
