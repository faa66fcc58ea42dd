"""Pure numba kernels: arrays and scalars in, arrays out.

Nothing in this package sees an estimator, a dict or any Python object.
"""
