"""One EM pass on a Dask LocalCluster against the same pass in process.

Builds N rows (D=16, K=16 full covariances by default) drawn from a fixed
mixture, each partition on a worker, persisted on a LocalCluster of
``--workers`` worker processes (one thread each, so the machine's cores are
shared as in process) in partitions of ``--partition-rows`` rows, and times the engine's E-step (the
statistics of one pass, the part that runs on the workers) through
``DaskBackend.stats`` against ``LocalBackend.stats`` on the same parameters,
interleaved, median of ``--repeats``. Also reports the bytes of statistics
returned per pass and checks that both passes agree bitwise (partitions are
multiples of the 131,072-row segment by default). Prints one JSON record.

    python -m fastem.bench.dask [--rows 2000000] [--workers 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partition-rows", type=int, default=4 * 131_072)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from ..components.structures import FULL
    from ..engine import Block, LocalBackend
    from ..engine.dask_backend import DaskBackend
    from ..mixture.model import GaussianMixtureModel

    n, d, k = args.rows, args.features, args.components
    centres = np.random.RandomState(0).normal(scale=3.0, size=(k, d))
    cuts = list(range(0, n, args.partition_rows)) + [n]
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        # Each partition is drawn on a worker (the graph holds no data); the client
        # gathers one copy for the in-process pass.
        parts = [da.from_delayed(dask.delayed(_partition)(centres, lo, hi), shape=(hi - lo, d),
                                 dtype=np.float64)
                 for lo, hi in zip(cuts[:-1], cuts[1:], strict=True)]
        Xd = da.concatenate(parts).persist()
        X = Xd.compute()
        model = GaussianMixtureModel(FULL, k, d, 1e-6, "kmeans")
        params = model.initialize(Block(X[:100_000]), np.random.RandomState(0))
        local = LocalBackend([Block(X)])
        remote = DaskBackend(Xd)
        remote.stats(model, params)  # workers load the compiled kernels once
        local.stats(model, params)
        local_times, remote_times = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            a = local.stats(model, params)
            local_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            b = remote.stats(model, params)
            remote_times.append(time.perf_counter() - started)
    segments = -(-n // 131_072) + remote.n_partitions
    record = {
        "rows": n, "features": d, "components": k, "workers": args.workers,
        "partitions": remote.n_partitions, "cores": os.cpu_count(),
        "in_process_s": float(np.median(local_times)),
        "cluster_s": float(np.median(remote_times)),
        "overhead": float(np.median(remote_times) / np.median(local_times)),
        "stat_doubles": model.layout.size,
        "bytes_per_pass_at_most": int(segments * model.layout.size * 8),
        "bitwise_equal": bool(np.array_equal(a.flat, b.flat)),
    }
    print(json.dumps(record))
    return record


def _partition(centres, lo, hi):
    """Rows ``lo:hi`` of the benchmark data (seeded by ``lo``: the same on any worker)."""
    rng = np.random.RandomState(lo % (2**32 - 1))
    k, d = centres.shape
    return centres[rng.randint(0, k, size=hi - lo)] + rng.normal(size=(hi - lo, d))


if __name__ == "__main__":
    main()
