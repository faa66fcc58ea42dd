"""Data generators and independent NumPy/SciPy references shared by the tests."""

from __future__ import annotations

import numpy as np

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def blobs(n=600, n_features=3, n_components=3, seed=0, spread=6.0, dtype=np.float64):
    """Well-separated Gaussian clusters with random correlated covariances."""
    rng = np.random.RandomState(seed)
    centers = rng.uniform(-spread, spread, size=(n_components, n_features))
    parts = []
    for k in range(n_components):
        a = rng.normal(size=(n_features, n_features)) * 0.5
        cov = a @ a.T + 0.3 * np.eye(n_features)
        parts.append(rng.multivariate_normal(centers[k], cov, size=n // n_components))
    X = np.vstack(parts)
    return X[rng.permutation(len(X))].astype(dtype)


def random_covariances(rng, covariance_type, n_components, n_features):
    """Random covariances in scikit-learn's public shapes."""
    def spd():
        a = rng.normal(size=(n_features, n_features))
        return a @ a.T / n_features + 0.5 * np.eye(n_features)

    if covariance_type == "full":
        return np.array([spd() for _ in range(n_components)])
    if covariance_type == "tied":
        return spd()
    if covariance_type == "diag":
        return rng.uniform(0.3, 2.0, size=(n_components, n_features))
    return rng.uniform(0.3, 2.0, size=n_components)


def full_covariances(covariances, covariance_type, n_components, n_features):
    """(K, D, D) covariance matrices from any covariance type."""
    if covariance_type == "full":
        return np.asarray(covariances)
    if covariance_type == "tied":
        return np.repeat(np.asarray(covariances)[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covariances])
    return np.array([c * np.eye(n_features) for c in covariances])


def precisions_of(covariances, covariance_type):
    """Precisions (inverse covariances) in the public shape of the type."""
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / np.asarray(covariances)


def precisions_cholesky_of(covariances, covariance_type):
    """scikit-learn's precisions_cholesky_ (upper U with precision = U U^T) computed with NumPy."""
    if covariance_type in ("full", "tied"):
        lower = np.linalg.cholesky(covariances)
        return np.swapaxes(np.linalg.inv(lower), -1, -2)
    return 1.0 / np.sqrt(covariances)


def reference_log_prob(X, weights, means, covariances, covariance_type):
    """(n, K) weighted log-probabilities from scipy.stats.multivariate_normal."""
    from scipy.stats import multivariate_normal

    n_components, n_features = means.shape
    full = full_covariances(covariances, covariance_type, n_components, n_features)
    return np.column_stack([
        np.log(weights[k]) + multivariate_normal(means[k], full[k]).logpdf(X).reshape(-1)
        for k in range(n_components)
    ])


def with_parameters(model, weights, means, covariances):
    """Put parameters on a fitted fastem model through its public attributes."""
    ct = model.covariance_type
    model.weights_ = np.asarray(weights, dtype=np.float64)
    model.means_ = np.asarray(means, dtype=np.float64)
    model.covariances_ = np.asarray(covariances, dtype=np.float64)
    model.precisions_cholesky_ = precisions_cholesky_of(model.covariances_, ct)
    model.precisions_ = precisions_of(model.covariances_, ct)
    return model
