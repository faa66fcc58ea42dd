"""Per-commit timings of GaussianMixture (asv).

Compilation happens in ``setup`` (a warm-up fit on a slice of the data, which
compiles the same signatures), never in the timed body. Fits start from fixed
parameters with ``tol=0`` so that every commit does the same number of
iterations on the same arithmetic.
"""

import numpy as np

import fastem

SMALL = (20_000, 8, 8)
MEDIUM = (200_000, 16, 16)


def _data(n, d, k, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-5, 5, size=(k, d))
    return (centers[rng.randint(k, size=n)] + rng.normal(size=(n, d))).astype(dtype)


def _fixed_start(X, k, covariance_type):
    start = fastem.GaussianMixture(k, covariance_type=covariance_type, max_iter=0,
                                   random_state=0).fit(X)
    return dict(n_components=k, covariance_type=covariance_type, max_iter=10, tol=0.0,
                weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)


class FitPerCovarianceType:
    """Ten EM iterations from a fixed start."""

    params = (["full", "tied", "diag", "spherical"], [SMALL, MEDIUM])
    param_names = ["covariance_type", "shape"]
    timeout = 300

    def setup(self, covariance_type, shape):
        n, d, k = shape
        self.X = _data(n, d, k)
        self.kwargs = _fixed_start(self.X, k, covariance_type)
        fastem.GaussianMixture(**self.kwargs).fit(self.X[:1000])

    def time_fit_10_iterations(self, covariance_type, shape):
        fastem.GaussianMixture(**self.kwargs).fit(self.X)


class FitFloat32:
    """The float32 kernels against float64 on the same values."""

    params = (["float64", "float32"],)
    param_names = ["dtype"]

    def setup(self, dtype):
        n, d, k = MEDIUM
        self.X = _data(n, d, k, dtype=np.dtype(dtype))
        self.kwargs = _fixed_start(self.X.astype(np.float64), k, "full")
        fastem.GaussianMixture(**self.kwargs).fit(self.X[:1000])

    def time_fit_10_iterations(self, dtype):
        fastem.GaussianMixture(**self.kwargs).fit(self.X)


class PredictAndInit:
    """Streaming inference and the k-means initialisation."""

    params = ([SMALL, MEDIUM],)
    param_names = ["shape"]
    timeout = 300

    def setup(self, shape):
        n, d, k = shape
        self.k = k
        self.X = _data(n, d, k)
        self.model = fastem.GaussianMixture(k, random_state=0, max_iter=5).fit(self.X)

    def time_predict(self, shape):
        self.model.predict(self.X)

    def time_predict_proba(self, shape):
        self.model.predict_proba(self.X)

    def time_score_samples(self, shape):
        self.model.score_samples(self.X)

    def time_kmeans_initialisation(self, shape):
        fastem.GaussianMixture(self.k, random_state=0, max_iter=0).fit(self.X)

    def peakmem_fit(self, shape):
        fastem.GaussianMixture(self.k, random_state=0, max_iter=5).fit(self.X)


class FitWithMissingEntries:
    """Exact EM on 20% missing entries against the same data complete."""

    params = (["complete", "missing"],)
    param_names = ["data"]
    timeout = 300

    def setup(self, data):
        n, d, k = 200_000, 8, 8
        X = _data(n, d, k)
        self.kwargs = dict(_fixed_start(X, k, "full"), missing="marginalize")
        if data == "missing":
            X[np.random.RandomState(1).rand(*X.shape) < 0.2] = np.nan
        self.X = X
        fastem.GaussianMixture(**self.kwargs).fit(self.X[:2000])

    def time_fit_10_iterations(self, data):
        fastem.GaussianMixture(**self.kwargs).fit(self.X)
