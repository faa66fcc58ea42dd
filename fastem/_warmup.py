"""Ahead-of-time compilation of the common kernel signatures (``fastem.warmup``)."""

from __future__ import annotations

import time
import warnings


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
    from ._registry import classes

    started = time.perf_counter()
    groups = {name for name, wanted in (("float32", float32), ("hmm", hmm),
                                        ("missing", missing), ("experts", experts)) if wanted}

    def say(what):
        if verbose:
            print(f"{what}: {time.perf_counter() - started:.1f} s", flush=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Each registered estimator warms up its own kernels (a new one is registered once).
        for cls in classes().values():
            if "_warmup" in vars(cls):
                cls._warmup(groups, say)
    return time.perf_counter() - started
