"""Every registered covariance structure (and its per-group scope) against brute force on
full matrices: a new structure is tested here by being registered."""

import numpy as np
import pytest

from fastem.components.structures import MASS_EPS, STRUCTURES

K, D = 3, 4
ALL = sorted(STRUCTURES)


def _random_covariances(structure, seed=0, n_components=K):
    """Covariances in the structure's shape, from random SPD matrices."""
    rng = np.random.RandomState(seed)
    a = rng.normal(size=(n_components, D, D))
    full = a @ np.swapaxes(a, 1, 2) + D * np.eye(D)
    return _project(structure, full, n_components)


def _project(structure, full, n_components):
    """The structure's covariances closest in form to ``full`` (K, D, D)."""
    shape = structure.precisions_shape(n_components, D)
    if structure.diagonal:
        variances = np.einsum("kii->ki", full)
        if len(shape) == 1 and shape[0] == n_components:  # one variance per component
            return variances.mean(axis=1)
        return variances[0] if structure.shared else variances
    return full[0] if structure.shared else full


@pytest.mark.parametrize("name", ALL)
def test_factors_log_determinants_and_full_matrices_agree(name):
    structure = STRUCTURES[name]
    cov = _random_covariances(structure)
    assert cov.shape == structure.precisions_shape(K, D)
    full = structure.to_full(cov, K, D)
    assert full.shape == (K, D, D)
    for k in range(K):
        np.testing.assert_array_equal(structure.one_full(cov, k, D), full[k])
    chol = structure.precisions_cholesky(cov, 0.0)
    np.testing.assert_allclose(structure.covariances_from_cholesky(chol), cov, rtol=1e-12)
    np.testing.assert_allclose(structure.cholesky_from_precisions(structure.precisions(chol)),
                               chol, rtol=1e-10)
    _, log_det = np.linalg.slogdet(full)
    np.testing.assert_allclose(structure.log_det(chol, K, D), -0.5 * log_det, rtol=1e-12)
    factor = structure.kernel_factor(chol, K, D)
    rng = np.random.RandomState(1)
    x = rng.normal(size=(5, D))
    for k in range(K):
        u = factor[0 if factor.shape[0] == 1 else k]
        if u.shape[0] == 1:  # a diagonal factor
            maha = ((x * u[0]) ** 2).sum(axis=1)
        else:
            maha = ((x @ u) ** 2).sum(axis=1)
        expected = np.einsum("ia,ab,ib->i", x, np.linalg.inv(full[k]), x)
        np.testing.assert_allclose(maha, expected, rtol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_is_the_free_entries(name):
    structure = STRUCTURES[name]
    cov = _random_covariances(structure)
    matrices = 1 if structure.shared else K
    per_matrix = cov.size // matrices
    free = D * (D + 1) // 2 if not structure.diagonal else per_matrix
    assert structure.n_covariance_parameters(K, D) == matrices * free


@pytest.mark.parametrize("name", ALL)
def test_ml_covariances_are_the_weighted_scatter(name):
    structure = STRUCTURES[name]
    rng = np.random.RandomState(2)
    X = rng.normal(size=(200, D)) * [1.0, 2.0, 0.5, 3.0]
    resp = rng.dirichlet(np.ones(K), size=200)
    shift = rng.normal(size=(K, D))
    centred = X[:, None, :] - shift[None]  # moments about the shift, as the kernels keep
    N = resp.sum(axis=0)
    S = np.einsum("ik,ikd->kd", resp, centred)
    outer = np.einsum("ik,ika,ikb->kab", resp, centred, centred)
    Q = np.einsum("kii->ki", outer) if structure.diagonal else outer
    nk = N + MASS_EPS
    delta = S / nk[:, None]
    cov = structure.covariances(N, nk, S, Q, shift, delta, 1e-6)
    means = shift + delta
    scatter = np.einsum("ik,ika,ikb->kab", resp, X[:, None] - means, X[:, None] - means)
    if structure.shared:
        expected = np.repeat((scatter.sum(axis=0) / nk.sum())[None], K, axis=0)
    else:
        expected = scatter / nk[:, None, None]
    if structure.diagonal:
        expected = np.einsum("kii->ki", expected)
        if cov.shape == (K,):  # one variance: the mean of the diagonal
            expected = expected.mean(axis=1)
        expected = expected + 1e-6
        expected = expected[0] if structure.shared else expected
    else:
        expected = expected + 1e-6 * np.eye(D)
        expected = expected[0] if structure.shared else expected
    np.testing.assert_allclose(cov, expected, rtol=1e-10)


@pytest.mark.parametrize("name", ALL)
def test_initial_values_from_one_matrix(name):
    structure = STRUCTURES[name]
    a = np.random.RandomState(3).normal(size=(D, D))
    matrix = a @ a.T + np.eye(D)
    full = structure.to_full(structure.from_full(matrix, K), K, D)
    if not structure.diagonal:
        expected = matrix
    elif structure.precisions_shape(K, D) == (K,):
        expected = np.diag(matrix).mean() * np.eye(D)
    else:
        expected = np.diag(np.diag(matrix))
    np.testing.assert_allclose(full, np.repeat(expected[None], K, axis=0), rtol=1e-12)


@pytest.mark.parametrize("name", [n for n in ALL if STRUCTURES[n].shared])
def test_per_group_scope_gives_each_component_its_groups_matrix(name):
    m = 2
    grouped = STRUCTURES[name].within_groups(m)
    form = grouped.form
    cov = _random_covariances(form, seed=4, n_components=K)  # one matrix per group
    assert cov.shape == grouped.precisions_shape(K * m, D)
    assert grouped.group_shape(K, m, D) == cov.shape
    chol = grouped.precisions_cholesky(cov, 0.0)
    np.testing.assert_array_equal(grouped.kernel_factor(chol, K * m, D),
                                  np.repeat(form.kernel_factor(chol, K, D), m, axis=0))
    np.testing.assert_array_equal(grouped.log_det(chol, K * m, D),
                                  np.repeat(form.log_det(chol, K, D), m))
    full = grouped.to_full(cov, K * m, D)
    for component in range(K * m):
        np.testing.assert_array_equal(full[component], form.one_full(cov, component // m, D))
        np.testing.assert_array_equal(grouped.one_full(cov, component, D), full[component])
    assert grouped.n_covariance_parameters(K * m, D) == form.n_covariance_parameters(K, D)


@pytest.mark.parametrize("name", [n for n in ALL if not STRUCTURES[n].shared])
def test_per_component_structures_are_their_own_groups(name):
    assert STRUCTURES[name].within_groups(3) is STRUCTURES[name]
