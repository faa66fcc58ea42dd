"""partial_fit and fit refuse the same batches, the same way (issue 25: no silent NaN models).

Reproductions of fuzzer findings: a refused batch raises a ValueError saying what overflowed
and what to do, and leaves the estimator exactly as it was (a deep fingerprint of vars()),
so that the next good batch is taken as if the bad one never came.
"""

import numpy as np
import pytest

import fastem
from fastem.bench import fuzz


def _good(n_features=2, n_rows=30, seed=0):
    X = np.random.RandomState(seed).normal(size=(n_rows, n_features))
    X[:n_rows // 2] += 4.0
    return X, [n_rows // 2, n_rows - n_rows // 2]


def _far_entry(n_features=2, seed=0):
    X, lengths = _good(n_features, seed=seed)
    X[12, n_features - 1] = 1e300
    return X, lengths


def _refused(model, method, X, lengths, match):
    before = fuzz.estimator_state(model)
    X_before = X.copy()
    with pytest.raises(ValueError, match=match) as info:
        getattr(model, method)(X, lengths)
    assert fuzz.estimator_state(model) == before, "a refused call changed the estimator"
    np.testing.assert_array_equal(X, X_before)
    return str(info.value)


# -- hmm_far: one 1e300 entry ------------------------------------------------------------------
HMMS = [("GaussianHMM", {}, 2), ("GMMHMM", {}, 1), ("GMMHMM", {"n_mix": 2}, 2),
        ("GaussianHMM", {"covariance_type": "spherical"}, 2)]


@pytest.mark.parametrize("name, kwargs, width", HMMS)
def test_hmm_partial_fit_refuses_a_far_entry_as_fit_does(name, kwargs, width):
    X, lengths = _far_entry(width)
    fresh = getattr(fastem, name)(2, random_state=0, n_iter=5, **kwargs)
    message = _refused(fresh, "partial_fit", X, lengths, "overflow float64")
    assert "Scale the data" in message
    # fit meets the same check (the M-step's), with the same words.
    fit_message = _refused(getattr(fastem, name)(2, random_state=0, n_iter=5, **kwargs),
                           "fit", X, lengths, "overflow float64")
    assert fit_message == message
    # The next good batch is taken as the first.
    fresh.partial_fit(*_good(width, seed=1))
    assert fuzz.bad_attributes(fresh) is None


@pytest.mark.parametrize("name, kwargs, width", HMMS[:2])
def test_a_one_iteration_fit_checks_its_last_m_step(name, kwargs, width):
    # The M-step of the last iteration is never evaluated by a later pass: it was returned
    # with NaN covariances.
    X, lengths = _far_entry(width)
    model = getattr(fastem, name)(2, random_state=0, n_iter=1, **kwargs)
    _refused(model, "fit", X, lengths, "overflow float64")


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_state_on_one_point_keeps_the_covariance_its_density_used(method):
    # With full covariances k-means gives the far row a state of its own; hmmlearn's scalar
    # covars_prior on that state's zero scatter is a singular matrix, which the densities
    # evaluate with a diagonal jitter: covars_ is now that matrix (it was the singular one).
    X, lengths = _far_entry(2)
    model = fastem.GaussianHMM(2, covariance_type="full", random_state=0, n_iter=5)
    getattr(model, method)(X, lengths)
    assert fuzz.bad_attributes(model) is None
    assert (np.linalg.eigvalsh(model.covars_) > 0).all()


# -- gmmhmm_tiny: data times 1e-300 -------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_gmmhmm_partial_fit_refuses_covariances_fit_refuses(covariance_type):
    # Variances of data times 1e-300 are below float64's resolution: the M-step gave zero and
    # negative ones, which fit refused at its next pass and partial_fit stored (the next good
    # batch was then refused). Both now meet the same check, in the M-step.
    X, lengths = _good(2)
    tiny = X * 1e-300
    options = dict(n_components=2, covariance_type=covariance_type, random_state=0, n_iter=5)
    model = fastem.GMMHMM(**options)
    message = _refused(model, "partial_fit", tiny, lengths, "covars_ of state .* positive")
    assert "Scale the data" in message and "reg_covar" not in message
    assert _refused(fastem.GMMHMM(**options), "fit", tiny, lengths, "covars_") == message
    model.partial_fit(*_good(2, seed=1))  # taken as the first batch
    assert fuzz.bad_attributes(model) is None
    # After good batches, the blended statistics keep the covariances positive.
    model.partial_fit(tiny, lengths)
    assert fuzz.bad_attributes(model) is None


# -- hmm_zero: rows that every state finds impossible -------------------------------------------
FAR_DIRECTIONS = np.array([[1.0, -0.3], [-0.2, 1.0], [1.0, 1.0], [5.0, 5.0]])


@pytest.mark.parametrize("name, kwargs", [("GaussianHMM", {}), ("GMMHMM", {"n_mix": 2})])
def test_a_fit_on_data_whose_densities_overflow_is_refused(name, kwargs):
    # GaussianHMM(3).fit(X * 1e300) returned normally: the initial covariances could not see
    # the spread, every row but the k-means centres had density 0 in every state, and the
    # monitor's history was -inf.
    X = np.random.RandomState(0).normal(size=(40, 1)) * 1e300
    model = getattr(fastem, name)(3, random_state=0, n_iter=5, **kwargs)
    _refused(model, "fit", X, None, "squared distances overflow float64")
    fitted = getattr(fastem, name)(2, random_state=0, n_iter=5, **kwargs).fit(*_good(2))
    message = _refused(fitted, "fit", FAR_DIRECTIONS * 1e300, None, "squared distances")
    assert "Scale the data" in message


@pytest.mark.parametrize("name, kwargs", [("GaussianHMM", {}), ("GMMHMM", {"n_mix": 2}),
                                          ("GaussianHMM", {"covariance_type": "full"})])
@pytest.mark.parametrize("batch", ["all far", "one far entry"])
def test_partial_fit_refuses_rows_far_from_every_state(name, kwargs, batch):
    # They were left out of the statistics (the batch's log-likelihood -inf): partial_fit
    # returned normally, learning from the rest or from nothing.
    model = getattr(fastem, name)(2, random_state=0, n_iter=5, **kwargs)
    model.partial_fit(*_good(2, seed=1))
    model.partial_fit(*_good(2, seed=2))
    X, lengths = _good(2, seed=4)
    if batch == "all far":
        X = X * 1e300
    else:
        X[12, 1] = 1e300
    _refused(model, "partial_fit", X, lengths, "overflow float64")
    model.partial_fit(*_good(2, seed=3))
    assert fuzz.bad_attributes(model) is None


def _fitted_hmm(name, kwargs):
    return getattr(fastem, name)(2, random_state=0, **kwargs).fit(*_good(2, n_rows=60))


@pytest.mark.parametrize("name, kwargs", [("GaussianHMM", {"covariance_type": c})
                                          for c in ("diag", "full", "spherical")]
                         + [("GMMHMM", {"n_mix": 2}), ("VariationalGaussianHMM", {})])
def test_far_rows_get_their_limiting_posterior(name, kwargs):
    # As a GaussianMixture's (README "Robustness"): rows so far away that their squared
    # distances overflow got posteriors of all zeros; now the limit, which rows at 1e60 (still
    # representable, and already in the limit) reach too, and a log-likelihood of -inf.
    model = _fitted_hmm(name, kwargs)
    far, near = FAR_DIRECTIONS * 1e300, FAR_DIRECTIONS * 1e60
    proba = model.predict_proba(far)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, model.predict_proba(near), atol=1e-12)
    assert model.score(far) == -np.inf
    logprob, path = model.decode(far)
    assert logprob == -np.inf
    np.testing.assert_array_equal(path, model.decode(near)[1])
    np.testing.assert_array_equal(model.decode(far, algorithm="map")[1], proba.argmax(axis=1))
    # One far row inside an ordinary sequence: the others' posteriors see its state.
    X, _ = _good(2, n_rows=20, seed=5)
    X_far, X_near = X.copy(), X.copy()
    X_far[7], X_near[7] = far[3], near[3]
    np.testing.assert_allclose(model.predict_proba(X_far), model.predict_proba(X_near),
                               atol=1e-12)
    # Sequences without far rows are computed as before.
    both = np.vstack([X, far])
    log_prob, posteriors = model.score_samples(both, [20, 4])
    assert log_prob == -np.inf
    np.testing.assert_array_equal(posteriors[:20], model.predict_proba(X))
    np.testing.assert_array_equal(model.score(both, [20, 4], per_sequence=True)[0],
                                  model.score(X))


def test_a_model_with_extreme_means_gives_distributions():
    # The fuzzer's forged files: one mean of 1e308, or all of them.
    model = _fitted_hmm("GaussianHMM", {})
    X, _ = _good(2, n_rows=20, seed=6)
    for means in (np.array([[1e308, 0.0], [0.0, 0.0]]), np.full((2, 2), -1e308)):
        model.means_ = means
        proba = model.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        assert ((proba >= 0) & (proba <= 1)).all()
        assert (model.predict(X) < 2).all()


def test_partially_missing_far_rows_get_their_limiting_posterior():
    model = fastem.GaussianHMM(2, random_state=0, missing="marginalize").fit(*_good(2))
    far = np.array([[np.nan, 1e300], [-1e300, np.nan]])
    near = np.array([[np.nan, 1e60], [-1e60, np.nan]])
    proba = model.predict_proba(far)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, model.predict_proba(near), atol=1e-12)


# -- GMMHMM states and components without data --------------------------------------------------
def _gmmhmm_with_an_unreachable_state(covariance_type):
    model = fastem.GMMHMM(2, n_mix=2, covariance_type=covariance_type, init_params="",
                          random_state=0, n_iter=3)
    model.startprob_ = np.array([1.0, 0.0])
    model.transmat_ = np.array([[1.0, 0.0], [0.5, 0.5]])  # state 1 is never reached
    model.weights_ = np.full((2, 2), 0.5)
    model.means_ = np.array([[[0.0, 0.0], [4.0, 4.0]], [[-3.0, 3.0], [3.0, -3.0]]])
    model.covars_ = {"diag": np.ones((2, 2, 2)), "spherical": np.ones((2, 2)),
                     "full": np.broadcast_to(np.eye(2), (2, 2, 2, 2)).copy(),
                     "tied": np.broadcast_to(np.eye(2), (2, 2, 2)).copy()}[covariance_type]
    return model


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_gmmhmm_state_without_posterior_mass_keeps_its_parameters(covariance_type, method):
    # Its M-step was 0 / 0: NaN weights_, means_ and covars_ (partial_fit stored them; the
    # M-step's check then refused every batch). As GaussianHMM's states, it keeps them.
    model = _gmmhmm_with_an_unreachable_state(covariance_type)
    before = {name: np.array(getattr(model, name)) for name in ("weights_", "means_",
                                                                 "covars_")}
    getattr(model, method)(*_good(2, n_rows=40))
    assert fuzz.bad_attributes(model) is None
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name)[1], value[1])
    assert not np.array_equal(model.means_[0], before["means_"][0])  # state 0 learnt


def test_a_gmmhmm_state_with_negligible_mass_does_not_stop_partial_fit():
    # The fuzzer's case: GMMHMM(3) fitted on 10 rows of 3 features leaves a state nearly
    # unused; the next good batch gives it posteriors of 1e-37 on one row, whose covariance
    # update is round-off (it was (mass + 1) - 1 = 0 in the denominator, then NaN).
    case = {"estimator": "GMMHMM", "width": 3}
    (X, lengths), _ = fuzz._batch(case, {"kind": "good", "rows": 10, "seed": 794533})
    model = fastem.GMMHMM(3, random_state=0, n_iter=5).fit(X, lengths)
    (good, good_lengths), _ = fuzz._batch(case, {"kind": "good", "rows": 37, "seed": 960361})
    model.partial_fit(good, good_lengths)
    assert fuzz.bad_attributes(model) is None


def test_gmmhmm_weights_prior_below_one_that_makes_a_weight_negative_is_named():
    # weights = (mass + prior - 1) / ...: negative for a component with little mass; the
    # next pass took its logarithm (NaN), reported as an overflow.
    X, lengths = _good(2, n_rows=60)
    model = fastem.GMMHMM(2, n_mix=3, weights_prior=0.1, random_state=0, n_iter=20)
    _refused(model, "fit", X, lengths, "weights_prior=0.1 below 1")


# -- gm_far: GaussianMixture partial_fit of far rows ---------------------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("batch", ["all far", "one far entry"])
def test_mixture_partial_fit_refuses_rows_far_from_every_component(covariance_type, batch):
    # They had zero responsibility and a log-density of -inf: partial_fit returned normally
    # with lower_bound_ -inf, learning nothing (or only from the other rows). fit refuses
    # the same batch (at its initial covariances); partial_fit now does too.
    X, _ = _good(2, seed=4)
    if batch == "all far":
        X = X * 1e300
    else:
        X[5, 1] = 1e300
    options = dict(n_components=2, covariance_type=covariance_type, random_state=0,
                   max_iter=5)
    with pytest.raises(ValueError, match="scale the input data"):
        fastem.GaussianMixture(**options).fit(X)
    model = fastem.GaussianMixture(**options)
    model.partial_fit(_good(2, seed=1)[0])
    model.partial_fit(_good(2, seed=2)[0])
    before = fuzz.estimator_state(model)
    with pytest.raises(ValueError, match="overflow float64") as info:
        model.partial_fit(X)
    assert "row 0" in str(info.value) if batch == "all far" else "row 5" in str(info.value)
    assert "Scale the data" in str(info.value)
    assert fuzz.estimator_state(model) == before
    model.partial_fit(_good(2, seed=3)[0])
    assert fuzz.bad_attributes(model) is None and np.isfinite(model.lower_bound_)


def test_a_far_row_of_weight_zero_is_dropped_as_before():
    X, _ = _good(2, seed=4)
    X[5, 1] = 1e300
    weights = np.ones(len(X))
    weights[5] = 0.0
    model = fastem.GaussianMixture(2, random_state=0).partial_fit(_good(2, seed=1)[0])
    model.partial_fit(X, sample_weight=weights)
    assert np.isfinite(model.lower_bound_)


def test_mixture_partial_fit_with_missing_values_names_the_far_row():
    X, _ = _good(2, seed=4)
    X[3, 0] = np.nan
    X[3, 1] = 1e300
    model = fastem.GaussianMixture(2, random_state=0, missing="marginalize")
    model.partial_fit(_good(2, seed=1)[0])
    before = fuzz.estimator_state(model)
    with pytest.raises(ValueError, match="row 3"):
        model.partial_fit(X)
    assert fuzz.estimator_state(model) == before




# -- HMM steps whose reachable states underflow against an unreachable one ----------------------
def _brute_force(log_b, startprob, transmat):
    """Log-likelihood, posteriors and expected transition counts of one sequence, by
    enumerating every state path."""
    import itertools

    n, k = log_b.shape
    with np.errstate(divide="ignore"):
        log_start, log_trans = np.log(startprob), np.log(transmat)
    paths = np.array(list(itertools.product(range(k), repeat=n)))
    scores = (log_start[paths[:, 0]] + log_b[np.arange(n), paths].sum(axis=1)
              + log_trans[paths[:, :-1], paths[:, 1:]].sum(axis=1))
    peak = scores.max()
    weights = np.exp(scores - peak)
    weights /= weights.sum()
    posteriors, trans = np.zeros((n, k)), np.zeros((k, k))
    for t in range(n):
        np.add.at(posteriors[t], paths[:, t], weights)
        if t < n - 1:
            np.add.at(trans, (paths[:, t], paths[:, t + 1]), weights)
    return peak + np.log(np.exp(scores - peak).sum()), posteriors, trans


_STRUCTURED = (np.array([1.0, 0.0, 0.0]),
               np.array([[0.0, 0.6, 0.4], [0.5, 0.0, 0.5], [0.7, 0.3, 0.0]]))


def _boosted_rows(seed, n=6, k=3):
    rng = np.random.RandomState(seed)
    log_b = rng.normal(size=(n, k)) * 3.0
    log_b[np.arange(n), rng.randint(k, size=n)] += 1e6  # often a state the prior excludes
    return log_b


def test_a_dead_end_of_the_scaled_recursion_asks_for_log_space():
    # startprob and transmat with zeros, and a state the prior cannot reach a million nats
    # above the ones it can: shifting the step by the row's best state underflows every
    # reachable one. The kernels said -inf (an impossible sequence: posteriors of zeros);
    # they now say NaN (run it in log space), and -inf only for a truly impossible one.
    from fastem.hmm.sequences import sequence_units
    from fastem.kernels import hmm as hk

    startprob, transmat = _STRUCTURED
    log_b = np.zeros((4, 3))
    log_b[0, 1] = 1e6  # state 1 cannot start
    impossible = np.zeros((4, 3))
    impossible[0, 0] = -np.inf  # the only state that can start cannot emit the row
    table = np.vstack([log_b, impossible])
    bounds = np.array([0, 4, 8], dtype=np.int64)
    posteriors, loglik = np.empty((8, 3)), np.empty(2)
    hk.forward_backward(table.copy(), bounds, sequence_units(bounds), startprob, transmat,
                        np.empty(0), posteriors, loglik, np.zeros(12))
    assert np.isnan(loglik[0]) and loglik[1] == -np.inf
    score = np.empty(2)
    hk.forward_loglik(table, bounds, startprob, transmat, score)
    assert np.isnan(score[0]) and score[1] == -np.inf


@pytest.mark.parametrize("seed", range(4))
def test_the_log_space_recursion_matches_brute_force(seed):
    from fastem.kernels import hmm as hk

    startprob, transmat = _STRUCTURED
    log_b = _boosted_rows(seed)
    expected_loglik, expected, expected_trans = _brute_force(log_b, startprob, transmat)
    bounds = np.array([0, len(log_b)], dtype=np.int64)
    posteriors, loglik, counts = np.empty_like(log_b), np.empty(1), np.zeros(12)
    hk.log_forward_backward(log_b, bounds, startprob, transmat, np.array([2.0]), posteriors,
                            loglik, counts)
    np.testing.assert_allclose(loglik[0], expected_loglik, rtol=1e-13)
    np.testing.assert_allclose(posteriors, expected, atol=1e-12)
    np.testing.assert_allclose(counts[:3], 2.0 * expected[0], atol=1e-12)
    np.testing.assert_allclose(counts[3:].reshape(3, 3), 2.0 * expected_trans, atol=1e-12)


def _poisson_model():
    # What the fuzzer's PoissonHMM(2).fit on counts of 333333 and 666667 learns.
    model = fastem.PoissonHMM(2)
    model.startprob_ = np.array([0.0, 1.0])
    model.transmat_ = np.array([[0.48, 0.52], [1.0, 0.0]])
    model.lambdas_ = np.array([[666667.0], [333333.0]])
    return model


def test_inference_runs_such_sequences_in_log_space():
    # predict_proba of ordinary counts gave rows of zeros and score -inf.
    from scipy.stats import poisson

    model = _poisson_model()
    X = np.random.RandomState(1).poisson(3, size=(7, 1))
    log_b = poisson.logpmf(X, model.lambdas_[:, 0][None, :])
    expected_loglik, expected, _ = _brute_force(log_b, model.startprob_, model.transmat_)
    both = np.vstack([X, X[:3]])  # a second sequence the scaled recursion handles
    log_prob, posteriors = model.score_samples(both, [7, 3])
    np.testing.assert_allclose(posteriors[:7], expected, atol=1e-12)
    np.testing.assert_allclose(model.score(X), expected_loglik, rtol=1e-12)
    np.testing.assert_allclose(log_prob, expected_loglik + model.score(X[:3]), rtol=1e-12)
    np.testing.assert_array_equal(posteriors[7:], model.predict_proba(X[:3]))


def test_fit_and_partial_fit_run_such_sequences_in_log_space():
    # Their counts were left out (the sequence "impossible"): fit now uses them, as a
    # log-space Baum-Welch does.
    from scipy.stats import poisson

    X = np.random.RandomState(1).poisson(3, size=(7, 1))
    for method in ("fit", "partial_fit"):
        model = _poisson_model()
        model.set_params(init_params="", n_iter=1, params="st")
        before_start, before_trans = model.startprob_.copy(), model.transmat_.copy()
        getattr(model, method)(X)
        log_b = poisson.logpmf(X, model.lambdas_[:, 0][None, :])
        _, expected, trans = _brute_force(log_b, before_start, before_trans)
        np.testing.assert_allclose(model.startprob_, expected[0], atol=1e-12)
        np.testing.assert_allclose(model.transmat_, trans / trans.sum(axis=1, keepdims=True),
                                   atol=1e-12)
        assert fuzz.bad_attributes(model) is None


# -- an empty X with missing="marginalize" --------------------------------------------------------
@pytest.mark.parametrize("name", ["GaussianHMM", "PoissonHMM", "CategoricalHMM"])
@pytest.mark.parametrize("shape", [(0, 1), (0,)])
def test_an_empty_x_is_named_with_missing_marginalize(name, shape):
    # numpy's 'cannot reshape array of size 0 into shape (0,newaxis)' escaped, naming nothing.
    X = np.random.RandomState(0).poisson(2, size=(30, 1))
    model = getattr(fastem, name)(2, missing="marginalize", random_state=0).fit(X)
    for method in ("score_samples", "predict", "score"):
        with pytest.raises(ValueError, match="X") as info:
            getattr(model, method)(np.empty(shape))
        assert "reshape array of size 0" not in str(info.value)


@pytest.mark.parametrize("method", ["predict_proba", "predict"])
def test_a_symbol_no_state_emits_is_read_as_missing(method):
    # After a partial_fit batch without symbol 2 (or a model file that gives it
    # probability 0 everywhere), a row holding it is impossible in every state: its
    # posterior was a row of zeros. It is now the limit of smoothing those zeros alike,
    # the row read as missing, while the sequence's log-likelihood stays -inf.
    rng = np.random.RandomState(0)
    X = rng.randint(3, size=(60, 1))
    model = fastem.CategoricalHMM(2, random_state=0, n_iter=5).fit(X)
    emissions = model.emissionprob_.copy()
    emissions[:, 2] = 0.0
    model.emissionprob_ = emissions / emissions.sum(axis=1, keepdims=True)
    marginal = fastem.CategoricalHMM(2, missing="marginalize").fit(X)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        setattr(marginal, name, getattr(model, name))
    sequence = np.array([[0], [1], [2], [0], [1]])
    with_gap = sequence.astype(float)
    with_gap[2] = np.nan
    np.testing.assert_allclose(getattr(model, method)(sequence),
                               getattr(marginal, method)(with_gap), rtol=1e-12)
    assert model.score(sequence) == -np.inf
