"""Fits on dask collections (issue 14): a LocalCluster of real worker processes gives the
in-memory results, bitwise when partitions are cut on segment boundaries."""

import os
import signal
import sys
import warnings

import numpy as np
import pytest

import fastem
from fastem.engine import Block, pass_stats
from fastem.engine.backends import add_segments, indexed_pieces, segment_sums
from fastem.engine.units import SEGMENT_ROWS
from fastem.mixture.covariance import SPECS
from fastem.mixture.model import GaussianMixtureModel

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

SEGMENT = SEGMENT_ROWS


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _mixture_data(n=2 * SEGMENT, d=3, seed=0):
    rng = np.random.RandomState(seed)
    centres = rng.normal(scale=4.0, size=(3, d))
    return centres[rng.randint(0, 3, size=n)] + rng.normal(size=(n, d))


def _assert_same_mixture(a, b, exact):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        if exact:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        else:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-10,
                                       atol=1e-12, err_msg=name)
    assert a.n_iter_ == b.n_iter_
    if exact:
        assert a.lower_bound_ == b.lower_bound_
    else:
        assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-10)


# -- the reduction rule, without a cluster -----------------------------------------------
def test_partitions_on_segment_boundaries_reduce_to_the_in_memory_sums_bitwise():
    X = _mixture_data(n=2 * SEGMENT + 5000)
    model = GaussianMixtureModel(SPECS["full"], 3, 3, 1e-6, "kmeans")
    params = model.initialize(Block(X), np.random.RandomState(0))
    whole = pass_stats(model, params, [Block(X)])
    prepared, shift = model.prepare(params), model.shift(params)

    def parallel(cuts):
        segments = []
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):  # each part on its own
            pieces = indexed_pieces([Block(X[lo:hi])], offset=lo)
            segments += segment_sums(model, prepared, shift, pieces)
        return add_segments(model, shift, segments)

    aligned = parallel([0, SEGMENT, 2 * SEGMENT, len(X)])
    np.testing.assert_array_equal(aligned.flat, whole.flat)
    unaligned = parallel([0, 100_000, 200_000, len(X)])
    # Sums of centred values cancel to ~1e-3 from terms of ~1e5: compare on that scale.
    np.testing.assert_allclose(unaligned.flat, whole.flat, rtol=1e-12, atol=1e-9)


# -- mixtures ------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_mixture_on_aligned_partitions_equals_the_in_memory_fit_bitwise(client,
                                                                        covariance_type):
    X = _mixture_data()
    options = dict(n_components=3, covariance_type=covariance_type, random_state=0,
                   max_iter=8, tol=0.0)
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.GaussianMixture(**options).fit(X)
    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.GaussianMixture(**options).fit(da.from_array(X, chunks=(SEGMENT, 3)))
    _assert_same_mixture(cluster, memory, exact=True)


def test_mixture_on_unaligned_partitions_and_weights_agree_to_round_off(client):
    X = _mixture_data(n=150_000)
    weights = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))
    options = dict(n_components=3, random_state=0, max_iter=6, tol=0.0)
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.GaussianMixture(**options).fit(X, sample_weight=weights)
    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.GaussianMixture(**options).fit(da.from_array(X, chunks=(40_000, 3)),
                                                        sample_weight=weights)
    _assert_same_mixture(cluster, memory, exact=False)


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_large_data_initialise_on_the_workers_whatever_the_partitioning(client, monkeypatch,
                                                                        init_params):
    from fastem.engine import dask_backend

    monkeypatch.setattr(dask_backend, "INIT_ROWS", 20_000)  # "large": more rows than this

    def no_gathering(self):
        raise AssertionError("the rows were gathered on the client")

    monkeypatch.setattr(dask_backend.DaskBackend, "initialization_block", no_gathering)
    X = _mixture_data(n=90_000)
    options = dict(n_components=3, random_state=0, init_params=init_params, max_iter=200)
    fits = [fastem.GaussianMixture(**options).fit(da.from_array(X, chunks=(rows, 3)))
            for rows in (30_000, 17_000)]
    _assert_same_mixture(fits[0], fits[1], exact=False)
    if init_params == "random":
        return  # random responsibilities are drawn differently in memory
    memory = fastem.GaussianMixture(**options).fit(X)
    order = [np.argsort(m.means_[:, 0]) for m in (fits[0], memory)]
    np.testing.assert_allclose(fits[0].means_[order[0]], memory.means_[order[1]], rtol=1e-4)
    assert fits[0].lower_bound_ == pytest.approx(memory.lower_bound_, rel=1e-6)


def test_tree_reduction_agrees_with_the_in_memory_fit_to_round_off(client, monkeypatch):
    import dask

    from fastem.engine import dask_backend

    monkeypatch.setattr(dask_backend, "TREE_FAN_IN", 2)  # three levels for 5 partitions
    X = _mixture_data(n=100_000)
    options = dict(n_components=3, random_state=0, max_iter=6, tol=0.0)
    memory = fastem.GaussianMixture(**options).fit(X)
    with dask.config.set({"fastem.reduction": "tree"}):
        fits = [fastem.GaussianMixture(**options).fit(da.from_array(X, chunks=(rows, 3)))
                for rows in (20_000, 30_000)]
    _assert_same_mixture(fits[0], memory, exact=False)
    _assert_same_mixture(fits[1], memory, exact=False)
    backend = dask_backend.DaskBackend(da.from_array(X, chunks=(20_000, 3)))
    assert backend.reduction == "segments"  # few rows: the bitwise mode
    with pytest.raises(ValueError, match="reduction"):
        dask_backend.DaskBackend(da.from_array(X, chunks=(20_000, 3)), reduction="sum")


def test_dask_predictions_match_numpy(client):
    X = _mixture_data(n=20_000)
    model = fastem.GaussianMixture(3, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=(7_000, 3))
    labels = model.predict(Xd)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), model.predict(X))
    np.testing.assert_array_equal(model.score_samples(Xd).compute(), model.score_samples(X))
    np.testing.assert_array_equal(model.predict_proba(Xd).compute(), model.predict_proba(X))
    assert model.score(Xd) == pytest.approx(model.score(X), rel=1e-12)


def test_dataframe_uses_its_numeric_columns_and_remembers_them(client):
    X = _mixture_data(n=6_000)
    frame = pd.DataFrame({"a": X[:, 0], "label": "text", "b": X[:, 1], "c": X[:, 2]})
    ddf = dd.from_pandas(frame, npartitions=3)
    model = fastem.GaussianMixture(3, random_state=0).fit(ddf)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    reference = fastem.GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-10)
    reordered = dd.from_pandas(frame[["c", "b", "label", "a"]], npartitions=2)
    np.testing.assert_array_equal(model.predict(reordered).compute(), reference.predict(X))


def test_missing_data_mixture_and_imputer_on_dask(client):
    X = _mixture_data()
    holes = np.random.RandomState(3).uniform(size=X.shape) < 0.1
    holes[holes.all(axis=1)] = False
    X[holes] = np.nan
    options = dict(n_components=3, random_state=0, max_iter=5, tol=0.0, missing="marginalize")
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.GaussianMixture(**options).fit(X)
    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.GaussianMixture(**options).fit(da.from_array(X, chunks=(SEGMENT, 3)))
    _assert_same_mixture(cluster, memory, exact=True)
    imputer = fastem.EMImputer(3, random_state=0, max_iter=5).fit(X[:20_000])
    filled = imputer.transform(da.from_array(X[:20_000], chunks=(6_000, 3)))
    np.testing.assert_array_equal(filled.compute(), imputer.transform(X[:20_000]))


def test_posterior_draws_on_dask_differ_between_partitions_and_repeat_by_seed():
    X = _mixture_data(n=8_000)
    X[::3, 1] = np.nan
    imputer = fastem.EMImputer(3, random_state=0, max_iter=5, sample_posterior=True).fit(X)
    Xd = da.from_array(np.vstack([X[:4_000], X[:4_000]]), chunks=(4_000, 3))
    filled = imputer.transform(Xd).compute()
    first, second = filled[:4_000:3, 1], filled[4_000::3, 1]
    assert not np.any(first == second)  # the same rows, drawn independently
    np.testing.assert_array_equal(imputer.transform(Xd).compute(), filled)
    observed = ~np.isnan(X[:4_000])
    np.testing.assert_array_equal(filled[:4_000][observed], X[:4_000][observed])
    # The draws follow the conditional distribution: their mean is the conditional mean.
    imputer.sample_posterior = False
    mean_fill = imputer.transform(X[:4_000])[::3, 1]
    assert abs(np.mean(first - mean_fill)) < 0.1 and np.std(first - mean_fill) > 0.3


def test_a_worker_killed_during_the_fit_changes_nothing(client):
    X = _mixture_data()
    options = dict(n_components=3, random_state=0, max_iter=8, tol=0.0)
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.GaussianMixture(**options).fit(X)
    killed = []

    def kill_a_worker(iteration, objective, model):
        if iteration == 3 and not killed:
            address, pid = sorted(client.run(os.getpid).items())[0]
            os.kill(pid, signal.SIGKILL)  # the nanny restarts it; dask reruns its tasks
            killed.append(address)

    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.GaussianMixture(**options, callback=kill_a_worker).fit(
            da.from_array(X, chunks=(SEGMENT, 3)))
    assert killed
    _assert_same_mixture(cluster, memory, exact=True)


# -- hidden Markov models ------------------------------------------------------------------
def _hmm_data(n_sequences, length, seed=0):
    rng = np.random.RandomState(seed)
    states = np.repeat(rng.randint(0, 3, size=n_sequences * length // 64 + 1), 64)
    X = rng.normal(size=(n_sequences * length, 2)) + 3.0 * states[:n_sequences * length, None]
    return X, np.full(n_sequences, length)


def test_gaussian_hmm_on_aligned_partitions_equals_the_in_memory_fit(client):
    X, lengths = _hmm_data(256, 1024)  # 128 sequences fill one segment exactly
    options = dict(n_components=3, random_state=0, n_iter=5, tol=-np.inf)
    memory = fastem.GaussianHMM(**options).fit(X, lengths)
    cluster = fastem.GaussianHMM(**options).fit(da.from_array(X, chunks=(SEGMENT, 2)), lengths)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_array_equal(getattr(cluster, name), getattr(memory, name))
    assert cluster.monitor_.history == memory.monitor_.history
    Xd = da.from_array(X[:20 * 1024], chunks=(5 * 1024, 2))
    np.testing.assert_array_equal(cluster.predict(Xd, lengths[:20]).compute(),
                                  memory.predict(X[:20 * 1024], lengths[:20]))
    assert cluster.score(Xd, lengths[:20]) == pytest.approx(
        memory.score(X[:20 * 1024], lengths[:20]), rel=1e-12)


def test_hmm_initialisation_sample_is_whole_partitions_drawn_over_all_of_them():
    from fastem.engine.dask_backend import DaskBackend

    X = np.repeat(np.arange(6.0), 2_000)[:, None]  # partition p holds the value p
    backend = DaskBackend(da.from_array(X, chunks=(2_000, 1)), weights=np.arange(1.0, 61.0),
                          bounds=[np.arange(0, 2_001, 200)] * 6, init_rows=4_000)
    block = backend.initialization_block()
    chosen = np.unique(block.X[:, 0]).astype(int)
    assert block.n_rows == 4_000 and len(chosen) == 2 and chosen[-1] > 1
    np.testing.assert_array_equal(block.bounds, np.arange(0, 4_001, 200))
    # Each partition's sequence weights come with it (partition p holds sequences 10p..).
    expected = np.concatenate([np.arange(1.0, 11.0) + 10 * p for p in chosen])
    np.testing.assert_array_equal(block.weights, expected)


def test_hmm_from_a_dataframe_with_a_sequence_id_column(client):
    X, lengths = _hmm_data(30, 200)
    ids = np.repeat(np.arange(30) * 7, 200)  # any id values; sequences are runs
    frame = pd.DataFrame({"series": ids, "x": X[:, 0], "y": X[:, 1]})
    ddf = dd.from_pandas(frame, npartitions=3, sort=False)
    options = dict(n_components=3, random_state=0, n_iter=5, tol=-np.inf)
    memory = fastem.GaussianHMM(**options).fit(X, lengths)
    cluster = fastem.GaussianHMM(**options).fit(ddf, lengths="series")
    np.testing.assert_allclose(cluster.means_, memory.means_, rtol=1e-10)
    np.testing.assert_allclose(cluster.transmat_, memory.transmat_, rtol=1e-10, atol=1e-14)
    assert list(cluster.feature_names_in_) == ["x", "y"]


def test_a_partition_that_splits_a_sequence_is_refused_with_its_name():
    X, lengths = _hmm_data(10, 100)
    with pytest.raises(ValueError, match=r"sequence 2 \(rows 200 to 299\) spans two partitions"):
        fastem.GaussianHMM(2).fit(da.from_array(X, chunks=(250, 2)), lengths)
    frame = pd.DataFrame({"id": np.repeat(["a", "b", "c", "d"], 250), "x": X[:, 0]})
    ddf = dd.from_pandas(frame, npartitions=1).repartition(divisions=[0, 300, 999])
    with pytest.raises(ValueError, match="sequence 'b' spans partitions 0 and 1"):
        fastem.GaussianHMM(2).fit(ddf, lengths="id")
    with pytest.raises(ValueError, match="one sequence"):
        fastem.GaussianHMM(2).fit(da.from_array(X, chunks=(500, 2)))


def test_categorical_hmm_learns_the_alphabet_over_all_partitions():
    rng = np.random.RandomState(0)
    X = rng.randint(0, 4, size=(2_000, 1))
    X[1_999] = 6  # the largest symbol is in the last partition only
    cluster = fastem.CategoricalHMM(2, random_state=0, n_iter=3).fit(
        da.from_array(X, chunks=(500, 1)), [500] * 4)
    memory = fastem.CategoricalHMM(2, random_state=0, n_iter=3).fit(X, [500] * 4)
    assert cluster.emissionprob_.shape == (2, 7)
    np.testing.assert_allclose(cluster.emissionprob_, memory.emissionprob_, rtol=1e-10)


# -- the command line on Parquet globs ---------------------------------------------------------
def _parquet_parts(folder, n_parts=4, rows=6_000):
    rng = np.random.RandomState(5)
    frames = []
    for i in range(n_parts):
        X, _ = _hmm_data(rows // 200, 200, seed=i)
        frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "note": "text",
                              "series": np.repeat(np.arange(rows // 200) + 1000 * i, 200)})
        frame["b"] += rng.normal(scale=0.01, size=rows)
        frame.to_parquet(folder / f"part-{i}.parquet")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_cli_fits_predicts_and_scores_parquet_globs_on_the_cluster(client, tmp_path, capsys):
    from fastem.cli import main

    (tmp_path / "data").mkdir()
    frame = _parquet_parts(tmp_path / "data")
    X = frame[["a", "b"]].to_numpy()
    pattern = str(tmp_path / "data" / "part-*.parquet")
    model_path = str(tmp_path / "m.npz")
    assert main(["fit", "gmm", pattern, "--columns", "a,b", "--n-components", "3",
                 "--output", model_path]) == 0
    printed = capsys.readouterr().out
    assert "24000 rows" in printed
    fitted = fastem.load(model_path)
    memory = fastem.GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(fitted.means_, memory.means_, rtol=1e-10)
    address = client.scheduler.address
    labels_path = str(tmp_path / "labels.parquet")
    assert main(["predict", model_path, str(tmp_path / "data"), "--scheduler", address,
                 "--output", labels_path]) == 0
    np.testing.assert_array_equal(pd.read_parquet(labels_path)["label"].to_numpy(),
                                  fitted.predict(X))
    scores_path = str(tmp_path / "scores.parquet")
    assert main(["score", model_path, pattern, "--scheduler", address,
                 "--output", scores_path]) == 0
    total = float(capsys.readouterr().out)
    per_row = pd.read_parquet(scores_path)["log_likelihood"].to_numpy()
    np.testing.assert_allclose(per_row, fitted.score_samples(X), rtol=1e-12)
    assert total == pytest.approx(fitted.score_samples(X).sum(), rel=1e-9)
    # Refusals: one line each, status 2.
    assert main(["predict", model_path, pattern, "--output", labels_path]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["predict", model_path, pattern]) == 2
    assert "needs --output" in capsys.readouterr().err
    assert main(["predict", model_path, str(tmp_path / "none-*.parquet"), "--output",
                 str(tmp_path / "x.parquet")]) == 2
    assert "no files match" in capsys.readouterr().err


@pytest.mark.parametrize("form", ["parquet", "csv", "directory"])
def test_cli_names_the_file_that_lacks_a_column_in_one_line(tmp_path, capsys, form):
    # Dask takes the columns from the first file; a later one with another name ended
    # in pandas' KeyError and a 43-line traceback.
    from fastem.cli import main

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.RandomState(0)
    for i, names in enumerate((["a", "b"], ["a", "b"], ["a", "c"])):
        frame = pd.DataFrame(rng.normal(size=(50, 2)), columns=names)
        if form == "csv":
            frame.to_csv(folder / f"part-{i}.csv", index=False)
        else:
            frame.to_parquet(folder / f"part-{i}.parquet")
    data = str(folder) if form == "directory" else str(folder / f"part-*.{form}")
    for columns in ([], ["--columns", "a,b"]):
        assert main(["fit", "gmm", data, "--n-components", "2", *columns]) == 2
        message = capsys.readouterr().err.strip()
        assert len(message.splitlines()) == 1, message
        assert "part-2." in message and "no column 'b'" in message


def test_cli_keeps_local_workers_logs_off_stderr(tmp_path):
    # With --scheduler local, a failing task made distributed's workers print their
    # error logs (8-51 lines) before fastem's one-line message.
    import subprocess

    folder = tmp_path / "data"
    folder.mkdir()
    X = np.random.RandomState(1).normal(size=(100, 2))
    X[7, 1] = np.inf
    for i in range(2):
        pd.DataFrame(X[50 * i:50 * (i + 1)], columns=["a", "b"]).to_parquet(
            folder / f"part-{i}.parquet")
    command = [sys.executable, "-m", "fastem.cli", "fit", "gmm",
               str(folder / "part-*.parquet"), "--n-components", "2", "--scheduler", "local"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fastem fit: error: Input X contains infinity or a value too large for "
        "dtype('float64')."], done.stderr


def test_cli_fits_an_hmm_from_a_parquet_directory_with_a_sequence_column(tmp_path, capsys):
    from fastem.cli import main

    (tmp_path / "data").mkdir()
    frame = _parquet_parts(tmp_path / "data")
    model_path = str(tmp_path / "h.npz")
    assert main(["fit", "hmm-gaussian", str(tmp_path / "data"), "--columns", "a,b",
                 "--sequence-column", "series", "--n-components", "3", "--quiet",
                 "--output", model_path]) == 0
    fitted = fastem.load(model_path)
    lengths = frame.groupby("series", sort=False).size().to_numpy()
    memory = fastem.GaussianHMM(3, covariance_type="diag", random_state=0).fit(
        frame[["a", "b"]].to_numpy(), lengths)
    np.testing.assert_allclose(fitted.means_, memory.means_, rtol=1e-9)
    assert main(["score", model_path, str(tmp_path / "data" / "*.parquet")]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(
        memory.score(frame[["a", "b"]].to_numpy(), lengths), rel=1e-9)
    assert main(["fit", "hmm-gaussian", str(tmp_path / "data"), "--columns", "a,b"]) == 2
    assert "--sequence-column" in capsys.readouterr().err


def test_bayesian_mixture_on_aligned_partitions_equals_the_in_memory_fit_bitwise(client):
    """The data-dependent priors, the start and every pass are the same passes."""
    X = _mixture_data()
    weights = np.random.RandomState(3).uniform(0.5, 2.0, size=len(X))
    options = dict(n_components=5, covariance_type="diag", random_state=0, max_iter=6,
                   tol=0.0, init_params="random")
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.BayesianGaussianMixture(**options).fit(X, sample_weight=weights)
    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.BayesianGaussianMixture(**options).fit(
            da.from_array(X, chunks=(SEGMENT, 3)), sample_weight=weights)
    for name in ("weights_", "means_", "covariances_", "mean_prior_", "covariance_prior_",
                 "degrees_of_freedom_", "mean_precision_"):
        np.testing.assert_array_equal(getattr(cluster, name), getattr(memory, name),
                                      err_msg=name)
    assert cluster.lower_bounds_ == memory.lower_bounds_
    np.testing.assert_array_equal(cluster.predict(da.from_array(X, chunks=(SEGMENT, 3)))
                                  .compute(), memory.predict(X))


def test_variational_hmm_on_partitions_of_whole_sequences_equals_the_in_memory_fit(client):
    rng = np.random.RandomState(4)
    lengths = rng.randint(50, 150, size=40)
    X = np.repeat(rng.normal(scale=3.0, size=(3, 2)), [lengths.sum() // 3, lengths.sum() // 3,
                                                       lengths.sum() - 2 * (lengths.sum() // 3)],
                  axis=0) + rng.normal(size=(lengths.sum(), 2))
    options = dict(covariance_type="diag", random_state=0, n_iter=6, tol=-np.inf)
    memory = fastem.VariationalGaussianHMM(3, **options).fit(X, lengths)
    bounds = np.cumsum(lengths)
    cut = int(bounds[19])  # two partitions of whole sequences
    cluster = fastem.VariationalGaussianHMM(3, **options).fit(
        da.from_array(X, chunks=((cut, len(X) - cut), (2,))), lengths)
    np.testing.assert_allclose(cluster.means_posterior_, memory.means_posterior_, rtol=1e-10)
    np.testing.assert_allclose(list(cluster.monitor_.history), list(memory.monitor_.history),
                               rtol=1e-12)


# -- mixtures of experts ---------------------------------------------------------------------
def _moe_data(expert, n=60_000, seed=5):
    rng = np.random.RandomState(seed)
    X = np.column_stack([rng.uniform(0, 10, size=n), rng.normal(size=n)])
    component = (rng.uniform(size=n) < 1 / (1 + np.exp(-(X[:, 0] - 5)))).astype(int)
    eta = np.where(component == 0, 0.3 + 0.15 * X[:, 0], 2.0 - 0.1 * X[:, 0]) + 0.2 * X[:, 1]
    if expert == "poisson":
        return X, rng.poisson(np.exp(eta)).astype(float)
    if expert == "binomial":
        trials = rng.randint(1, 30, size=n).astype(float)
        return X, rng.binomial(trials.astype(int), 1 / (1 + np.exp(1.5 - eta))) * 1.0, trials
    return X, 3 * eta + rng.normal(size=n)


@pytest.mark.parametrize("expert,gating", [("gaussian", "softmax"), ("poisson", "gaussian"),
                                           ("binomial", "constant")])
def test_mixture_of_experts_on_dask_equals_the_in_memory_fit(client, expert, gating):
    """The same start (all rows gathered) and the same kernels on the workers: the fits
    differ only by the round-off of the column means."""
    X, y, *trials = _moe_data(expert)
    trials = trials[0] if trials else None
    weights = np.random.RandomState(2).uniform(0.5, 2.0, size=len(y))
    options = dict(expert=expert, gating=gating, random_state=0, max_iter=8, tol=0.0)
    with pytest.warns(fastem.ConvergenceWarning):
        memory = fastem.MixtureOfExperts(2, **options).fit(X, y, sample_weight=weights,
                                                           trials=trials)
    lazy_trials = None if trials is None else da.from_array(trials, chunks=25_000)
    with pytest.warns(fastem.ConvergenceWarning):
        cluster = fastem.MixtureOfExperts(2, **options).fit(
            da.from_array(X, chunks=(25_000, 2)), da.from_array(y, chunks=25_000),
            sample_weight=weights, trials=lazy_trials)
    for name in ("coef_", "intercept_", "weights_"):
        np.testing.assert_allclose(getattr(cluster, name), getattr(memory, name), rtol=1e-8,
                                   err_msg=name)
    assert cluster.lower_bounds_ == pytest.approx(memory.lower_bounds_, rel=1e-10)
    assert cluster.n_iter_ == memory.n_iter_
    if trials is not None:
        np.testing.assert_allclose(
            cluster.predict(da.from_array(X, chunks=(25_000, 2)), trials=lazy_trials).compute(),
            cluster.predict(X, trials=trials), rtol=1e-12)


def test_mixture_of_experts_from_a_dataframe_and_its_bad_input(client):
    X, y = _moe_data("poisson", n=20_000)
    frame = dd.from_pandas(pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": y}), npartitions=3)
    model = fastem.MixtureOfExperts(2, expert="poisson", random_state=0, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        model.fit(frame[["a", "b"]], frame["y"])
        memory = fastem.MixtureOfExperts(2, expert="poisson", random_state=0,
                                         max_iter=20).fit(X, y)
    assert list(model.feature_names_in_) == ["a", "b"]
    np.testing.assert_allclose(model.coef_, memory.coef_, rtol=1e-8)
    Xd, yd = frame[["a", "b"]], frame["y"]
    np.testing.assert_allclose(model.score_samples(Xd, yd).compute(),
                               model.score_samples(X, y), rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(Xd, y).compute(), model.predict_proba(X, y),
                               rtol=1e-12)
    np.testing.assert_array_equal(model.predict_component(Xd, yd).compute(),
                                  model.predict_component(X, y))
    np.testing.assert_allclose(model.predict(Xd).compute(), model.predict(X), rtol=1e-12)
    np.testing.assert_allclose(model.gate_proba(Xd).compute(), model.gate_proba(X), rtol=1e-12)
    assert model.score(Xd, yd) == pytest.approx(model.score(X, y), rel=1e-12)
    negative = frame["y"] - 100.0
    with pytest.raises(ValueError, match="non-negative counts"):
        fastem.MixtureOfExperts(2, expert="poisson").fit(frame[["a", "b"]], negative)
    with pytest.raises(ValueError, match="y must have one entry per row"):
        fastem.MixtureOfExperts(2).fit(frame[["a", "b"]], y[:-1])
    with pytest.raises(ValueError, match="gating_columns"):
        fastem.MixtureOfExperts(2, gating="softmax", gating_columns=[5]).fit(
            frame[["a", "b"]], frame["y"])


# -- dask stays optional ---------------------------------------------------------------------
def test_without_dask_a_dask_input_names_the_extra(monkeypatch):
    Xd = da.from_array(_mixture_data(n=1_000), chunks=(500, 3))
    for name in [m for m in sys.modules if m == "dask" or m.startswith("dask.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"fastem\[dask\]"):
        fastem.GaussianMixture(2).fit(Xd)
