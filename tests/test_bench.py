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


def test_memory_table_has_every_model_from_every_source_it_takes():
    """The rows the "fit(X) memory" table promises (no child processes run here)."""
    from fastem.bench.peak import EXPERTS, GATES, memory_specs

    specs = memory_specs()
    sources = {}
    for spec in specs:
        sources.setdefault(spec["model"], set()).add(spec["source"])
    streamed = {"array", "memmap", "stream"}
    for model in ("GaussianMixture", "BayesianGaussianMixture", "GaussianHMM", "GMMHMM",
                  "VariationalGaussianHMM", "CategoricalHMM", "PoissonHMM", "MultinomialHMM"):
        assert streamed <= sources[model], model
    assert "dask" in sources["GaussianMixture"] and "dask" in sources["MixtureOfExperts"]
    assert sources["EMImputer"] == {"array"}
    gmm = {spec["covariance_type"] for spec in specs if spec["model"] == "GaussianMixture"}
    assert gmm == {"full", "diag", "tied", "spherical"}
    assert any(s.get("missing") for s in specs if s["model"] == "GaussianMixture")
    experts = {(s["expert"], s["gating"]) for s in specs if s["model"] == "MixtureOfExperts"}
    assert experts == {(e, g) for e in EXPERTS for g in GATES}
    labels = [(s["model"], s["source"], s.get("covariance_type"), s.get("expert"),
               s.get("gating"), s.get("missing")) for s in specs]
    assert len(set(labels)) == len(labels)


def test_memory_rows_are_measured_and_reported_with_their_ratio():
    """Tiny fits of one model per family and source, each in a child process: every row
    gets its peak, the data size and their ratio, and the report prints them."""
    from fastem.bench.peak import memory_rows, memory_specs

    wanted = {("GaussianMixture", "full", "array"), ("GaussianMixture", "full", "memmap"),
              ("GaussianMixture", "full", "stream"), ("GaussianHMM", "full", "stream"),
              ("CategoricalHMM", None, "memmap"), ("MixtureOfExperts", None, "array")}
    specs = [s for s in memory_specs(scale=500)
             if (s["model"], s.get("covariance_type"), s["source"]) in wanted
             and s.get("expert", "poisson") == "poisson"
             and s.get("gating", "softmax") == "softmax" and not s.get("missing")]
    assert len(specs) == len(wanted)
    records = memory_rows(specs, log=None)
    assert [r["source"] for r in records] == [s["source"] for s in specs]
    for record in records:
        assert record["fastem_peak_mb"] >= 0 and record["data_mb"] > 0, record
        assert record["fastem_peak_over_data"] == pytest.approx(
            record["fastem_peak_mb"] / record["data_mb"])
    report = format_report({"per_iteration": [], "float32": [], "kmeans": [], "full_pass": [],
                            "memory": records}, {"cpu": "test cpu", "cores": 2, "python": "3"})
    lines = [line for line in report.splitlines() if line.startswith("| MixtureOfExperts")]
    assert len(lines) == 1 and "| array |" in lines[0]
    assert f"| {records[-1]['fastem_peak_over_data']:.2f} |" in lines[0]


def test_only_memory_runs_the_memory_rows_alone(monkeypatch, capsys):
    from fastem.bench import mixture

    calls = []
    monkeypatch.setattr(mixture, "run_memory", lambda quick, reference, log: calls.append(
        (quick, reference)) or [{"workload": "w", "source": "stream", "data_mb": 10.0,
                                 "fastem_peak_mb": 2.0, "fastem_peak_over_data": 0.2}])
    assert main(["--only", "memory", "--quick", "--no-reference"]) == 0
    out = capsys.readouterr().out
    assert calls == [(True, False)]
    assert "| w | stream | 10 | 2.0 | 0.20 | - | - |" in out
    assert "ms/iter" not in out  # nothing else ran
