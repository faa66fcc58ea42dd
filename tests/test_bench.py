"""The comparison tool: its measurements and report (python -m fastem.bench)."""

import numpy as np
import pytest

from fastem.bench.__main__ import format_report, main
from fastem.bench.measure import PeakMemory, per_iteration
from fastem.bench.mixture import compare_iterations


def test_peak_memory_sees_a_temporary_allocation():
    with PeakMemory() as memory:
        block = np.ones(40_000_000)  # 320 MB, touched
        block.sum()
        del block
    assert memory.peak is not None
    assert memory.peak > 250e6


def test_per_iteration_is_the_difference_of_four_and_one_iterations():
    calls = []

    def fit(max_iter):
        calls.append(max_iter)
        np.ones(200_000 * max_iter).sum()

    assert per_iteration(fit, repeats=2) >= 0.0
    assert calls == [1, 1, 4, 4]


def test_comparison_starts_both_libraries_from_the_same_parameters():
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    record = compare_iterations(3000, 3, 3, "full", 1, sklearn_mixture.GaussianMixture)
    # Same start, same arithmetic: the final log-likelihoods agree to round-off.
    assert record["loglik_diff"] < 1e-9
    assert record["fastem_ms"] >= 0 and record["sklearn_ms"] >= 0  # tiny data: noise-level
    assert record["fastem_peak_mb"] is not None and record["sklearn_peak_mb"] is not None
    report = format_report({"per_iteration": [record], "float32": [], "kmeans": [],
                            "full_pass": [], "memory": [], "hmm": [], "missing": []},
                           {"cpu": "test cpu", "cores": 2, "python": "3"})
    row = [line for line in report.splitlines() if line.startswith("| N=3,000 D=3 K=3 full")]
    assert len(row) == 1
    assert f"{record['ratio']:.1f}x" in row[0]


def test_bad_option_is_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--repeats", "0"])
    assert exit_info.value.code == 2
    assert "--repeats must be at least 1" in capsys.readouterr().err


def test_hmm_comparison_runs_both_libraries_from_the_same_start():
    reference = pytest.importorskip("hmmlearn.hmm")
    from fastem.bench.hmm import compare

    record = compare("tiny", "gaussian", 3, 200, 3, 2, 1, reference)
    assert record["loglik_diff"] < 1e-8 * 1e3
    assert {"hmmlearn_log_ms", "hmmlearn_scaling_ms", "ratio_log"} <= set(record)


def test_missing_data_comparison_times_both_fits():
    from fastem.bench.mixture import compare_missing

    record = compare_missing(4000, 3, 2, "full", 0.2, 1)
    assert record["complete_ms"] >= 0 and record["missing_ms"] >= 0
    assert "20% missing" in record["workload"]


@pytest.mark.parametrize("expert,gating", [("gaussian", "constant"), ("poisson", "softmax"),
                                           ("binomial", "gaussian")])
def test_moe_benchmark_runs_and_times_every_kind(expert, gating, capsys):
    """The benchmark reads the estimator's public attributes: a change of their shapes
    must break this test, not the benchmark run before a release."""
    from fastem.bench.moe import main as moe_main

    record = moe_main(["--rows", "2000", "--repeats", "1", "--iterations", "2",
                       "--expert", expert, "--gating", gating, "--no-flexmix"])
    assert record["expert"] == expert and record["gating"] == gating
    assert np.isfinite(record["fastem_s_per_iteration"])
    assert ("speedup_over_numpy" in record) == (expert == "gaussian" and gating == "constant")
    assert '"fastem_s_per_iteration"' in capsys.readouterr().out


def test_variational_benchmark_starts_both_libraries_alike():
    pytest.importorskip("sklearn")
    from fastem.bench.variational import compare

    record = compare(3_000, 4, 5, "diag", 1)
    assert record["lower_bound_relative_difference"] < 1e-10  # same start, same arithmetic
    assert record["fastem_s_per_iteration"] >= 0 and record["sklearn_s_per_iteration"] >= 0


def test_variational_hmm_benchmark_starts_both_libraries_alike():
    pytest.importorskip("hmmlearn")
    from fastem.bench.variational import compare_hmm

    record = compare_hmm(4, 100, 3, 2, "diag", 1)
    assert record["lower_bound_relative_difference"] < 1e-10
    assert record["fastem_s_per_iteration"] >= 0 and record["hmmlearn_s_per_iteration"] >= 0
