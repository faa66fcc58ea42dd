"""The engine's capabilities on every model: additive statistics, thread invariance,
SQUAREM, online EM, streamed exact EM and the restart fixes."""

import numpy as np
import pytest
from helpers import COVARIANCE_TYPES, blobs

import fastem
from fastem.engine import UNIT_ROWS, Block, StreamBackend, pass_stats
from fastem.hmm.base import BaumWelchModel
from fastem.mixture.component import gaussian_layout
from fastem.mixture.covariance import SPECS
from fastem.mixture.missing import MissingGaussianMixtureModel
from fastem.mixture.model import GaussianMixtureModel

HMM_KINDS = ["gaussian-diag", "gaussian-full", "gmm", "categorical", "poisson", "multinomial"]


def _true_hmm(kind, seed=0):
    """A well-specified HMM of each kind, with parameters set (used to sample data)."""
    rng = np.random.RandomState(seed)
    k = 3
    if kind.startswith("gaussian"):
        covariance_type = kind.split("-")[1]
        model = fastem.GaussianHMM(k, covariance_type)
        model.means_ = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
        model.covars_ = {"diag": np.ones((k, 2)), "full": np.tile(np.eye(2), (k, 1, 1))}[
            covariance_type]
    elif kind == "gmm":
        model = fastem.GMMHMM(k, n_mix=2, covariance_type="diag")
        model.means_ = rng.normal(scale=8.0, size=(k, 2, 2))
        model.covars_ = np.ones((k, 2, 2))
        model.weights_ = np.full((k, 2), 0.5)
    elif kind == "categorical":
        model = fastem.CategoricalHMM(k)
        model.emissionprob_ = np.array([[0.8, 0.1, 0.1, 0.0], [0.1, 0.8, 0.05, 0.05],
                                        [0.0, 0.1, 0.1, 0.8]])
    elif kind == "poisson":
        model = fastem.PoissonHMM(k)
        model.lambdas_ = np.array([[1.0, 6.0], [6.0, 1.0], [10.0, 10.0]])
    else:
        model = fastem.MultinomialHMM(k, n_trials=6)
        model.emissionprob_ = np.array([[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]])
    model.startprob_ = np.array([0.5, 0.3, 0.2])
    model.transmat_ = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    return model


def _hmm_data(kind, n_sequences=12, length=150, seed=0):
    model = _true_hmm(kind, seed)
    parts = [model.sample(length, random_state=seed * 1000 + s)[0] for s in range(n_sequences)]
    return model, np.concatenate(parts), [length] * n_sequences


def _fresh(kind, **kwargs):
    """An unfitted estimator of the kind's class and shape."""
    model = _true_hmm(kind)
    params = model.get_params()
    params.update(random_state=0, **kwargs)
    return type(model)(**params)


# -- additivity -----------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mixture_statistics_add_up_bitwise_over_unit_aligned_blocks(covariance_type):
    X = blobs(n=5 * UNIT_ROWS + 77, n_features=3, seed=2)
    fitted = fastem.GaussianMixture(3, covariance_type=covariance_type, max_iter=2,
                                    random_state=0).fit(X)
    params = fitted._get_parameters()
    model = GaussianMixtureModel(SPECS[covariance_type], 3, 3, 1e-6, "kmeans")
    whole = pass_stats(model, params, [Block(X)])
    cut = 2 * UNIT_ROWS
    blocks = pass_stats(model, params, [Block(X[:cut]), Block(X[cut:])])
    np.testing.assert_array_equal(blocks.flat, whole.flat)
    # Separately computed statistics add up (to rounding: the sums associate differently).
    a = pass_stats(model, params, [Block(X[:100])])
    b = pass_stats(model, params, [Block(X[100:])])
    np.testing.assert_allclose((a + b).flat, whole.flat, rtol=1e-12, atol=1e-9)


def test_missing_data_statistics_add_up():
    X = blobs(n=900, n_features=4, seed=3)
    rng = np.random.RandomState(0)
    X[rng.rand(*X.shape) < 0.15] = np.nan
    fitted = fastem.GaussianMixture(3, max_iter=2, random_state=0, missing="marginalize").fit(X)
    params = fitted._get_parameters()
    model = MissingGaussianMixtureModel(SPECS["full"], 3, 4, 1e-6, "kmeans")
    whole = pass_stats(model, params, [Block(X)])
    parts = pass_stats(model, params, [Block(X[:400]), Block(X[400:])])
    np.testing.assert_allclose(parts.flat, whole.flat, rtol=1e-11, atol=1e-9)


@pytest.mark.parametrize("kind", HMM_KINDS)
def test_hmm_statistics_add_up_over_groups_of_sequences(kind):
    truth, X, lengths = _hmm_data(kind)
    estimator = _fresh(kind)
    estimator._check_common()
    X, missing = estimator._validate(X, fitting=True)
    params = truth._current_parameters()
    model = estimator._composite(estimator._n_emission_features(X))
    bounds = np.cumsum([0] + lengths)
    whole = pass_stats(model, params, [Block(X, None, bounds)])
    cut = 5
    first = Block(X[:bounds[cut]], None, bounds[:cut + 1])
    second = Block(X[bounds[cut]:], None, bounds[cut:] - bounds[cut])
    parts = pass_stats(model, params, [first, second])
    np.testing.assert_allclose(parts.flat, whole.flat, rtol=1e-11, atol=1e-9)
    a = pass_stats(model, params, [first])
    b = pass_stats(model, params, [second])
    np.testing.assert_allclose((a + b).flat, whole.flat, rtol=1e-11, atol=1e-9)
    assert whole.weight == len(X)
    np.testing.assert_allclose(whole.loglik, truth.score(X, lengths), rtol=1e-12)


def test_gaussian_statistics_recentre_exactly():
    X = blobs(n=700, n_features=3, seed=5)
    fitted = fastem.GaussianMixture(3, max_iter=2, random_state=0).fit(X)
    params = fitted._get_parameters()
    model = GaussianMixtureModel(SPECS["full"], 3, 3, 1e-6, "kmeans")
    stats = pass_stats(model, params, [Block(X)])
    other = params.means + np.array([1.0, -2.0, 0.5])
    direct = gaussian_layout(3, 3, False).zeros(other)
    model._add_stats(Block(X), direct, *model.prepare(params), other, 0)
    np.testing.assert_allclose(stats.recentred(other).flat, direct.flat, rtol=1e-9, atol=1e-8)


# -- threads ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", HMM_KINDS)
def test_hmm_fits_do_not_depend_on_the_thread_count(kind):
    _, X, lengths = _hmm_data(kind)
    fits = [_fresh(kind, n_iter=5, n_threads=n).fit(X, lengths) for n in (1, 2)]
    for name in fits[0]._required_fitted:
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    assert fits[0].monitor_.history == fits[1].monitor_.history


def test_missing_data_fit_does_not_depend_on_the_thread_count():
    X = blobs(n=2000, n_features=4, seed=6)
    X[np.random.RandomState(1).rand(*X.shape) < 0.1] = np.nan
    fits = [fastem.GaussianMixture(3, max_iter=5, tol=0, random_state=0, n_threads=n,
                                   missing="marginalize").fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


# -- SQUAREM ------------------------------------------------------------------------
def _overlapping(n=4000, seed=0):
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.normal(0.0, 1.0, (n // 2, 2)), rng.normal(1.2, 1.3, (n // 2, 2))])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_squarem_is_monotone_and_needs_fewer_passes(covariance_type):
    X = _overlapping()
    kwargs = dict(covariance_type=covariance_type, random_state=0, tol=1e-10, max_iter=5000,
                  reg_covar=0.0)
    plain = fastem.GaussianMixture(2, **kwargs).fit(X)
    fast = fastem.GaussianMixture(2, acceleration="squarem", **kwargs).fit(X)
    steps = np.diff(fast.lower_bounds_)
    assert np.all(steps >= -1e-12 * np.abs(fast.lower_bounds_[:-1]))
    assert fast.converged_ and fast.n_iter_ < plain.n_iter_
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-8


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_squarem_reaches_the_plain_em_optimum_on_separated_data(covariance_type):
    X = blobs(n=3000, n_features=3, seed=7, spread=5.0)
    kwargs = dict(covariance_type=covariance_type, random_state=0, tol=1e-13, max_iter=2000)
    plain = fastem.GaussianMixture(3, **kwargs).fit(X)
    fast = fastem.GaussianMixture(3, acceleration="squarem", **kwargs).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(fast, name), getattr(plain, name), rtol=1e-6,
                                   atol=1e-8)


class _Infeasible(GaussianMixtureModel):
    def unpack(self, vector, like):
        raise ValueError("no valid parameters")


class _Worse(GaussianMixtureModel):
    def unpack(self, vector, like):
        params = super().unpack(vector, like)
        params.means = params.means + 50.0  # far from every row: a much lower objective
        return params


@pytest.mark.parametrize("model_class", [_Infeasible, _Worse])
def test_rejected_extrapolations_fall_back_to_plain_em(model_class):
    from fastem.engine import LocalBackend, Squarem, run_em

    X = _overlapping(2000, seed=1)
    runs = []
    for cls, schedule in ((GaussianMixtureModel, None), (model_class, Squarem())):
        model = cls(SPECS["full"], 2, 2, 0.0, "kmeans")
        runs.append(run_em(model, LocalBackend([Block(X)]), schedule=schedule, n_init=1,
                           max_iter=40, tol=0.0, random_state=np.random.RandomState(0)))
    plain, fallback = runs
    # Every trial was rejected: the accepted iterates are exactly plain EM's.
    assert fallback.history == plain.history[:len(fallback.history)]
    assert fallback.n_iter == 40 and schedule.n_rejected > 0
    if model_class is _Worse:  # each rejected trial cost one pass
        # (the run may end with a trial proposed but not yet evaluated)
        assert schedule.n_trials - schedule.n_rejected in (0, 1)
        assert len(fallback.history) == 40 - schedule.n_rejected
    else:  # no valid parameters: rejected before any pass
        assert schedule.n_trials == 0 and len(fallback.history) == 40


@pytest.mark.parametrize("kind", HMM_KINDS)
def test_every_hmm_accepts_squarem(kind):
    _, X, lengths = _hmm_data(kind, seed=1)
    plain = _fresh(kind, n_iter=300, tol=1e-6).fit(X, lengths)
    fast = _fresh(kind, n_iter=300, tol=1e-6, acceleration="squarem").fit(X, lengths)
    history = np.asarray(fast.monitor_.history)
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[:-1]))
    assert not fast.monitor_.decreased
    assert fast.score(X, lengths) >= plain.score(X, lengths) - 1e-6 * len(X)


def test_bad_acceleration_is_a_clear_error():
    X = blobs(n=100)
    with pytest.raises(ValueError, match="acceleration"):
        fastem.GaussianMixture(2, acceleration="aitken").fit(X)
    with pytest.raises(ValueError, match="acceleration"):
        fastem.GaussianHMM(2, acceleration=1).fit(X)


# -- online EM ---------------------------------------------------------------------
def test_partial_fit_converges_to_the_batch_optimum_on_a_stationary_stream():
    rng = np.random.RandomState(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])

    def draw(n):
        return centres[rng.randint(3, size=n)] + rng.normal(size=(n, 2))

    online = fastem.GaussianMixture(3, random_state=0, learning_decay=0.6)
    for _ in range(150):
        online.partial_fit(draw(2000))
    batch = fastem.GaussianMixture(3, random_state=0).fit(draw(100_000))
    order_online = np.argsort(online.means_[:, 0] + 10 * online.means_[:, 1])
    order_batch = np.argsort(batch.means_[:, 0] + 10 * batch.means_[:, 1])
    np.testing.assert_allclose(online.means_[order_online], batch.means_[order_batch],
                               atol=0.05)
    np.testing.assert_allclose(online.weights_[order_online], batch.weights_[order_batch],
                               atol=0.02)
    held_out = draw(20_000)
    assert abs(online.score(held_out) - batch.score(held_out)) < 0.01
    assert online.n_iter_ == 150 and len(online.lower_bounds_) == 150


def test_partial_fit_rejects_bad_input_and_leaves_the_model_unchanged():
    X = blobs(n=500)
    model = fastem.GaussianMixture(3, random_state=0).partial_fit(X)
    means = model.means_.copy()
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(np.ones((10, 5)))
    np.testing.assert_array_equal(model.means_, means)
    for decay in (0.5, 1.5, np.nan):
        with pytest.raises(ValueError, match="learning_decay"):
            fastem.GaussianMixture(3, learning_decay=decay).partial_fit(X)
    with pytest.raises(ValueError, match="learning_offset"):
        fastem.GaussianMixture(3, learning_offset=-1).partial_fit(X)
    with pytest.raises(ValueError, match="n_components"):
        fastem.GaussianMixture(3).partial_fit(X[:2])
    # fit starts afresh.
    refit = model.fit(X)
    assert not hasattr(refit, "_online")


@pytest.mark.parametrize("kind", HMM_KINDS)
def test_hmm_partial_fit_approaches_the_batch_fit(kind):
    truth, X, lengths = _hmm_data(kind, n_sequences=40, seed=2)

    def started_at_truth(**kwargs):
        model = _fresh(kind, init_params="", **kwargs)
        for name in truth._required_fitted:
            setattr(model, name, np.copy(getattr(truth, name)))
        return model

    batch = started_at_truth(n_iter=100).fit(X, lengths)
    online = started_at_truth(learning_decay=0.6, learning_offset=2.0)
    bounds = np.cumsum([0] + lengths)
    for _ in range(3):
        for s in range(0, 40, 4):
            online.partial_fit(X[bounds[s]:bounds[s + 4]], lengths[s:s + 4])
    per_row = (batch.score(X, lengths) - online.score(X, lengths)) / len(X)
    assert abs(per_row) < 0.01
    np.testing.assert_allclose(online.transmat_, batch.transmat_, atol=0.05)


def test_hmm_partial_fit_rejects_changed_features():
    _, X, lengths = _hmm_data("gaussian-diag")
    model = _fresh("gaussian-diag").partial_fit(X, lengths)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(np.ones((20, 3)))
    with pytest.raises(ValueError, match="learning_decay"):
        _fresh("gaussian-diag", learning_decay=0.3).partial_fit(X, lengths)


# -- streamed exact EM ----------------------------------------------------------------
def test_memmap_fit_equals_the_in_memory_fit_bitwise(tmp_path):
    X = blobs(n=300_000, n_features=3, seed=8)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    kwargs = dict(random_state=0, max_iter=5, tol=0.0)
    memory = fastem.GaussianMixture(3, **kwargs).fit(X)
    streamed = fastem.GaussianMixture(3, **kwargs).fit(mapped)
    for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(memory, name))


def test_callable_block_source_streams_exact_em():
    X = blobs(n=20_000, n_features=3, seed=9)
    kwargs = dict(random_state=0, max_iter=6, tol=0.0, init_params="random_from_data")
    memory = fastem.GaussianMixture(3, **kwargs).fit(X)
    aligned = fastem.GaussianMixture(3, **kwargs).fit(
        lambda: (X[lo:lo + 8 * UNIT_ROWS] for lo in range(0, len(X), 8 * UNIT_ROWS)))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(aligned, name), getattr(memory, name))
    ragged = fastem.GaussianMixture(3, **kwargs).fit(
        lambda: iter(np.array_split(X, 7)))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(ragged, name), getattr(memory, name), rtol=1e-10)
    with pytest.raises(TypeError, match="iterator"):
        fastem.GaussianMixture(3).fit(lambda: 5)
    with pytest.raises(ValueError, match="features"):
        fastem.GaussianMixture(3).fit(lambda: iter([X[:100], X[:100, :2]]))


def test_stream_backend_initialises_from_the_first_blocks():
    X = blobs(n=5000, n_features=2, seed=10)
    backend = StreamBackend(lambda: iter([Block(X[:3000]), Block(X[3000:])]), init_rows=2000)
    assert backend.initialization_block().n_rows == 3000
    assert sum(b.n_rows for b in backend.blocks()) == len(X)


class _ChangingSource:
    """A block source whose passes differ from the first one after ``calls`` calls."""

    def __init__(self, X, calls, change, once=False):
        self.X, self.calls, self.change, self.n_calls = X, calls, change, 0
        self.once = once

    def __call__(self):
        self.n_calls += 1
        X = self.X
        if self.n_calls > self.calls and not (self.once and self.n_calls > self.calls + 1):
            X = {"more": np.vstack([X, X]), "fewer": X[: len(X) // 2],
                 "values": X[::-1]}[self.change]
        return iter(np.array_split(X, 4))


@pytest.mark.parametrize("change", ["more", "fewer", "values"])
def test_a_stream_whose_passes_differ_is_refused(change):
    # Exact streamed EM must read the same data at every pass (200 rows then 400 rows
    # was fitted silently, to a lower bound of neither data set).
    X = blobs(n=2000, n_features=2, seed=12)
    model = fastem.GaussianMixture(2, random_state=0, max_iter=10, tol=0.0)
    with pytest.raises(ValueError, match="changed between passes"):
        model.fit(_ChangingSource(X, 3, change))
    assert not hasattr(model, "n_features_in_")
    steady = _ChangingSource(X, 10**9, change)
    fitted = fastem.GaussianMixture(2, random_state=0, max_iter=10, tol=0.0).fit(steady)
    assert fitted.n_iter_ == 10 and steady.n_calls > 10


def test_an_hmm_stream_whose_passes_differ_is_refused():
    _, X, lengths = _hmm_data("gaussian-diag", n_sequences=12, seed=7)
    bounds = np.cumsum([0] + lengths)
    calls = []

    def source():
        calls.append(None)
        last = 12 if len(calls) < 4 else 9  # three sequences fewer from the fourth pass
        return ((X[bounds[s]:bounds[min(s + 3, last)]], lengths[s:min(s + 3, last)])
                for s in range(0, last, 3))

    with pytest.raises(ValueError, match=r"changed between passes.*sequences"):
        _fresh("gaussian-diag", n_iter=8, tol=0.0).fit(source)


# -- restarts --------------------------------------------------------------------------
def _recorded_initial_means(monkeypatch, estimator, X, lengths):
    seen = []
    original = BaumWelchModel.initialize

    def record(self, block, random_state):
        params = original(self, block, random_state)
        seen.append(params)
        return params

    monkeypatch.setattr(BaumWelchModel, "initialize", record)
    estimator.fit(X, lengths)
    return seen


@pytest.mark.parametrize("kind", ["gaussian-diag", "gmm"])
def test_hmm_restarts_start_from_different_means(monkeypatch, kind):
    _, X, lengths = _hmm_data(kind, seed=3)
    starts = _recorded_initial_means(monkeypatch, _fresh(kind, n_init=3, n_iter=2), X, lengths)
    assert len(starts) == 3
    assert not np.array_equal(starts[0].transmat, starts[1].transmat)
    means = [start.emission.means for start in starts]
    assert not np.array_equal(means[0], means[1]) or not np.array_equal(means[1], means[2])


def test_a_callback_cannot_change_what_the_next_restart_starts_from(monkeypatch):
    _, X, lengths = _hmm_data("gaussian-diag", seed=4)
    estimator = _fresh("gaussian-diag", n_init=2, n_iter=3, init_params="mc",
                       callback=lambda iteration, objective, model: False)
    user_startprob = np.array([0.2, 0.3, 0.5])
    user_transmat = np.full((3, 3), 1.0 / 3)
    estimator.startprob_ = user_startprob
    estimator.transmat_ = user_transmat
    starts = _recorded_initial_means(monkeypatch, estimator, X, lengths)
    for start in starts:
        np.testing.assert_array_equal(start.startprob, user_startprob)
        np.testing.assert_array_equal(start.transmat, user_transmat)


@pytest.mark.parametrize("kind", ["gaussian-diag", "gmm", "categorical"])
def test_hmm_tables_in_bounded_groups_give_the_same_fit(monkeypatch, kind):
    import fastem.composites.hmm as hmm_base

    _, X, lengths = _hmm_data(kind, n_sequences=9, seed=5)
    whole = _fresh(kind, n_iter=4, tol=0.0).fit(X, lengths)
    monkeypatch.setattr(hmm_base, "_TABLE_BYTES", 16 * 3 * 320)  # ~2 sequences per group
    monkeypatch.setattr(hmm_base, "_MIN_GROUP_ROWS", 1)
    bounds = np.cumsum([0] + lengths)
    assert len(hmm_base.sequence_groups(bounds, 3)) - 1 >= 4
    grouped = _fresh(kind, n_iter=4, tol=0.0).fit(X, lengths)
    np.testing.assert_allclose(grouped.monitor_.history, whole.monitor_.history, rtol=1e-12)
    np.testing.assert_allclose(grouped.transmat_, whole.transmat_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian-diag", "categorical"])
def test_hmm_fit_streams_a_memmap_and_a_block_source(tmp_path, kind):
    _, X, lengths = _hmm_data(kind, n_sequences=30, seed=6)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mapped = np.load(path, mmap_mode="r")
    options = dict(n_iter=4, tol=0.0) if kind != "categorical" else dict(
        n_iter=4, tol=0.0, n_features=4)
    memory = _fresh(kind, **options).fit(X, lengths)
    streamed = _fresh(kind, **options).fit(mapped, lengths)
    bounds = np.cumsum([0] + lengths)
    blocks = _fresh(kind, **options).fit(
        lambda: ((X[bounds[s]:bounds[min(s + 7, 30)]], lengths[s:s + 7])
                 for s in range(0, 30, 7)))
    for fitted in (streamed, blocks):
        np.testing.assert_allclose(fitted.monitor_.history, memory.monitor_.history,
                                   rtol=1e-11)
        np.testing.assert_allclose(fitted.transmat_, memory.transmat_, rtol=1e-9, atol=1e-12)
    with pytest.raises(TypeError, match="pair"):
        _fresh(kind, **options).fit(lambda: iter([X]))
    with pytest.raises(ValueError, match="lengths"):
        _fresh(kind, **options).fit(lambda: iter([(X, lengths)]), lengths)


def test_imputer_accepts_squarem_and_reaches_the_same_fill():
    X = blobs(n=1500, n_features=3, seed=11)
    X[np.random.RandomState(2).rand(*X.shape) < 0.2] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    kwargs = dict(n_components=2, tol=1e-12, max_iter=5000, random_state=0)
    plain = fastem.EMImputer(**kwargs).fit(X)
    fast = fastem.EMImputer(acceleration="squarem", **kwargs).fit(X)
    assert fast.mixture_.n_iter_ < plain.mixture_.n_iter_
    np.testing.assert_allclose(fast.transform(X), plain.transform(X), rtol=1e-5, atol=1e-5)


def test_partial_fit_after_fit_continues_from_the_fitted_model(monkeypatch):
    X = blobs(n=3000, n_features=2, seed=12)
    fitted = fastem.GaussianMixture(3, random_state=0, tol=1e-10, max_iter=500).fit(X)
    _, Xh, lengths = _hmm_data("gaussian-diag", seed=7)
    hmm = _fresh("gaussian-diag", n_iter=50).fit(Xh, lengths)
    means, transmat = fitted.means_.copy(), hmm.transmat_.copy()

    def no_initialisation(*args):
        raise AssertionError("partial_fit after fit must not re-initialise")

    monkeypatch.setattr(GaussianMixtureModel, "initialize", no_initialisation)
    monkeypatch.setattr(BaumWelchModel, "initialize", no_initialisation)
    fitted.partial_fit(X[:1000])
    np.testing.assert_allclose(fitted.means_, means, atol=0.3)  # one step from the optimum
    hmm.partial_fit(Xh[:450], lengths[:3])
    np.testing.assert_allclose(hmm.transmat_, transmat, atol=0.1)


def test_small_inputs_run_on_one_thread_by_default_and_large_ones_on_all():
    import numba

    from fastem._runtime import max_threads

    seen = []

    def record(iteration, objective, model):
        seen.append(numba.get_num_threads())

    small = blobs(n=150, n_features=4, seed=13)
    fastem.GaussianMixture(3, max_iter=2, tol=0.0, random_state=0, callback=record).fit(small)
    fastem.GaussianHMM(3, n_iter=2, tol=-np.inf, random_state=0, callback=record).fit(small)
    assert set(seen) == {1}
    seen.clear()
    large = blobs(n=60_000, n_features=4, seed=13)
    fastem.GaussianMixture(3, max_iter=2, tol=0.0, random_state=0, callback=record).fit(large)
    assert set(seen) == {max_threads()}
    seen.clear()
    fastem.GaussianMixture(3, max_iter=2, tol=0.0, random_state=0, n_threads=2,
                           callback=record).fit(small)  # an explicit count is obeyed
    assert set(seen) == {min(2, max_threads())}


def test_streamed_missing_data_fit_mixes_complete_and_incomplete_blocks():
    X = blobs(n=4000, n_features=3, seed=14)
    rest = X[2000:]  # only the second half has missing entries
    rest[np.random.RandomState(3).rand(*rest.shape) < 0.15] = np.nan
    kwargs = dict(random_state=0, max_iter=5, tol=0.0, missing="marginalize",
                  init_params="random_from_data")
    memory = fastem.GaussianMixture(3, **kwargs).fit(X)
    streamed = fastem.GaussianMixture(3, **kwargs).fit(lambda: iter([X[:2000], X[2000:]]))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(streamed, name), getattr(memory, name), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("estimator", ["GaussianMixture", "BayesianGaussianMixture"])
def test_a_fit_whose_objective_is_minus_infinity_is_refused(estimator):
    # One entry of 6e307 among values of 1e150: its squared distance to every component
    # overflows, the objective is -inf from the first pass, and EM cannot climb from it.
    # The fit returned normally with lower_bound_ -inf.
    X = np.random.RandomState(3).normal(size=(27, 1)) * 1e150
    X[1, 0] = 6e307
    model = getattr(fastem, estimator)(n_components=2, random_state=0, max_iter=5,
                                       init_params="k-means++")
    with pytest.raises(ValueError, match=r"objective is -inf at iteration 1.*scale the data"):
        model.fit(X)
    assert not hasattr(model, "n_features_in_")


def test_partial_fit_refuses_a_batch_the_parameters_make_impossible():
    # Emission probabilities of zero for a symbol the batch holds: the online step's
    # objective is -inf (fit refused it; partial_fit took it silently).
    X = np.array([[0], [1], [2], [1], [0], [2]] * 5)
    model = fastem.CategoricalHMM(2, n_features=3, init_params="st", params="st",
                                  random_state=0)
    model.emissionprob_ = np.array([[0.5, 0.5, 0.0], [0.3, 0.7, 0.0]])
    for method in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match=r"objective is -inf.*probability zero"):
            method(X)
    assert not hasattr(model, "startprob_") and not hasattr(model, "_online")


def test_a_stream_that_changes_on_a_squarem_trial_pass_is_refused():
    # The check's ValueError was taken for a failed trial (rejected, not reported): a
    # source that differs on one pass only, a trial's, was fitted.
    X = blobs(n=2000, n_features=2, seed=12)
    for calls in range(2, 8):  # one changed pass, at each of the first passes
        model = fastem.GaussianMixture(2, random_state=0, max_iter=10, tol=0.0,
                                       acceleration="squarem")
        with pytest.raises(ValueError, match="changed between passes"):
            model.fit(_ChangingSource(X, calls, "values", once=True))
