"""Reading data files for the command line (issue 13, part 3): delimiters, index and text
columns, native .npy."""

import subprocess
import sys

import numpy as np
import pytest

from fastem import _tabular


def test_semicolon_and_pipe_separated_files_are_detected(tmp_path):
    X = np.random.RandomState(0).normal(size=(30, 3))
    for delimiter in (";", "|", "\t", ","):
        path = tmp_path / "data.csv"
        np.savetxt(path, X, delimiter=delimiter, header=delimiter.join("abc"), comments="")
        values, names, _, skipped = _tabular.read_table(str(path))
        np.testing.assert_allclose(values, X, rtol=1e-15)
        assert names == ["a", "b", "c"] and skipped == []


def test_pandas_index_and_text_columns_are_skipped_and_named(tmp_path):
    path = tmp_path / "frame.csv"
    rows = ["" + ",x,label,y"] + [f"{i},{i * 0.5},{'ab'[i % 2]},{-i}" for i in range(6)]
    path.write_text("\n".join(rows) + "\n")
    values, names, _, skipped = _tabular.read_table(str(path))
    assert names == ["x", "y"]
    np.testing.assert_array_equal(values, np.c_[np.arange(6) * 0.5, -np.arange(6)])
    assert skipped == ["column 0 (unnamed)", "label"]
    with pytest.raises(ValueError, match="label.*not numeric"):
        _tabular.read_table(str(path), columns="x,label")
    # A numeric column with a stray word is still an error, never skipped.
    path.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match="row 2, column 'b'"):
        _tabular.read_table(str(path))


def test_missing_tokens_become_nan(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("a,b\n1,NA\n,2\n3,nan\n")
    values, _, _, _ = _tabular.read_table(str(path))
    np.testing.assert_array_equal(np.isnan(values), [[False, True], [True, False],
                                                     [False, True]])


def test_npy_is_read_natively(tmp_path):
    X = (np.random.RandomState(1).normal(size=(50, 4)) * 1e-7).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    values, names, _, _ = _tabular.read_table(str(tmp_path / "X.npy"))
    np.testing.assert_array_equal(values, X.astype(np.float64))
    assert names == ["x0", "x1", "x2", "x3"]
    np.save(tmp_path / "text.npy", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="numeric"):
        _tabular.read_table(str(tmp_path / "text.npy"))


def test_the_command_names_skipped_columns(tmp_path):
    path = tmp_path / "frame.csv"
    rng = np.random.RandomState(2)
    lines = [",a,b,kind"] + [f"{i},{rng.normal()},{rng.normal()},k{i % 3}" for i in range(60)]
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "fastem.cli", "fit", "gmm", str(path),
                           "--n-components", "2", "--quiet", "--output",
                           str(tmp_path / "m.npz")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "skipped non-numeric or index columns: column 0 (unnamed), kind" in done.stderr


def _fastem(*args):
    return subprocess.run([sys.executable, "-m", "fastem.cli", *map(str, args)],
                          capture_output=True, text=True, check=False)


def test_command_mistakes_are_one_line_and_come_before_any_work(tmp_path):
    data = tmp_path / "data.csv"
    np.savetxt(data, np.random.RandomState(3).normal(size=(40, 2)), delimiter=",")
    cases = [
        (("fit", "gmm", data, "--covariance-type", "bogus"), "invalid choice: 'bogus'"),
        (("fit", "hmm-poisson", data, "--covariance-type", "full"), "does not apply"),
        (("fit", "gmm", data, "--output", tmp_path / "missing" / "m.npz"), "does not exist"),
        (("fit", "gmm", data, "--plot", tmp_path / "missing" / "p.png"), "--plot"),
        (("fit", "hmm-gaussian", data, "--lengths", tmp_path / "nope.txt"),
         "--lengths: "),
        (("predict", data, data), "not a readable fastem model file"),
    ]
    for args, message in cases:
        done = _fastem(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    done = _fastem("--version")
    assert done.returncode == 0 and done.stdout.startswith("fastem ")
    nan = tmp_path / "nan.csv"
    nan.write_text("a,b\n1,2\nnan,3\n4,5\n6,7\n")
    done = _fastem("fit", "gmm", nan, "--n-components", "1")
    assert done.returncode == 2 and "--missing marginalize" in done.stderr


def test_predict_and_score_reuse_the_columns_and_sequences_of_the_fit(tmp_path):
    import fastem

    rng = np.random.RandomState(4)
    rows = ["firm,a,b"]
    X, lengths = [], []
    for firm in range(5):
        steps = rng.normal(size=(30, 2)) + 3 * (rng.rand(30, 1) < 0.5)
        X.append(steps)
        lengths.append(30)
        rows += [f"F{firm},{x:.17g},{y:.17g}" for x, y in steps]
    path = tmp_path / "panel.csv"
    path.write_text("\n".join(rows) + "\n")
    model_path = tmp_path / "hmm.npz"
    done = _fastem("fit", "hmm-gaussian", path, "--sequence-column", "firm", "--n-components",
                   "2", "--quiet", "--output", model_path)
    assert done.returncode == 0, done.stderr
    model = fastem.load(model_path)
    assert model.sequence_column_ == "firm" and list(model.feature_names_in_) == ["a", "b"]
    expected = model.score(np.concatenate(X), lengths)
    done = _fastem("score", model_path, path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(float(done.stdout), expected, rtol=1e-9)
    # Columns in another order, and an extra one: the fit's columns are read by name.
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join(["b,extra,firm,a"] + [
        f"{line.split(',')[2]},0,{line.split(',')[0]},{line.split(',')[1]}"
        for line in rows[1:]]) + "\n")
    done = _fastem("score", model_path, shuffled)
    np.testing.assert_allclose(float(done.stdout), expected, rtol=1e-9)


def test_wide_summaries_stay_short_and_hmm_verbose_prints_the_change(tmp_path):
    wide = tmp_path / "wide.csv"
    np.savetxt(wide, np.random.RandomState(5).normal(size=(200, 20)), delimiter=",")
    done = _fastem("fit", "gmm", wide, "--n-components", "2")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) <= 8 and "shape (2, 20, 20)" in done.stdout
    done = _fastem("fit", "hmm-gaussian", wide, "--n-components", "2", "--verbose",
                   "--max-iter", "3", "--columns", "0,1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ll change") == 3


def test_every_option_of_every_command_has_help():
    import argparse

    from fastem.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"fastem {name}: {action.dest} has no help"
    text = commands.choices["select"].format_help()
    assert "(default: 0)" in text and "(default: 1-6)" in text
