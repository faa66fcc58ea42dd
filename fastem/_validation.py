"""Input and hyperparameter validation shared by every estimator.

Errors a user can cause are ValueError/TypeError whose message names the
argument, what was expected and what was given. Inputs are never modified.
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float64, np.float32)
MAX_SAMPLE_VALUES = 1 << 31
"""Most values ``sample`` draws in one call (16 GiB of float64); draw larger sets in batches."""
MAX_N_INIT = 100_000
"""More initialisations than this is a mistake (it would run for days), not a request."""


def _describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_array(X, *, name="X", min_samples=1, ensure_2d=True, estimator=None,
                allow_nan=False) -> np.ndarray:
    """Return X as a C-contiguous float32/float64 array, or raise a clear error.

    float32 stays float32 (the kernels accumulate in float64); every other
    numeric dtype becomes float64. The caller's array is never written to.
    """
    owner = f" by {estimator}" if estimator else ""
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name}: sparse input is not supported; pass a dense array (e.g. {name}.toarray())."
        )
    try:
        array = np.asarray(X)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array of numbers; could not convert it: {error}") \
            from None
    kind = array.dtype.kind
    if kind in "USV":
        raise TypeError(f"{name} must contain numbers, got an array of dtype {array.dtype} "
                        "(strings or bytes).")
    if kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {array.dtype}.")
    if kind == "O":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must contain numbers; converting its object entries to "
                            f"float failed: {error}") from None
    if kind in "mM":
        raise TypeError(f"{name} must contain numbers, got dtype {array.dtype}.")
    if array.dtype not in FLOAT_DTYPES:
        array = array.astype(np.float64)
    if array.ndim == 0:
        raise ValueError(f"{name} must be an array, got a scalar ({_describe(X)}).")
    if ensure_2d and array.ndim != 2:
        raise ValueError(
            f"Expected 2D array for {name} of shape (n_samples, n_features), got a {array.ndim}-D "
            f"array of shape {array.shape}. Reshape your data either using array.reshape(-1, 1) "
            "if it has a single feature or array.reshape(1, -1) if it contains a single sample."
        )
    if array.shape[0] < min_samples:
        raise ValueError(
            f"Found array with {array.shape[0]} sample(s) (shape={array.shape}) while a minimum "
            f"of {min_samples} is required{owner} ({name})."
        )
    if ensure_2d and array.shape[1] < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is "
            f"required{owner} ({name})."
        )
    if not allow_nan:
        _check_finite(array, name)
    if array.dtype == np.float32 and array.size and not _float32_is_safe(array):
        # Squared deviations of such values overflow the float32 kernels' per-unit sums:
        # run the float64 kernels instead (a copy only for this rare data).
        array = array.astype(np.float64)
    return np.ascontiguousarray(array)


def _float32_is_safe(array) -> bool:
    """True when squared deviations of ``array``'s values, summed over a work unit of
    256 rows and all features with a 16x margin, stay far from float32's maximum."""
    # fmax/fmin skip NaN (missing entries) and allocate nothing.
    high = float(np.fmax.reduce(array, axis=None))
    low = float(np.fmin.reduce(array, axis=None))
    peak = max(abs(high), abs(low)) if not np.isnan(high) else 0.0
    columns = array.shape[1] if array.ndim == 2 else 1
    limit = np.sqrt(float(np.finfo(np.float32).max) / (4.0 * 256.0 * 16.0 * columns))
    return peak <= limit


def _check_finite(array, name):
    # One summation usually proves finiteness; scan only if it overflows or is NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum(dtype=np.float64)):
            return
    if np.isnan(array).any():
        # scikit-learn's words first (callers match them), then the remedy fastem offers.
        raise ValueError(f"Input {name} contains NaN. To treat NaN as a missing entry, set "
                         "missing=\"marginalize\" (fastem fit: --missing marginalize).")
    if not np.isfinite(array).all():
        raise ValueError(f"Input {name} contains infinity or a value too large for "
                         f"dtype({array.dtype.name!r}).")


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate ``sample_weight``: 1-D, length n_samples, finite, >= 0, not all zero."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    weights = check_array(sample_weight, name="sample_weight", ensure_2d=False, min_samples=0,
                          allow_nan=True)
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},) to match X, got shape "
                         f"{weights.shape}.")
    weights = weights.astype(np.float64)
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight must be finite, got NaN or infinity.")
    if np.any(weights < 0):
        raise ValueError(f"sample_weight must be non-negative, got minimum {weights.min()!r}.")
    if not np.any(weights > 0):
        raise ValueError("sample_weight must have at least one positive entry, got all zeros.")
    return weights


def check_int(value, name, low, high=None) -> int:
    """An integer in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)} "
                        f"of type {type(value).__name__}.")
    upper = "inf" if high is None else high
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int in the range [{low}, {upper}], got {value!r}.")
    return int(value)


def check_real(value, name, low, allow_infinite=False) -> float:
    """A real number >= low: finite, or with ``allow_infinite`` also +-inf (never NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)} "
                        f"of type {type(value).__name__}.")
    if allow_infinite:
        if np.isnan(value) or value < low:
            raise ValueError(f"{name} must be a real number >= {low} (not NaN), got "
                             f"{value!r}.")
    elif not np.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite real number >= {low}, got {value!r}.")
    return float(value)


def check_option(value, name, options) -> str:
    """One of a set of strings."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, got {_describe(value)}.")
    return value


def check_bool(value, name) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}.")
    return bool(value)


def check_random_state(seed) -> np.random.RandomState:
    """None -> numpy's global RandomState; int -> a new RandomState; RandomState -> itself."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2**32:
            raise ValueError(f"random_state must be an int in [0, 2**32 - 1], got {seed!r}.")
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    raise TypeError(f"random_state must be None, an int or a numpy RandomState, got "
                    f"{_describe(seed)}.")


def check_parameter_array(value, name, shape) -> np.ndarray:
    """A user-supplied parameter array (e.g. ``means_init``): finite float64 of a given shape.

    ``None`` in ``shape`` accepts any size along that axis.
    """
    array = check_array(value, name=name, ensure_2d=False, min_samples=0)
    if array.ndim != len(shape) or any(
            want is not None and got != want
            for got, want in zip(array.shape, shape, strict=False)):
        raise ValueError(f"The parameter '{name}' should have the shape of {tuple(shape)}, "
                         f"but got {array.shape}")
    return np.array(array, dtype=np.float64)  # a private copy


MAX_EXACT_INTEGER = 2**53
"""Largest integer below which every integer is exact in float64: counts and symbols
beyond it cannot even be checked for being integers."""


def check_nonnegative_integers(array, name, *, below=None, below_name=None,
                               noun="value") -> int:
    """Check that ``array`` holds non-negative integers (< ``below`` when given, and
    <= 2**53 in any case) and return the largest, as a Python int (-1 when empty).

    The checks run in the array's own dtype, before any cast: a uint64 value of
    2**63 or more is refused here instead of wrapping to a negative index.
    """
    kind = array.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name} must hold non-negative integer {noun}s, got dtype "
                        f"{array.dtype}.")
    if array.size == 0:
        return -1
    if kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinity; it must hold non-negative "
                             f"integer {noun}s.")
        if not np.array_equal(array, np.floor(array)):
            raise ValueError(f"{name} must hold non-negative integer {noun}s, got fractional "
                             "values.")
    low, high = array.min(), array.max()
    if low < 0:
        raise ValueError(f"{name} must hold non-negative integer {noun}s, got {low.item()!r}.")
    high = int(high)
    if high > MAX_EXACT_INTEGER:
        raise ValueError(f"{name} holds {noun} {float(high):.4g}, beyond 2**53 (the largest "
                         "exactly representable integer).")
    if below is not None and high >= below:
        raise ValueError(f"{name} holds {noun} {high}, but {below_name or 'the limit'} is "
                         f"{below} ({noun}s must be < {below}).")
    return high


def check_prior(value, name, shape, low=None) -> np.ndarray:
    """A prior hyperparameter: finite reals (>= ``low``) that broadcast to ``shape``.

    Returns a read-only float64 view of ``shape``.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real number or an array of real numbers, got "
                        f"{_describe(value)} (dtype {array.dtype}).")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity.")
    if low is not None and array.size and array.min() < low:
        raise ValueError(f"{name} must be >= {low}, got {array.min()!r}.")
    shape = tuple(int(s) for s in shape)
    try:
        fits = np.broadcast_shapes(array.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} must be a scalar or an array that broadcasts to shape "
                         f"{shape}, got shape {array.shape}.")
    return np.broadcast_to(array, shape)


def check_fitted_scalars(estimator, integers=(), flags=(), reals=(), real_lists=()):
    """Type checks of scalar fitted attributes (e.g. read from a model file)."""
    for name in integers:
        if hasattr(estimator, name):
            check_int(getattr(estimator, name), name, 0)
    for name in flags:
        if hasattr(estimator, name):
            check_bool(getattr(estimator, name), name)
    for name in reals:
        if hasattr(estimator, name):
            value = getattr(estimator, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
                raise ValueError(f"{name} must be a real number, got {_describe(value)}.")
    for name in real_lists:
        if hasattr(estimator, name):
            values = getattr(estimator, name)
            if not isinstance(values, list) or not all(
                    isinstance(x, numbers.Real) and not isinstance(x, bool) and not np.isnan(x)
                    for x in values):
                raise ValueError(f"{name} must be a list of real numbers (not NaN).")


def check_consistent(value, expected, name, source):
    """``value`` (a derived parameter) must agree with ``expected`` (recomputed from
    ``source``) to rounding."""
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    if not np.allclose(value, expected, rtol=1e-6, atol=1e-9 * scale):
        raise ValueError(f"{name} does not agree with {source}.")
