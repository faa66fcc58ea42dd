"""The `fastem` command through its installed entry point (subprocesses)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastem


def _command():
    script = os.path.join(os.path.dirname(sys.executable), "fastem")
    if os.path.exists(script):
        return [script]
    found = shutil.which("fastem")
    return [found] if found else [sys.executable, "-m", "fastem.cli"]


def run(*args, check=True):
    done = subprocess.run([*_command(), *map(str, args)], capture_output=True, text=True,
                          timeout=600, check=False)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 4])
    data = folder / "data.csv"
    np.savetxt(data, X, delimiter=",", header="a,b", comments="")
    sequences = folder / "seq.csv"
    ids = np.repeat([1, 2, 3], 100)
    np.savetxt(sequences, np.c_[ids, X], delimiter=",", header="seq,a,b", comments="",
               fmt=["%d", "%.6f", "%.6f"])
    lengths = folder / "lengths.txt"
    lengths.write_text("100 100 100\n")
    return folder, X, data, sequences, lengths


def test_fit_without_arguments_is_the_main_job():
    done = run("fit")
    assert "Old Faithful" in done.stdout and "K=2" in done.stdout


def test_fit_save_predict_round_trip_matches_the_library(files):
    folder, X, data, _, _ = files
    model_path = folder / "gmm.npz"
    report = folder / "report.json"
    done = run("fit", "gmm", data, "--n-components", 2, "--output", model_path,
               "--report", report)
    assert "GaussianMixture, 2 components" in done.stdout
    library = fastem.load(model_path)
    labels = np.loadtxt(run("predict", model_path, data).stdout.splitlines(), dtype=int)
    np.testing.assert_array_equal(labels, library.predict(X))
    proba = np.loadtxt(run("predict", model_path, data, "--proba").stdout.splitlines(),
                       delimiter=",")
    np.testing.assert_allclose(proba, library.predict_proba(X), rtol=1e-5, atol=1e-6)
    score = float(run("score", model_path, data).stdout)
    assert abs(score - library.score_samples(X).sum()) < 1e-5 * abs(score)
    content = json.loads(report.read_text())
    assert content["model"] == "GaussianMixture" and content["n_components"] == 2
    assert abs(content["log_likelihood"] - score) < 1e-5 * abs(score)
    rows = run("sample", model_path, 7, "--random-state", 1).stdout.splitlines()
    assert len(rows) == 7 and len(rows[0].split(",")) == 3


def test_hmm_fit_with_sequences_from_a_column_or_a_file(files):
    folder, X, _, sequences, lengths = files
    model_path = folder / "hmm.npz"
    run("fit", "hmm-gaussian", sequences, "--sequence-column", "seq", "--n-components", 2,
        "--output", model_path, "--quiet")
    library = fastem.load(model_path)
    X = np.loadtxt(sequences, delimiter=",", skiprows=1)[:, 1:]  # the values as written
    expected = fastem.GaussianHMM(2, random_state=0).fit(X, [100, 100, 100])
    np.testing.assert_allclose(library.means_, expected.means_, rtol=1e-10)
    states = np.loadtxt(run("predict", model_path, sequences, "--columns", "a,b", "--lengths",
                            lengths).stdout.splitlines(), dtype=int)
    np.testing.assert_array_equal(states, library.predict(X, [100, 100, 100]))


def test_select_prints_the_grid_and_the_best_model(files):
    _, _, data, _, _ = files
    done = run("select", data, "--n-components", "1-3", "--covariance-type", "full,diag")
    assert "full BIC" in done.stdout and "diag BIC" in done.stdout
    assert "best: 2 components" in done.stdout


def test_plots_are_written(files):
    pytest.importorskip("matplotlib")
    folder, _, data, _, _ = files
    run("fit", "gmm", data, "--n-components", 2, "--plot", folder / "fit.png", "--quiet")
    run("select", data, "--n-components", "1-2", "--plot", folder / "bic.png")
    for name in ("fit.png", "bic.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["fit", "gmm", "/no/such/file.csv"], "no such file"),
    (["fit", "gmm", "DATA", "--columns", "zz"], "no column 'zz'"),
    (["fit", "hmm-categorical", "DATA"], "one column of symbols"),
    (["fit", "nonsense", "DATA"], "unknown model"),
    (["select", "DATA", "--n-components", "5-2"], "--n-components"),
    (["predict", "/no/model.npz", "DATA"], "No such file|no such file"),
])
def test_errors_are_one_line_without_traceback(files, args, message):
    _, _, data, _, _ = files
    done = run(*[str(data) if a == "DATA" else a for a in args], check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message.split("|")[0].lower() in lines[0].lower() or \
        message.split("|")[-1] in lines[0]


def test_unparsable_data(files):
    folder = files[0]
    bad = folder / "bad.csv"
    bad.write_text("a,b\n1,2\n3,oops\n")
    done = run("fit", "gmm", bad, check=False)
    assert done.returncode == 2 and "'oops' is not a number" in done.stderr


def test_progress_line_only_on_a_terminal_and_after_a_second():
    import io

    from fastem.cli import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    progress = _Progress(True, stream=terminal)
    progress(1, -3.0, None)  # within the first second: nothing shown
    assert terminal.getvalue() == ""
    progress.started -= 2.0
    assert progress(2, -2.5, None) is False  # never stops the fit
    progress.close()
    assert "iteration    2" in terminal.getvalue() and "change +5.000e-01" in terminal.getvalue()
    pipe = io.StringIO()
    quiet = _Progress(True, stream=pipe)
    quiet.started -= 2.0
    quiet(1, -1.0, None)
    assert pipe.getvalue() == ""


# -- issue 11, item 13: robustness of the command ---------------------------------------------
def test_byte_order_mark_loses_no_row(tmp_path, files):
    X = np.random.RandomState(1).normal(size=(300, 2))
    text = "\n".join(f"{a:.6f},{b:.6f}" for a, b in X)
    plain = tmp_path / "bom.csv"
    plain.write_bytes(b"\xef\xbb\xbf" + text.encode())
    run("fit", "gmm", plain, "--n-components", 2, "--quiet", "--output", tmp_path / "m.npz")
    out = tmp_path / "labels.csv"
    run("predict", tmp_path / "m.npz", plain, "--output", out)
    assert len(out.read_text().split()) == 300
    header = tmp_path / "bom_header.csv"
    header.write_bytes(b"\xef\xbb\xbfa,b\n" + text.encode())
    assert fastem._tabular.read_table(str(header))[1] == ["a", "b"]


def test_oversized_field_and_absurd_sample_are_one_line_errors(tmp_path, files):
    wide = tmp_path / "wide.csv"
    wide.write_text("a,b\n1," + "9" * 200_000 + "\n2,3\n")
    done = run("fit", "gmm", wide, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    run("fit", "gmm", files[2], "--quiet", "--output", tmp_path / "m.npz")
    done = run("sample", tmp_path / "m.npz", 1_000_000_000_000, check=False)
    assert done.returncode == 2 and "n_samples" in done.stderr
    assert "Traceback" not in done.stderr


def test_select_refuses_more_components_than_rows_at_once(files):
    done = run("select", files[2], "--n-components", "1-400", check=False)
    assert done.returncode == 2 and "at most 300" in done.stderr


def test_ctrl_c_exits_130_quietly_and_leaves_no_partial_output(tmp_path):
    import signal
    import time

    X = np.random.RandomState(2).normal(size=(300_000, 8))
    data = tmp_path / "big.npy"
    np.save(data, X)
    output = tmp_path / "model.npz"
    process = subprocess.Popen(
        [*_command(), "fit", "gmm", str(data), "--n-components", "30", "--max-iter", "10000",
         "--tol", "0", "--quiet", "--output", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not output.exists() and not list(tmp_path.glob(".model.npz*"))


def test_fit_moe_matches_the_python_api(tmp_path):
    import fastem

    data = os.path.join(os.path.dirname(__file__), "data", "moe", "betablocker.csv")
    saved = tmp_path / "moe.npz"
    done = run("fit", "moe", data, "--target", "Deaths", "--trials", "Total", "--expert",
               "binomial", "--n-components", 3, "--n-init", 4, "--init-params", "random",
               "--output", saved)
    table = np.loadtxt(data, delimiter=",", skiprows=1)
    direct = fastem.MixtureOfExperts(3, expert="binomial", n_init=4, init_params="random",
                                     random_state=0).fit(table[:, 2:], table[:, 0],
                                                         trials=table[:, 1])
    loaded = fastem.load(saved)
    np.testing.assert_allclose(loaded.coef_, direct.coef_, rtol=1e-10)
    loglik = direct.score_samples(table[:, 2:], table[:, 0], trials=table[:, 1]).sum()
    assert f"log-likelihood {loglik:.4f}" in done.stdout
    assert "logit p =" in done.stdout and "treated" in done.stdout
    # predict and score read the saved columns (features, target, trials) by name.
    shuffled = tmp_path / "shuffled.csv"
    header = open(data).readline().strip().split(",")
    order = [2, 1, 0] + list(range(3, table.shape[1]))
    np.savetxt(shuffled, table[:, order], delimiter=",", comments="",
               header=",".join(header[i] for i in order))
    means = np.loadtxt(run("predict", saved, shuffled).stdout.splitlines())
    np.testing.assert_allclose(means, direct.predict(table[:, 2:], trials=table[:, 1]),
                               rtol=1e-9)
    posterior = np.loadtxt(run("predict", saved, shuffled, "--proba").stdout.splitlines(),
                           delimiter=",")
    np.testing.assert_allclose(posterior, direct.predict_proba(table[:, 2:], table[:, 0],
                                                               trials=table[:, 1]),
                               rtol=1e-5, atol=1e-6)
    per_row = tmp_path / "loglik.csv"
    total = float(run("score", saved, shuffled, "--output", per_row).stdout)
    assert total == pytest.approx(loglik, abs=1e-6)
    np.testing.assert_allclose(np.loadtxt(per_row), direct.score_samples(
        table[:, 2:], table[:, 0], trials=table[:, 1]), rtol=1e-12)
    no_target = tmp_path / "no_target.csv"
    np.savetxt(no_target, table[:, 1:], delimiter=",", comments="",
               header=",".join(header[1:]))
    refused = run("score", saved, no_target, check=False)
    assert refused.returncode == 2 and "'Deaths'" in refused.stderr
    refused = run("sample", saved, 5, check=False)
    assert refused.returncode == 2 and "mixtures of experts" in refused.stderr
    missing = run("fit", "moe", data, check=False)
    assert missing.returncode == 2 and "--target" in missing.stderr


def _with_closed_stdout(*args):
    """Run the command with a reader that has already gone (as ``| head`` leaves)."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        return subprocess.run([*_command(), *map(str, args)], stdout=writing,
                              stderr=subprocess.PIPE, text=True, timeout=600, check=False)
    finally:
        os.close(writing)


@pytest.mark.parametrize("kind", ["gmm", "moe", "gmm-verbose"])
def test_a_closed_pipe_never_loses_the_output_files(files, kind):
    # `fastem fit ... --output M.npz | head` printed the summary first, died on the
    # broken pipe and exited 0 without writing the model.
    folder, X, data, _, _ = files
    model_path, report = folder / f"piped-{kind}.npz", folder / f"piped-{kind}.json"
    # (--verbose prints from inside the fit: a broken pipe there rolled the fit back)
    options = {"gmm": ["--report", report], "moe": ["--target", "b"],
               "gmm-verbose": ["--report", report, "--verbose"]}[kind]
    done = _with_closed_stdout("fit", kind.split("-")[0], data, "--n-components", 2,
                               "--output", model_path, *options)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    model = fastem.load(model_path)
    if kind != "moe":
        assert json.loads(report.read_text())["n_components"] == 2
        np.testing.assert_array_equal(
            model.means_, fastem.GaussianMixture(2, random_state=0).fit(X).means_)
    else:
        assert model.n_components == 2


def test_select_with_a_closed_pipe_still_draws_its_plot(files):
    folder, _, data, _, _ = files
    plot = folder / "piped-select.png"
    done = _with_closed_stdout("select", data, "--n-components", "1-2", "--plot", plot)
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_globs_whose_headers_have_spaces_are_read(tmp_path):
    # The column check read headers by splitting on the delimiter and stripping, where
    # Dask keeps ' b': two valid files were refused ("no column ' b'").
    pytest.importorskip("dask.dataframe")
    rng = np.random.RandomState(0)
    for i in range(2):
        rows = "\n".join(f"{a:.6f}, {b:.6f}" for a, b in rng.normal(size=(60, 2)))
        (tmp_path / f"part-{i}.csv").write_text("a, b\n" + rows + "\n")
    done = run("fit", "gmm", tmp_path / "part-*.csv", "--n-components", 2)
    assert "120 rows" in done.stdout
