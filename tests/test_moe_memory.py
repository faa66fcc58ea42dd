"""MixtureOfExperts reads X where it is (issue 25, item 10): no design matrix, no N x K
responsibilities at the start, no copies of the data.

The kernels read the expert and gating columns of X less their centres, with implicit
intercepts; the initialisation reads chunks of rows. These tests check that this reads
exactly what the materialised design ``[1 | X_e - x_mean | 1 | X_g - u_mean | Y - y_mean |
trials]`` held (bitwise), that chunked starts equal whole-array ones (to round-off),
and that the NumPy allocations of a fit stay well below the size of the data.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

import fastem
from fastem.bench.moe import _data
from fastem.engine import Block, pass_stats
from fastem.kernels import regression as rk
from fastem.moe import design as design_module
from fastem.moe.design import ExpertRows
from fastem.moe.model import ExpertMixtureModel

EXPERTS = ("gaussian", "poisson", "binomial")
GATES = ("constant", "softmax", "gaussian")
COMBINATIONS = [(e, g) for e in EXPERTS for g in GATES]


def _fit(X, y, trials=None, sample_weight=None, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fastem.MixtureOfExperts(**options).fit(X, y, trials=trials,
                                                      sample_weight=sample_weight)


def _materialised(model, estimator, X, y, trials):
    """The design the estimator used to build: ``[Z | U | Y | n]``, centred."""
    e = np.asarray(estimator.expert_columns)
    parts = [np.ones((len(X), 1))] if estimator.fit_intercept else []
    parts.append(X[:, e] - estimator._x_mean)
    if estimator.gating != "constant":
        g = np.asarray(estimator.gating_columns)
        if estimator.gating == "softmax":
            parts.append(np.ones((len(X), 1)))
        parts.append(X[:, g] - estimator._u_mean)
    parts.append(y.reshape(len(X), -1) - estimator._y_mean)
    if estimator.expert == "binomial":
        parts.append((np.ones(len(X)) if trials is None else trials)[:, None])
    return np.ascontiguousarray(np.hstack(parts))


@pytest.mark.parametrize("expert,gating", COMBINATIONS)
def test_kernels_read_the_columns_of_x_as_the_design_matrix_held_them(expert, gating):
    """Statistics and per-row outputs from X itself (column subsets, centring, implicit
    intercepts, weights) equal bitwise those of the materialised design."""
    X, y, trials = _data(3_000, 3, 2, seed=3, expert=expert)
    X = X + np.array([5.0, -3.0, 40.0])  # centring matters
    weights = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    estimator = _fit(X, y, trials, weights, n_components=2, expert=expert, gating=gating,
                     expert_columns=[2, 0], gating_columns=[1, 2], random_state=0,
                     max_iter=5)
    model, params = estimator._model_for(), estimator._params
    table = _materialised(model, estimator, X, y, trials)
    plain = ExpertMixtureModel(2, model.n_design, 1, family=expert, gating=gating,
                               n_gate=model.n_gate, intercept=True)
    rows = ExpertRows(X, y[:, None], None if trials is None else trials[:, None])
    direct = pass_stats(model, params, [Block(rows, weights)])
    designed = pass_stats(plain, params, [Block(table, weights)])
    np.testing.assert_array_equal(direct.flat, designed.flat)
    for what in ("log_likelihood", "log_resp", "log_gate"):
        outputs = []
        for m, block in ((model, Block(rows)), (plain, Block(table))):
            out = np.empty(len(y) if what == "log_likelihood" else (len(y), 2))
            m.rows(params, block, what, out)
            outputs.append(out)
        np.testing.assert_array_equal(outputs[0], outputs[1])


def test_binomial_without_trials_reads_one_trial_per_row():
    X, y, _ = _data(2_000, 3, 2, seed=4, expert="binomial")
    y = (y > 0).astype(float)
    options = dict(n_components=2, expert="binomial", gating="softmax", random_state=0,
                   max_iter=10)
    implicit = _fit(X, y, **options)
    explicit = _fit(X, y, np.ones(len(y)), **options)
    np.testing.assert_array_equal(implicit.coef_, explicit.coef_)
    assert implicit.lower_bounds_ == explicit.lower_bounds_
    np.testing.assert_array_equal(implicit.predict(X), explicit.predict(X))


def test_read_only_inputs_fit_as_writable_ones():
    X, y, trials = _data(2_000, 3, 2, seed=5, expert="binomial")
    options = dict(n_components=2, expert="binomial", random_state=0, max_iter=10)
    writable = _fit(X, y, trials, **options)
    for array in (X, y, trials):
        array.setflags(write=False)
    read_only = _fit(X, y, trials, **options)
    np.testing.assert_array_equal(writable.coef_, read_only.coef_)
    np.testing.assert_array_equal(writable.score_samples(X, y, trials),
                                  read_only.score_samples(X, y, trials))


def test_kernel_refuses_columns_out_of_range():
    X, y = np.zeros((10, 3)), np.zeros((10, 1))
    coef, chol = np.zeros((2, 3, 1)), np.ones((2, 1, 1))
    empty2, empty3 = np.zeros((2, 0)), np.zeros((2, 0, 0))
    for ecols in ([0, 3], [-1, 0]):
        with pytest.raises(ValueError, match="ecols out of range"):
            columns = (np.array(ecols), np.zeros(2), np.zeros(0, np.int64), np.zeros(0),
                       np.array([0]), np.zeros(1), -1)
            rk.expert_stats((X, y, X), columns, np.empty(0),
                            (rk.GAUSSIAN, coef, chol, np.zeros(2)),
                            (rk.CONSTANT, empty2, empty2, empty3, np.zeros(2)),
                            np.zeros(10, np.int64), 256, 1, np.zeros(100))


# random_from_data fits a GLM expert to p + 1 rows by Newton's method: on rows that a
# hyperplane separates its coefficients diverge (1e8 after 25 steps), and round-off then
# moves them by 1e-7 relative, whole arrays or not. Its Gaussian start is well posed.
@pytest.mark.parametrize("expert,gating,init_params", [
    (e, g, i) for e, g in [("gaussian", "softmax"), ("poisson", "gaussian"),
                           ("binomial", "constant"), ("gaussian", "gaussian")]
    for i in ("random", "random_from_data", "kmeans")
    if i != "random_from_data" or e == "gaussian"])
def test_start_from_chunks_equals_the_start_from_whole_arrays(monkeypatch, expert, gating,
                                                              init_params):
    X, y, trials = _data(5_000, 3, 2, seed=6, expert=expert)
    weights = np.random.RandomState(2).uniform(0.0, 2.0, len(y))
    starts = []
    for rows in (10**9, 256, 1000):  # one chunk, unit-sized chunks, ragged chunks
        monkeypatch.setattr(design_module, "CHUNK_ROWS", rows)
        start = _fit(X, y, trials, weights, n_components=2, expert=expert, gating=gating,
                     init_params=init_params, random_state=0, max_iter=0)
        starts.append(start)
    for other in starts[1:]:
        for name in ("coef_", "intercept_", "weights_", "covariances_", "gate_coef_",
                     "gate_means_", "gate_covariances_"):
            if hasattr(starts[0], name):
                np.testing.assert_allclose(getattr(other, name), getattr(starts[0], name),
                                           rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("expert,gating,init_params", [
    (e, g, "random") for e, g in COMBINATIONS] + [
    (e, g, "random_from_data") for e, g in (("gaussian", "softmax"), ("poisson", "gaussian"),
                                            ("binomial", "constant"))])
def test_fit_allocates_well_below_the_size_of_the_data(expert, gating, init_params):
    """NumPy's allocations during fit (tracemalloc sees them; the kernels' per-unit
    buffers are bounded) stay below half the data: X, y and trials are read where they
    are. Before, with a design matrix and N x K starting responsibilities, the peak
    was 4x (Gaussian experts, constant gate) to 14x (softmax gate) the data here; the
    rows random_from_data draws kept a permutation of all rows alive per component."""
    X, y, trials = _data(400_000, 5, 4, seed=0, expert=expert)
    data = X.nbytes + y.nbytes + (0 if trials is None else trials.nbytes)
    options = dict(n_components=4, expert=expert, gating=gating, random_state=0, tol=0.0,
                   init_params=init_params)
    _fit(X[:2_000], y[:2_000], None if trials is None else trials[:2_000], max_iter=2,
         **options)
    tracemalloc.start()
    try:
        _fit(X, y, trials, max_iter=3, **options)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * data, (peak / 1e6, data / 1e6)
