"""Per-commit timings of GaussianMixture (asv).

Compilation happens in ``setup`` (a warm-up fit), never in the timed body.
"""

import numpy as np

import fastem


def _data(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-5, 5, size=(k, d))
    return centers[rng.randint(k, size=n)] + rng.normal(size=(n, d))


class FitPerCovarianceType:
    params = (["full", "tied", "diag", "spherical"], [(20_000, 8, 8)])
    param_names = ["covariance_type", "shape"]

    def setup(self, covariance_type, shape):
        n, d, k = shape
        self.X = _data(n, d, k)
        start = fastem.GaussianMixture(k, covariance_type=covariance_type, max_iter=0,
                                       random_state=0).fit(self.X)
        self.kwargs = dict(n_components=k, covariance_type=covariance_type, max_iter=10,
                           tol=0.0, weights_init=start.weights_, means_init=start.means_,
                           precisions_init=start.precisions_)
        fastem.GaussianMixture(**self.kwargs).fit(self.X[:1000])

    def time_fit_10_iterations(self, covariance_type, shape):
        fastem.GaussianMixture(**self.kwargs).fit(self.X)


class PredictAndInit:
    def setup(self):
        self.X = _data(50_000, 8, 8)
        self.model = fastem.GaussianMixture(8, random_state=0, max_iter=5).fit(self.X)

    def time_predict_proba(self):
        self.model.predict_proba(self.X)

    def time_score_samples(self):
        self.model.score_samples(self.X)

    def time_kmeans_initialisation(self):
        fastem.GaussianMixture(8, random_state=0, max_iter=0).fit(self.X)

    def peakmem_fit(self):
        fastem.GaussianMixture(8, random_state=0, max_iter=5).fit(self.X)
