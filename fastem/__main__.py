"""``python -m fastem``: fit a Gaussian mixture to the bundled Old Faithful data.

Chooses the number of components by BIC (1 to 4, full covariances), then
prints the selected model: weights, means, standard deviations and
correlations of each component, log-likelihood, BIC/AIC and convergence.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import GaussianMixture, __version__, load_faithful


def _summary(model, X, names, seconds):
    lines = [
        f"fastem {__version__}: Gaussian mixture on Old Faithful "
        f"({X.shape[0]} eruptions x {X.shape[1]} features: {', '.join(names)})",
        f"  components {model.n_components}, covariance '{model.covariance_type}', "
        f"converged {model.converged_} after {model.n_iter_} iterations, {seconds * 1e3:.0f} ms",
        f"  log-likelihood {model.score(X) * X.shape[0]:.3f} "
        f"(mean {model.score(X):.5f}), BIC {model.bic(X):.2f}, AIC {model.aic(X):.2f}",
    ]
    order = np.argsort(model.means_[:, 0])
    width = max(len(n) for n in names)
    for rank, k in enumerate(order):
        cov = model.covariances_[k]
        std = np.sqrt(np.diag(cov))
        corr = cov[0, 1] / (std[0] * std[1])
        lines.append(f"  component {rank}: weight {model.weights_[k]:.3f}, correlation "
                     f"{names[0]}~{names[1]} {corr:+.3f}")
        for j, name in enumerate(names):
            lines.append(f"    {name:<{width}}  mean {model.means_[k, j]:8.3f}   "
                         f"sd {std[j]:7.3f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastem", description=__doc__.splitlines()[0])
    parser.add_argument("--max-components", type=int, default=4)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    if args.max_components < 1:
        parser.error("--max-components must be at least 1")

    X, names = load_faithful()
    print("BIC by number of components (full covariances, 5 initialisations each):")
    best = None
    for k in range(1, args.max_components + 1):
        started = time.perf_counter()
        model = GaussianMixture(k, n_init=5, random_state=args.random_state).fit(X)
        seconds = time.perf_counter() - started
        bic = model.bic(X)
        print(f"  K={k}: BIC {bic:9.2f}   log-likelihood {model.score(X) * X.shape[0]:9.2f}")
        if best is None or bic < best[0]:
            best = (bic, model, seconds)
    print()
    print(_summary(best[1], X, names, best[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
