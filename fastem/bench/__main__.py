"""``python -m fastem.bench``: fastem against scikit-learn and hmmlearn on this machine.

Prints the per-iteration comparison (same data, same starting parameters,
median of ``--repeats`` runs of (4 iterations - 1 iteration) / 3), float32
against float64, k-means initialisation against ``KMeans(n_init=1)``, the
full-covariance pass rate against NumPy's dgemm, the peak memory of fit(X)
for every model from every data source it takes (an array, a memmap, a
callable stream, a dask array; each in a fresh process, ``--only memory`` for
these rows alone), Baum-Welch against both of hmmlearn's implementations,
SQUAREM against plain EM on slowly converging problems, and online EM over a
long stream.
``--plot FILE.png`` draws the speed-ups (needs matplotlib);
``--json FILE`` keeps the raw records.
"""

from __future__ import annotations

import argparse
import json
import sys

from .measure import machine_description
from .mixture import run_all


def _cell(value, fmt):
    return "-" if value is None else format(value, fmt)


def _table(header, rows):
    """A Markdown table; nothing when there are no rows."""
    if not rows:
        return []
    columns = header.count("|") - 1
    return ["", header, "|---" + "|---:" * (columns - 1) + "|", *rows]


def format_report(results, machine):
    """The results as Markdown tables (what the README shows)."""
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}"]
    lines += _table(
        "| workload | fastem ms/iter | scikit-learn ms/iter | speed-up | Δ log-likelihood (abs) "
        "| fastem peak MB | scikit-learn peak MB | data MB |",
        [f"| {r['workload']} | {r['fastem_ms']:.1f} | {_cell(r.get('sklearn_ms'), '.1f')} | "
         f"{_cell(r.get('ratio'), '.1f')}x | {_cell(r.get('loglik_diff'), '.1e')} | "
         f"{_cell(r.get('fastem_peak_mb'), '.1f')} | {_cell(r.get('sklearn_peak_mb'), '.1f')} "
         f"| {r['data_mb']:.0f} |" for r in results["per_iteration"]])
    lines += _table(
        "| float32 vs float64 | float64 ms/iter | float32 ms/iter | speed-up |",
        [f"| {r['workload']} | {r['float64_ms']:.1f} | {r['float32_ms']:.1f} | "
         f"{r['ratio']:.2f}x |" for r in results["float32"]])
    lines += _table(
        "| missing entries (exact EM) | complete ms/iter | with missing ms/iter | ratio |",
        [f"| {r['workload']} | {r['complete_ms']:.1f} | {r['missing_ms']:.1f} | "
         f"{r['ratio']:.2f}x |" for r in results.get("missing", [])])
    lines += _table(
        "| k-means++ and Lloyd | fastem ms | KMeans(n_init=1) ms | speed-up |",
        [f"| {r['workload']} | {r['fastem_ms']:.0f} | {_cell(r.get('sklearn_ms'), '.0f')} | "
         f"{_cell(r.get('ratio'), '.1f')}x |" for r in results["kmeans"]])
    lines += _table(
        "| full-covariance E-step | ms | GFLOP/s | numpy dgemm GFLOP/s | fraction |",
        [f"| {r['workload']} | {r['ms']:.1f} | {r['gflops']:.1f} | {r['dgemm_gflops']:.1f} | "
         f"{100 * r['fraction']:.0f}% |" for r in results["full_pass"]])
    lines += _table(
        "| fit(X) memory | source | data MB | fastem peak MB above start | ratio to data | "
        "scikit-learn peak MB | ratio to data |",
        [f"| {r['workload']} | {r.get('source', 'array')} | {_cell(r.get('data_mb'), '.0f')} "
         f"| {_cell(r.get('fastem_peak_mb'), '.1f')} | "
         f"{_cell(r.get('fastem_peak_over_data'), '.2f')} | "
         f"{_cell(r.get('sklearn_peak_mb'), '.0f')} | "
         f"{_cell(r.get('sklearn_peak_over_data'), '.2f')} |" for r in results["memory"]])
    lines += _table(
        "| cold start (fresh process) | no kernel cache, s | warm cache, s |",
        [f"| {r['workload']} | {_cell(r.get('no_cache_s'), '.2f')} | "
         f"{_cell(r.get('warm_cache_s'), '.2f')} |" for r in results.get("cold_start", [])])
    lines += _table(
        "| HMM (Baum-Welch) | fastem ms/iter | hmmlearn log ms/iter | speed-up | "
        "hmmlearn scaling ms/iter | speed-up | Δ log-likelihood (abs) |",
        [f"| {r['workload']} | {r['fastem_ms']:.1f} | {_cell(r.get('hmmlearn_log_ms'), '.1f')} "
         f"| {_cell(r.get('ratio_log'), '.1f')}x | {_cell(r.get('hmmlearn_scaling_ms'), '.1f')} "
         f"| {_cell(r.get('ratio_scaling'), '.1f')}x | {_cell(r.get('loglik_diff'), '.1e')} |"
         for r in results.get("hmm", [])])
    if results.get("acceleration"):
        from .acceleration import format_report as acceleration_report

        lines += ["", acceleration_report(results["acceleration"],
                                          results["acceleration_summary"])]
    lines += _table(
        "| online EM (partial_fit) | rows | batch | seconds | peak anonymous MB | held-out "
        "loglik online | batch fit on 1M rows | difference |",
        [f"| D=16 K=16 full | {r['rows']:,} | {r['batch']:,} | {r['stream_s']:.1f} | "
         f"{r['peak_anonymous_mb']:.0f} | {r['online_heldout_loglik']:.4f} | "
         f"{r['batch_heldout_loglik']:.4f} | {r['difference']:+.4f} |"
         for r in results.get("stream", [])])
    return "\n".join(lines)


def plot(results, path):
    """Bar chart of the speed-ups over scikit-learn (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["per_iteration"] if r.get("ratio")]
    rows += [dict(r, workload="k-means init " + r["workload"]) for r in results["kmeans"]
             if r.get("ratio")]
    rows += [dict(r, workload=r["workload"].split(",")[0] + " " + r["workload"].split(",")[1]
                  + " vs hmmlearn", ratio=r["ratio_log"])
             for r in results.get("hmm", []) if r.get("ratio_log")]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    names = [r["workload"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    bars = ax.barh(range(len(rows)), ratios, color="#3b7dd8")
    ax.set_yticks(range(len(rows)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(0.8, 2.0 * max(ratios))  # room for the labels
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.bar_label(bars, labels=[f"{v:.1f}x" for v in ratios], padding=3)
    ax.set_xlabel("speed-up (time per EM iteration, same start)")
    ax.set_title("fastem vs scikit-learn and hmmlearn (its default implementation)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastem.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one tenth of the rows (about a minute)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--no-reference", action="store_true",
                        help="time fastem only, even if scikit-learn is installed")
    parser.add_argument("--memory-reference", action="store_true",
                        help="also measure scikit-learn's peak memory on the in-memory "
                             "GaussianMixture rows (needs several times the data size)")
    parser.add_argument("--only", choices=("mixture", "hmm", "engine", "memory"),
                        help="run one family of comparisons (memory: the fit(X) memory "
                             "rows alone, a few minutes)")
    parser.add_argument("--plot", metavar="FILE.png", help="write a chart of the speed-ups")
    parser.add_argument("--json", metavar="FILE", help="write the raw records as JSON")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib (pip install 'fastem[plot]')")
    machine = machine_description()
    print(f"fastem benchmark on {machine['cpu']} ({machine['cores']} cores)", flush=True)
    results = run_all(quick=args.quick, repeats=args.repeats, reference=not args.no_reference,
                      memory_reference=args.memory_reference,
                      log=lambda text: print(text, flush=True), only=args.only)
    print()
    print(format_report(results, machine))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": machine, "quick": args.quick, "results": results}, handle,
                      indent=2)
    if args.plot:
        plot(results, args.plot)
        print(f"\nchart written to {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
