"""save/load: exact round trips for every estimator, and every kind of bad file refused."""

import hashlib
import json
import pickle

import numpy as np
import pytest
from helpers import blobs

import fastem
from fastem import io


def _fitted():
    rng = np.random.RandomState(0)
    X = blobs(n=400, n_features=3, n_components=2, seed=1)
    symbols = rng.randint(4, size=(300, 1))
    counts = rng.poisson(3, size=(300, 2))
    holes = X.copy()
    holes[rng.rand(*X.shape) < 0.1] = np.nan
    return [
        (fastem.GaussianMixture(2, covariance_type="tied", random_state=0).fit(X), X),
        (fastem.GaussianMixture(2, missing="marginalize", random_state=0).fit(holes), holes),
        (fastem.GaussianHMM(2, covariance_type="full", random_state=0).fit(X, [150, 250]), X),
        (fastem.GMMHMM(2, n_mix=2, random_state=0).fit(X), X),
        (fastem.CategoricalHMM(2, random_state=0).fit(symbols), symbols),
        (fastem.PoissonHMM(2, random_state=0).fit(counts), counts),
        (fastem.MultinomialHMM(2, random_state=0).fit(counts), counts),
        (fastem.EMImputer().fit(holes), holes),
    ]


def _outputs(model, X):
    if isinstance(model, fastem.EMImputer):
        return [model.transform(X)]
    if isinstance(model, fastem.GaussianMixture):
        return [model.score_samples(X), model.predict_proba(X)]
    return [np.array(model.score(X)), model.predict_proba(X), model.predict(X)]


def _same_attributes(a, b):
    keys = {k for k in vars(a) if k.endswith("_") and not k.startswith("__")}
    assert keys == {k for k in vars(b) if k.endswith("_") and not k.startswith("__")}
    for key in keys:
        x, y = getattr(a, key), getattr(b, key)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype
        elif isinstance(x, fastem.hmm.ConvergenceMonitor):
            assert x.history == y.history and x.converged == y.converged and x.iter == y.iter
        elif isinstance(x, fastem.GaussianMixture):
            _same_attributes(x, y)
        else:
            assert x == y, key


@pytest.mark.parametrize("index", range(8))
def test_round_trip_is_exact(tmp_path, index):
    model, X = _fitted()[index]
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = fastem.load(path)
    assert type(loaded) is type(model)
    assert loaded.get_params().keys() == model.get_params().keys()
    assert repr(loaded) == repr(model)
    _same_attributes(model, loaded)
    for ours, theirs in zip(_outputs(model, X), _outputs(loaded, X), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # Estimators still pickle (scikit-learn convention).
    unpickled = pickle.loads(pickle.dumps(model))
    _same_attributes(model, unpickled)


def test_unfitted_estimator_round_trip(tmp_path):
    model = fastem.GaussianMixture(3, covariance_type="diag", means_init=[[0.0], [1.0], [2.0]])
    model.save(tmp_path / "m.npz")
    loaded = fastem.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.means_init, [[0.0], [1.0], [2.0]])
    assert loaded.covariance_type == "diag" and not hasattr(loaded, "means_")


def _saved(tmp_path):
    model, _ = _fitted()[2]
    path = tmp_path / "model.npz"
    model.save(path)
    return path


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    metadata = json.loads(entries["__metadata__"].tobytes())
    change(entries, metadata)
    text = json.dumps(metadata, sort_keys=True).encode()
    entries["__metadata__"] = np.frombuffer(text, dtype=np.uint8)
    entries["__digest__"] = np.frombuffer(hashlib.sha256(text).hexdigest().encode(),
                                          dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **entries)


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable fastem model file"):
        fastem.load(path)


def test_corrupted_bytes(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    for offset in range(200, 260):
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="not a readable fastem model file"):
        fastem.load(path)


def test_edited_array_is_detected(tmp_path):
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    entries["attr/means_"] = entries["attr/means_"] + 1.0
    with open(path, "wb") as handle:
        np.savez(handle, **entries)
    with pytest.raises(ValueError, match="checksum"):
        fastem.load(path)


def test_edited_metadata_is_detected(tmp_path):
    path = _saved(tmp_path)
    with np.load(path, allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    text = entries["__metadata__"].tobytes().replace(b'"n_iter"', b'"n_itex"', 1)
    entries["__metadata__"] = np.frombuffer(text, dtype=np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **entries)
    with pytest.raises(ValueError, match="checksum"):
        fastem.load(path)


def test_newer_schema_is_refused(tmp_path):
    path = _saved(tmp_path)
    _rewrite(path, lambda entries, metadata: metadata.update(schema=io.SCHEMA + 1))
    with pytest.raises(ValueError, match="schema"):
        fastem.load(path)


def test_invalid_parameters_in_a_consistent_file_are_refused(tmp_path):
    path = _saved(tmp_path)

    def break_transmat(entries, metadata):
        entries["attr/transmat_"] = entries["attr/transmat_"] * 2.0
        metadata["arrays"]["attr/transmat_"]["sha256"] = io._digest(entries["attr/transmat_"])

    _rewrite(path, break_transmat)
    with pytest.raises(ValueError, match="transmat_"):
        fastem.load(path)


def test_files_that_are_not_models(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a readable fastem model file"):
        fastem.load(text)
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable fastem model file"):
        fastem.load(pickled)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(3))
    with pytest.raises(ValueError, match="__metadata__"):
        fastem.load(plain)
    with pytest.raises(FileNotFoundError):
        fastem.load(tmp_path / "missing.npz")


def test_fitted_hmms_keep_no_reference_to_the_training_data():
    X = blobs(n=300, n_features=2, n_components=2, seed=3)
    X[::7, 0] = np.nan
    model = fastem.GaussianHMM(2, missing="marginalize", random_state=0).fit(X)
    mixture = fastem.GMMHMM(2, n_mix=2, random_state=0).fit(np.nan_to_num(X))
    for fitted in (model, mixture):
        assert not any(isinstance(value, tuple) for value in vars(fitted).values())
        assert len(pickle.dumps(fitted)) < X.nbytes


@pytest.mark.parametrize("name", ["lower_bounds_", "monitor_"])
def test_a_nan_in_a_saved_history_is_refused(tmp_path, name):
    import json

    from fastem.bench.fuzz import _entries, _pack

    X = np.random.RandomState(0).normal(size=(60, 2))
    model = (fastem.GaussianMixture(2, random_state=0) if name == "lower_bounds_"
             else fastem.GaussianHMM(2, random_state=0, n_iter=3))
    path = tmp_path / "model.npz"
    model.fit(X).save(path)
    entries = _entries(path.read_bytes())
    metadata = json.loads(bytes(entries["__metadata__"]).decode())
    attributes = metadata["model"]["attributes"]
    if name == "lower_bounds_":
        attributes[name]["value"][0] = float("nan")
    else:
        attributes[name]["monitor"]["history"][0] = float("nan")
    forged = tmp_path / "forged.npz"
    forged.write_bytes(_pack(entries, metadata))
    with pytest.raises(ValueError, match="NaN"):
        fastem.load(forged)
