"""Online EM over a long stream against a batch fit on a sample of it.

Streams ``--rows`` rows (D=16, K=16, full covariances; default 20 million) drawn
from a fixed Gaussian mixture through ``GaussianMixture.partial_fit`` in
batches of ``--batch`` rows, generating each batch on the fly, while a thread
samples the process's anonymous resident memory (RssAnon) every millisecond.
Then fits the same model by batch EM on 1 million rows of the same
distribution and compares the mean log-likelihood of both on 200,000 held-out
rows. Both start from the same parameters (a 4-restart fit on the first batch),
so that the comparison measures online EM, not which local maximum two
different initialisations fall into. Prints one JSON record.

    python -m fastem.bench.stream [--rows 20000000] [--batch 50000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import warnings

import numpy as np

N_FEATURES = 16
N_COMPONENTS = 16


def _anonymous_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakAnonymous:
    """Largest RssAnon of this process while the block runs (Linux)."""

    def __enter__(self):
        self.peak = _anonymous_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _anonymous_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _anonymous_bytes())
        return False


class Source:
    """A fixed mixture of 16 full-covariance Gaussians in 16 dimensions."""

    def __init__(self, seed=0):
        rng = np.random.RandomState(seed)
        self.means = rng.normal(scale=4.0, size=(N_COMPONENTS, N_FEATURES))
        factors = rng.normal(scale=0.4, size=(N_COMPONENTS, N_FEATURES, N_FEATURES))
        self.chol = np.linalg.cholesky(factors @ np.swapaxes(factors, 1, 2)
                                       + 0.5 * np.eye(N_FEATURES))
        self.weights = rng.dirichlet(np.full(N_COMPONENTS, 5.0))

    def draw(self, n, rng):
        labels = rng.choice(N_COMPONENTS, size=n, p=self.weights)
        noise = rng.standard_normal((n, N_FEATURES))
        return self.means[labels] + np.einsum("nij,nj->ni", self.chol[labels], noise)


def run(rows, batch, seed=0):
    import fastem

    fastem.warmup()
    source = Source(seed)
    rng = np.random.RandomState(seed + 1)
    held_out = source.draw(200_000, rng)
    first = source.draw(batch, rng)
    start = fastem.GaussianMixture(N_COMPONENTS, n_init=4, random_state=0).fit(first)
    same_start = dict(weights_init=start.weights_, means_init=start.means_,
                      precisions_init=start.precisions_, random_state=0)
    online = fastem.GaussianMixture(N_COMPONENTS, **same_start)
    started = time.perf_counter()
    with PeakAnonymous() as memory:
        online.partial_fit(first)
        for _ in range(rows // batch - 1):
            online.partial_fit(source.draw(batch, rng))
    stream_seconds = time.perf_counter() - started
    sample = source.draw(1_000_000, rng)
    started = time.perf_counter()
    batch_fit = fastem.GaussianMixture(N_COMPONENTS, **same_start).fit(sample)
    batch_seconds = time.perf_counter() - started
    return {"rows": rows, "batch": batch, "batches": rows // batch,
            "stream_s": stream_seconds, "peak_anonymous_mb": memory.peak / 1e6,
            "batch_fit_rows": len(sample), "batch_fit_s": batch_seconds,
            "online_heldout_loglik": float(online.score(held_out)),
            "batch_heldout_loglik": float(batch_fit.score(held_out)),
            "difference": float(batch_fit.score(held_out) - online.score(held_out))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    print(json.dumps(run(args.rows, args.batch)))


if __name__ == "__main__":
    main()
