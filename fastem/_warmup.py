"""Ahead-of-time compilation of the common kernel signatures (``fastem.warmup``)."""

from __future__ import annotations

import time
import warnings

import numpy as np

from .components.structures import names as structure_names


def warmup(float32: bool = True, hmm: bool = True, missing: bool = True,
           experts: bool = True, verbose: int = False) -> float:
    """Compile (or load from the on-disk cache) the kernels that fits commonly use.

    Call it once at service start-up or in a Docker build step, so that the
    first request does not pay for compilation. Before starting Dask workers, run
    it in a process of its own (``fastem warmup``): numba's code for a kernel it
    compiles in the running process can differ at round-off from the code it
    loads from its cache, so processes that are to agree bitwise (a client and
    its workers) should all load the kernels from the cache. Compiled kernels are cached on
    disk next to fastem's sources, or in numba's user-wide cache directory
    when that is read-only (``NUMBA_CACHE_DIR`` moves it).

    Parameters
    ----------
    float32 : bool, default=True
        Also compile the float32 kernels of GaussianMixture.
    hmm : bool, default=True
        Also compile the HMM kernels (Gaussian and categorical emissions).
    missing : bool, default=True
        Also compile the missing-data kernels (``missing="marginalize"``).
    experts : bool, default=True
        Also compile the mixture-of-experts kernels.
    verbose : bool, default=False
        Print what was compiled and how long it took.

    Returns
    -------
    seconds : float
        Time taken.
    """
    from . import CategoricalHMM, GaussianHMM, GaussianMixture, MixtureOfExperts

    started = time.perf_counter()
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 3))
    dtypes = (np.float64, np.float32) if float32 else (np.float64,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dtype in dtypes:
            data = X.astype(dtype)
            for covariance_type in structure_names():
                model = GaussianMixture(2, covariance_type=covariance_type, max_iter=2,
                                        random_state=0).fit(data)
                model.score_samples(data)
                model.predict_proba(data)
                model.predict(data)  # its own kernel (gaussian_best)
            if verbose:
                print(f"GaussianMixture {np.dtype(dtype).name}: "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
        if missing:
            holes = X.copy()
            holes[::5, 1] = np.nan
            GaussianMixture(2, max_iter=2, random_state=0, missing="marginalize").fit(holes)
            if verbose:
                print(f"missing data: {time.perf_counter() - started:.1f} s", flush=True)
        if hmm:
            model = GaussianHMM(2, n_iter=2, random_state=0).fit(X, [32, 32])
            model.score(X)
            model.decode(X)
            symbols = rng.randint(3, size=(64, 1))
            CategoricalHMM(2, n_iter=2, random_state=0).fit(symbols).decode(symbols)
            if verbose:
                print(f"HMMs: {time.perf_counter() - started:.1f} s", flush=True)
        if experts:
            y = X[:, 0] + rng.normal(size=len(X))
            # One kernel serves every expert family and gate (run-time switches).
            model = MixtureOfExperts(2, max_iter=2, random_state=0).fit(X, y)
            model.score_samples(X, y)
            model.predict_proba(X, y)
            if verbose:
                print(f"mixtures of experts: {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter() - started
