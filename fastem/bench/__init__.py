"""Side-by-side benchmarks of fastem against the reference implementations.

Run ``python -m fastem.bench`` (``--quick`` for a one-minute version). What is
measured lives in :mod:`fastem.bench.mixture`; the timing and memory helpers
in :mod:`fastem.bench.measure` and :mod:`fastem.bench.peak`.
"""
