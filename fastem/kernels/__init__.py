"""Pure numba kernels: arrays and scalars in, arrays out.

Nothing in this package sees an estimator, a dict or any Python object, and every
compiled function of fastem lives here (``tests/test_layout_kernels.py`` checks it).
A parallel entry point does one job (no mode flags, no placeholder arrays) and shares
serial helpers with its siblings, e.g. :mod:`.gaussian`'s ``gaussian_posterior_stats``
(the fused E-step), ``gaussian_resp_stats`` and ``gaussian_label_stats``. Every entry
point that reduces per-unit partial buffers adds them with
:func:`.reduction.add_in_order`, so the order of the additions is written once.

Sample weights are read as an ``(n,)`` float64 array, or a length-0 array for unit
weights: one compiled signature serves both, without an n-sized array of ones.
"""
