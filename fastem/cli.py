"""The ``fastem`` command: fit, predict, score, sample, select and bench from the shell.

Errors a user can cause (a missing file, unparsable data, bad options) print
one line on stderr and exit with status 2; they never print a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from . import _cli_dask, _cli_moe, _tabular
from .components.structures import names as structure_names
from .exceptions import interruption


def _kinds():
    """``fastem fit KIND``'s kinds -> estimator classes, from the registry (an estimator
    registers its kind where it is defined: :mod:`fastem._registry`), in registration
    order; the mixture of experts, fitted on a target column by :mod:`_cli_moe`, apart."""
    from ._registry import command_kinds

    return {kind: cls for kind, cls in command_kinds().items() if kind != _cli_moe.KIND}


KINDS = _kinds()
COVARIANCE_TYPES = structure_names()  # the registered covariance structures
_WIDE = 8  # fit summaries show parameters in full up to this many features
_VERBOSE_HELP = "with --scheduler local, the Dask workers' own logs on stderr"
_SCHEDULER_HELP = ("a Dask scheduler address (tcp://HOST:8786), or 'local' for a LocalCluster "
                   "on this machine; DATA may then be a glob or directory of Parquet/CSV "
                   "files (a glob alone processes the partitions here, one after the other)")


class _UserError(Exception):
    """A problem with the command line or the data, reported in one line."""


def _say(text=""):
    """Print a line to standard output (see :class:`_ReaderMayLeave`)."""
    print(text, flush=True)


class _ReaderMayLeave:
    """Standard output for a command whose reader may leave (``| head``): from then on
    the output is dropped, and the command goes on and writes its files. Any print
    counts, the fit's own ``--verbose`` lines included (one would otherwise abort the
    fit, which is then rolled back and writes nothing)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            _silence_stdout()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            _silence_stdout()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence_stdout():
    # Python's advice for SIGPIPE: point the descriptor at devnull, so that neither
    # later prints nor the final flush at exit raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _parse_range(text):
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
        else:
            low = high = int(text)
    except ValueError:
        raise _UserError(f"--n-components: expected K or LOW-HIGH, got {text!r}") from None
    if low < 1 or high < low:
        raise _UserError(f"--n-components: expected 1 <= LOW <= HIGH, got {text!r}")
    return list(range(low, high + 1))


class _Progress:
    """A one-line progress display on a terminal for fits longer than a second."""

    def __init__(self, enabled, stream=None):
        stream = sys.stderr if stream is None else stream  # the current one, not import's
        self.enabled = enabled and stream.isatty()
        self.stream = stream
        self.started = time.perf_counter()
        self.previous = None
        self.shown = False

    def __call__(self, iteration, objective, model):
        if self.enabled and time.perf_counter() - self.started > 1.0:
            change = "" if self.previous is None else f"  change {objective - self.previous:+.3e}"
            self.stream.write(f"\r  iteration {iteration:4d}  objective {objective:.6f}{change}")
            self.stream.flush()
            self.shown = True
        self.previous = objective
        return False

    def close(self):
        if self.shown:
            self.stream.write("\n")


def _read(args, sequence_column=None):
    """The numeric columns of ``args.data``; says on stderr which columns were skipped."""
    X, names, ids, skipped = _tabular.read_table(args.data, getattr(args, "columns", None),
                                                 sequence_column)
    if skipped:
        print(f"fastem {args.command}: note: skipped non-numeric or index columns: "
              f"{', '.join(skipped)} (choose columns with --columns)", file=sys.stderr)
    return X, names, ids


def _lengths(path):
    try:
        return _tabular.read_lengths(path)
    except FileNotFoundError:
        raise _UserError(f"--lengths: {path}: no such file") from None
    except (OSError, ValueError) as error:
        raise _UserError(f"--lengths: {error}") from None


def _load_data(args):
    X, names, ids = _read(args, getattr(args, "sequence_column", None))
    lengths = None
    if getattr(args, "lengths", None):
        lengths = _lengths(args.lengths)
    elif ids is not None:
        lengths = _tabular.lengths_from_ids(ids)
    return X, names, lengths


def _estimator(kind, args, progress):
    # The options follow from the estimator's own constructor arguments (and defaults).
    cls = KINDS[kind]
    accepted = set(cls._parameter_names())
    options = {"random_state": args.random_state, "n_threads": args.threads}
    if args.n_components is not None:
        options["n_components"] = args.n_components
    if args.n_init is not None:
        options["n_init"] = args.n_init
    if args.tol is not None:
        options["tol"] = args.tol
    if args.missing:
        if "missing" not in accepted:
            raise _UserError(f"--missing applies to gmm and hmm-* (not {kind})")
        options["missing"] = "marginalize"
    if "weight_concentration_prior_type" in accepted:
        options["weight_concentration_prior_type"] = args.weight_prior
        if args.weight_concentration is not None:
            options["weight_concentration_prior"] = args.weight_concentration
    if args.max_iter is not None:  # the mixtures' max_iter, hmmlearn's n_iter
        options["max_iter" if "max_iter" in accepted else "n_iter"] = args.max_iter
    if "covariance_type" in accepted:
        options["covariance_type"] = args.covariance_type or _default(cls, "covariance_type")
    options["verbose"] = 2 if args.verbose else 0  # per iteration: time and change
    if "verbose_interval" in accepted:
        options["verbose_interval"] = 1
    options["callback"] = progress
    return cls(**options)


def _default(cls, name):
    import inspect

    return inspect.signature(cls.__init__).parameters[name].default


def _with_covariances():
    """The kinds whose estimators take a ``covariance_type``."""
    return [kind for kind, cls in KINDS.items() if "covariance_type" in cls._parameter_names()]


def _is_hmm(model):
    from .hmm import BaseHMM

    return isinstance(model, BaseHMM)


def _fit_arguments(model, X, lengths):
    if _is_hmm(model):
        if type(model).__name__ == "CategoricalHMM" and X.shape[1] != 1:
            raise _UserError(f"hmm-categorical needs one column of symbols, got {X.shape[1]} "
                             "columns (choose one with --columns)")
        return X, lengths
    if lengths is not None:
        raise _UserError("--lengths/--sequence-column only apply to the hmm-* models")
    return (X,)


def _summary(model, data, seconds):
    lines = [f"fastem: {type(model).__name__}, {model.n_components} components"]
    X = data[0]
    if _is_hmm(model):
        log_likelihood = model.score(*data)
        monitor = model.monitor_
        lines.append(f"  iterations {monitor.iter}, converged {monitor.converged}, "
                     f"{seconds:.2f} s")
        lines.append(f"  log-likelihood {log_likelihood:.4f}, BIC {model.bic(*data):.2f}, "
                     f"AIC {model.aic(*data):.2f}")
        lines.append("  start probabilities " + np.array2string(model.startprob_, precision=3))
        lines.append("  transition matrix\n" + np.array2string(model.transmat_, precision=3))
        for name in ("means_", "emissionprob_", "lambdas_", "weights_"):
            if hasattr(model, name):
                lines.append(f"  {name[:-1]}\n" + np.array2string(getattr(model, name),
                                                                  precision=3))
    else:
        lines.append(f"  covariance '{model.covariance_type}', iterations {model.n_iter_}, "
                     f"converged {model.converged_}, {seconds:.2f} s")
        if hasattr(model, "weight_concentration_"):  # variational: no BIC
            used = int(np.sum(model.weights_ > 0.01))
            lines.append(f"  lower bound {model.lower_bound_:.4f}; {used} of "
                         f"{model.n_components} components weigh more than 1%")
        else:
            lines.append(f"  log-likelihood {model.score(X) * len(X):.4f} (mean "
                         f"{model.score(X):.5f}), BIC {model.bic(X):.2f}, "
                         f"AIC {model.aic(X):.2f}")
        wide = X.shape[1] > _WIDE
        for k in range(model.n_components):
            mean = model.means_[k]
            lines.append(f"  component {k}: weight {model.weights_[k]:.4f}, mean "
                         + (f"(first {_WIDE} of {len(mean)}) " if wide else "")
                         + np.array2string(mean[:_WIDE], precision=4))
        if wide:  # a table of covariances would be hundreds of lines
            lines.append(f"  covariances: {model.covariance_type}, shape "
                         f"{np.shape(model.covariances_)} (all parameters: --report or "
                         "--output)")
        else:
            lines.append("  covariances\n" + np.array2string(model.covariances_, precision=4))
    return "\n".join(lines)


def _report(model, data, seconds):
    report = {"model": type(model).__name__, "n_components": model.n_components,
              "seconds": seconds, "n_samples": int(data[0].shape[0])}
    if _is_hmm(model):
        report.update(log_likelihood=model.score(*data), bic=model.bic(*data),
                      aic=model.aic(*data), iterations=model.monitor_.iter,
                      converged=model.monitor_.converged, history=model.monitor_.history,
                      startprob=model.startprob_.tolist(), transmat=model.transmat_.tolist())
    else:
        report.update(log_likelihood=float(model.score(data[0]) * len(data[0])),
                      iterations=model.n_iter_, converged=model.converged_,
                      history=[float(h) for h in model.lower_bounds_],
                      weights=model.weights_.tolist(), means=model.means_.tolist())
        if hasattr(model, "bic"):
            report.update(bic=model.bic(data[0]), aic=model.aic(data[0]))
        else:  # variational: the lower bound is the criterion
            report.update(lower_bound=float(model.lower_bound_))
    return report


def _ellipse_points(mean, covariance, scale=2.0, n=100):
    """Points of the ``scale``-sigma ellipse of a 2-d Gaussian."""
    values, vectors = np.linalg.eigh(covariance)
    angle = np.linspace(0.0, 2.0 * np.pi, n)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    return (mean[:, None] + vectors @ (scale * np.sqrt(np.maximum(values, 0.0))[:, None]
                                       * circle)).T


def _plot_fit(model, data, names, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = data[0]
    colours = plt.get_cmap("tab10").colors  # distinct hues, one per component or state
    fig, ax = plt.subplots(figsize=(7, 5))
    if _is_hmm(model):
        states = model.predict(*data)
        steps = np.arange(len(X))
        for state in range(model.n_components):
            chosen = states == state
            ax.scatter(steps[chosen], X[chosen, 0], s=4, color=colours[state % 10],
                       label=f"state {state}")
        lengths = data[1] if len(data) > 1 and data[1] is not None else None
        if lengths is not None:
            for boundary in np.cumsum(lengths)[:-1]:  # where one sequence ends
                ax.axvline(boundary - 0.5, color="0.6", linewidth=0.6)
        ax.set_xlabel("step (grey lines: sequence boundaries)" if lengths is not None
                      else "step")
        ax.set_ylabel(names[0])
        ax.set_title(f"{type(model).__name__}: Viterbi states")
    else:
        labels = model.predict(X)
        y = X[:, 1] if X.shape[1] > 1 else np.zeros(len(X))
        covariances = _full_covariances(model)
        for k in range(model.n_components):
            chosen = labels == k
            colour = colours[k % 10]
            ax.scatter(X[chosen, 0], y[chosen], s=6, color=colour,
                       label=f"component {k} ({model.weights_[k]:.2f})")
            if X.shape[1] > 1:  # the 2-sigma ellipse of the first two features
                outline = _ellipse_points(model.means_[k, :2], covariances[k][:2, :2])
                ax.plot(outline[:, 0], outline[:, 1], color=colour, linewidth=1.5)
        ax.set_xlabel(names[0])
        ax.set_ylabel(names[1] if X.shape[1] > 1 else "")
        ax.set_title(f"GaussianMixture, {model.n_components} components (2-sigma ellipses)")
    ax.legend(loc="best", fontsize=8, markerscale=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _full_covariances(model):
    from .mixture.missing import full_covariances

    return full_covariances(model._spec, model.covariances_, model.n_components,
                            model.means_.shape[1])


def _command_fit(args):
    if args.kind is None:
        from .__main__ import main as main_job

        return main_job([])
    if args.kind == _cli_moe.KIND:
        if args.data is None:
            raise _UserError("fit: DATA is required with a model kind")
        if _cli_dask.wants_dask(args):
            raise _UserError("fit moe reads one file in memory (--scheduler and globs are "
                             "for gmm and hmm-*)")
        _check_outputs(args)
        return _cli_moe.fit_moe(args, _read, _UserError, _replaced_on_success)
    if args.kind not in KINDS:
        raise _UserError(f"unknown model {args.kind!r}; choose one of {', '.join(KINDS)}")
    if args.data is None:
        raise _UserError("fit: DATA is required with a model kind")
    covariances = _with_covariances()
    if args.covariance_type is not None and args.kind not in covariances:
        raise _UserError(f"--covariance-type does not apply to {args.kind} (only "
                         f"{', '.join(covariances[:-1])} and {covariances[-1]} have "
                         "covariances)")
    _check_outputs(args)
    if _cli_dask.wants_dask(args):
        return _command_fit_dask(args)
    X, names, lengths = _load_data(args)
    progress = _Progress(not args.quiet and not args.verbose)
    model = _estimator(args.kind, args, progress)
    data = _fit_arguments(model, X, lengths)
    started = time.perf_counter()
    with warnings.catch_warnings():
        if args.quiet:
            warnings.simplefilter("ignore")
        model.fit(*data)
    seconds = time.perf_counter() - started
    progress.close()
    # Saved with the model, so that predict and score read the same columns (and sequences).
    model.feature_names_in_ = np.asarray(names, dtype=object)
    if args.sequence_column is not None and _is_hmm(model):
        model.sequence_column_ = args.sequence_column
    # Files first: a reader that leaves early (`| head`) must never cost an output.
    if args.output:
        with _replaced_on_success(args.output) as temporary:
            model.save(temporary)
    if args.report:
        with _replaced_on_success(args.report) as temporary, open(temporary, "w") as handle:
            json.dump(_report(model, data, seconds), handle, indent=2)
    if args.plot:
        with _replaced_on_success(args.plot) as temporary:
            _plot_fit(model, data, names, temporary)
    if not args.quiet:
        _say(_summary(model, data, seconds))
    return 0


def _command_fit_dask(args):
    if args.plot:
        raise _UserError("--plot needs the data in memory (not a glob or --scheduler)")
    frame, names = _cli_dask.read_frame(args.data, args.columns, args.sequence_column)
    progress = _Progress(not args.quiet and not args.verbose)
    model = _estimator(args.kind, args, progress)
    is_hmm = _is_hmm(model)
    if args.lengths:
        raise _UserError("--lengths does not apply to partitioned data; use --sequence-column")
    positional, keywords = _cli_dask.fit_arguments(model, frame, args.sequence_column, is_hmm)
    with _cli_dask.scheduler(args.scheduler, getattr(args, "verbose", False)):
        started = time.perf_counter()
        with warnings.catch_warnings():
            if args.quiet:
                warnings.simplefilter("ignore")
            model.fit(*positional, **keywords)
        seconds = time.perf_counter() - started
        progress.close()
        model.feature_names_in_ = np.asarray(names, dtype=object)
        if args.sequence_column is not None:
            model.sequence_column_ = args.sequence_column
        facts = None
        if not args.quiet or args.report:
            facts = _cli_dask.report(model, frame, args.sequence_column, seconds, is_hmm)
    if args.output:
        with _replaced_on_success(args.output) as temporary:
            model.save(temporary)
    if args.report:
        with _replaced_on_success(args.report) as temporary, open(temporary, "w") as handle:
            json.dump(facts, handle, indent=2)
    if not args.quiet:
        _say(_cli_dask.summary(model, facts))
    return 0


def _check_outputs(args):
    """Refuse, before any work, outputs that could not be written at the end."""
    for option in ("output", "report", "plot"):
        path = getattr(args, option, None)
        if not path:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise _UserError(f"--{option}: the folder {folder} does not exist")
        if not os.access(folder, os.W_OK) or (os.path.exists(path)
                                               and not os.access(path, os.W_OK)):
            raise _UserError(f"--{option}: {path} is not writable")
    if getattr(args, "plot", None):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _UserError("--plot needs matplotlib (pip install 'fastem[plot]')") from None


def _fitted_columns(args, model):
    """(columns, sequence column) to read: what the fit read (saved in the model by
    `fastem fit`) unless the options say otherwise."""
    columns = args.columns
    if columns is None and getattr(model, "feature_names_in_", None) is not None:
        columns = ",".join(str(name) for name in model.feature_names_in_)
    sequence_column = args.sequence_column
    if sequence_column is None and args.lengths is None:
        sequence_column = getattr(model, "sequence_column_", None)
    return columns, sequence_column


def _load_model(path):
    import fastem

    return fastem.load(path)


def _loaded(args, model):
    """The model's data arguments read from ``args.data``."""
    args.columns, sequence_column = _fitted_columns(args, model)
    X, _, ids = _read(args, sequence_column)
    lengths = None
    if getattr(args, "lengths", None):
        lengths = _lengths(args.lengths)
    elif ids is not None:
        lengths = _tabular.lengths_from_ids(ids)
    if ids is not None and not _is_hmm(model):
        raise _UserError("--sequence-column only applies to the hmm-* models")
    data = _fit_arguments(model, X, lengths) if _is_hmm(model) else (X,)
    return model, data


@contextlib.contextmanager
def _replaced_on_success(path):
    """Yield a temporary name beside ``path``; it becomes ``path`` only if the block
    completes, so an error or Ctrl-C never leaves a partial output file."""
    folder, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=os.path.splitext(name)[1],
                                         dir=folder)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_rows(rows, path, fmt):
    if path:
        with _replaced_on_success(path) as temporary:
            np.savetxt(temporary, rows, fmt=fmt, delimiter=",")
    else:
        np.savetxt(sys.stdout, rows, fmt=fmt, delimiter=",")


def _loaded_dask(args):
    """The model and its dask arguments for ``predict``/``score`` on partitioned data."""
    import fastem

    model = fastem.load(args.model)
    if _cli_moe.is_experts(model):
        raise _UserError("mixtures of experts are read from one file in memory (no "
                         "--scheduler or globs)")
    if args.lengths:
        raise _UserError("--lengths does not apply to partitioned data; use --sequence-column")
    columns, sequence_column = _fitted_columns(args, model)
    frame, _ = _cli_dask.read_frame(args.data, columns, sequence_column)
    positional, keywords = _cli_dask.fit_arguments(model, frame, sequence_column,
                                                   _is_hmm(model))
    return model, positional, keywords


def _command_predict_dask(args):
    if not args.output:
        raise _UserError("predict on partitioned data needs --output (a Parquet directory)")
    model, positional, keywords = _loaded_dask(args)
    with _cli_dask.scheduler(args.scheduler, getattr(args, "verbose", False)):
        if args.proba:
            values = model.predict_proba(*positional, **keywords)
            names = [f"proba_{k}" for k in range(model.n_components)]
        else:
            values = model.predict(*positional, **keywords)
            names = ["label"]
        _cli_dask.write_parquet(values, args.output, names)
    return 0


def _command_score_dask(args):
    model, positional, keywords = _loaded_dask(args)
    if args.output and _is_hmm(model):
        raise _UserError("score --output (per-row log-likelihoods) applies to gmm models")
    with _cli_dask.scheduler(args.scheduler, getattr(args, "verbose", False)):
        if _is_hmm(model):
            value = model.score(*positional, **keywords)
        else:
            per_row = model.score_samples(*positional)
            if args.output:
                _cli_dask.write_parquet(per_row, args.output, ["log_likelihood"])
            value = float(per_row.sum().compute())
    print(f"{value:.6f}")
    return 0


def _refuse_experts(model, command):
    if _cli_moe.is_experts(model):
        raise _UserError(f"{command} does not apply to mixtures of experts: they model y "
                         "given x; use Python: fastem.load(MODEL).sample(X)")


def _command_predict(args):
    if _cli_dask.wants_dask(args):
        return _command_predict_dask(args)
    model = _load_model(args.model)
    if _cli_moe.is_experts(model):
        return _cli_moe.predict(model, args, _read, _UserError, _write_rows)
    model, data = _loaded(args, model)
    if args.proba:
        _write_rows(model.predict_proba(*data), args.output, "%.6g")
    else:
        _write_rows(np.asarray(model.predict(*data))[:, None], args.output, "%d")
    return 0


def _command_score(args):
    if _cli_dask.wants_dask(args):
        return _command_score_dask(args)
    model = _load_model(args.model)
    if _cli_moe.is_experts(model):
        return _cli_moe.score(model, args, _read, _UserError, _write_rows)
    model, data = _loaded(args, model)
    if _is_hmm(model):
        value = model.score(*data)
    else:
        per_row = model.score_samples(data[0])
        value = float(per_row.sum())
        if args.output:
            _write_rows(per_row[:, None], args.output, "%.17g")
    print(f"{value:.6f}")
    return 0


def _command_sample(args):
    import fastem

    model = fastem.load(args.model)
    _refuse_experts(model, "sample")
    if args.n < 1:
        raise _UserError(f"sample: N must be at least 1, got {args.n}")
    X, labels = model.sample(args.n, random_state=args.random_state)
    _write_rows(np.column_stack([X, labels]), args.output, "%.6g")
    return 0


def _command_select(args):
    import fastem

    X, names, _ = _read(args)
    ks = _parse_range(args.n_components)
    if ks[-1] > X.shape[0]:  # refuse before minutes of fitting, not at K = n_rows + 1
        raise _UserError(f"--n-components: at most {X.shape[0]} components for {X.shape[0]} "
                         f"rows, got {args.n_components!r}")
    types = (COVARIANCE_TYPES if args.covariance_type == "all"
             else tuple(t.strip() for t in args.covariance_type.split(",")))
    for name in types:
        if name not in COVARIANCE_TYPES:
            raise _UserError(f"--covariance-type: unknown {name!r}")
    results = {}
    best = None
    _say(f"{'K':>3} " + " ".join(f"{t + ' BIC':>15}" for t in types))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in ks:
            row = []
            for name in types:
                model = fastem.GaussianMixture(
                    k, covariance_type=name, n_init=args.n_init,
                    random_state=args.random_state,
                    missing="marginalize" if args.missing else "raise").fit(X)
                bic, aic = model.bic(X), model.aic(X)
                results[(name, k)] = (bic, aic)
                row.append(bic)
                if best is None or bic < best[0]:
                    best = (bic, name, k, aic)
            _say(f"{k:>3} " + " ".join(f"{value:15.2f}" for value in row))
    _say(f"best: {best[2]} components, covariance '{best[1]}', BIC {best[0]:.2f}, "
         f"AIC {best[3]:.2f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for name in types:
            ax.plot(ks, [results[(name, k)][0] for k in ks], marker="o", label=name)
        ax.set_xlabel("number of components")
        ax.set_ylabel("BIC (lower is better)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        plt.close(fig)
    return 0


def _command_bench(args):
    from .bench.__main__ import main as bench_main

    return bench_main(["--quick"] if args.quick else [])


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default when it has one that its help does not already state."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        shown = not (default is None or default is False or default == argparse.SUPPRESS)
        if shown and "default" not in text:
            text += " (default: %(default)s)"
        return text


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the command (not the whole usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser():
    from . import __version__

    parser = _OneLineParser(prog="fastem", description=__doc__.splitlines()[0],
                            formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastem {__version__}")
    commands = parser.add_subparsers(dest="command", required=True,
                                     parser_class=_OneLineParser)
    add_parser = commands.add_parser

    def with_defaults(*args, **kwargs):  # every command's --help shows the defaults
        return add_parser(*args, formatter_class=_HelpFormatter, **kwargs)

    commands.add_parser = with_defaults

    fit = commands.add_parser("fit", help="fit a model (no arguments: the bundled example)")
    fit.add_argument("kind", nargs="?", help=f"one of {', '.join(KINDS)}, {_cli_moe.KIND}")
    fit.add_argument("data", nargs="?", help="CSV/TSV (header detected), .npy or .parquet; "
                     "or a glob/directory of Parquet or CSV files (read with Dask)")
    fit.add_argument("--columns", help="comma-separated column names or indices")
    fit.add_argument("--n-components", type=int,
                     help="components or hidden states (default: the estimator's, 1)")
    fit.add_argument("--covariance-type", choices=COVARIANCE_TYPES,
                     help="gmm: default full; hmm-gaussian, hmm-gmm: default diag")
    fit.add_argument("--n-init", type=int, help="restarts; the best is kept (default 1)")
    fit.add_argument("--max-iter", type=int,
                     help="EM iterations (default: gmm 100, hmm-* 10, as the libraries)")
    fit.add_argument("--tol", type=float,
                     help="convergence threshold (default: gmm 1e-3 per row, hmm-* 1e-2)")
    fit.add_argument("--random-state", type=int, default=0, help="seed of the initialisation")
    fit.add_argument("--threads", type=int, help="threads (default: all cores)")
    fit.add_argument("--lengths", help="file of sequence lengths (hmm-*)")
    fit.add_argument("--sequence-column", help="column whose runs of equal values are sequences")
    fit.add_argument("--missing", choices=("marginalize",), help="treat NaN as missing")
    fit.add_argument("--scheduler", help=_SCHEDULER_HELP)
    fit.add_argument("--weight-prior", default="dirichlet_process",
                     choices=("dirichlet_process", "dirichlet_distribution"),
                     help="bgm: the prior on the weights")
    fit.add_argument("--weight-concentration", type=float,
                     help="bgm: the weight prior's concentration (default 1/K)")
    fit.add_argument("--target", help="moe: the column to predict (y)")
    fit.add_argument("--expert", default="gaussian", choices=("gaussian", "poisson", "binomial"),
                     help="moe: the experts' family")
    fit.add_argument("--gating", default="constant", choices=("constant", "softmax", "gaussian"),
                     help="moe: the gate")
    fit.add_argument("--gating-columns", help="moe: the gate's columns (default: the experts')")
    fit.add_argument("--trials", help="moe, binomial experts: the column of trials")
    fit.add_argument("--init-params", choices=("random", "kmeans", "random_from_data"),
                     help="moe: how restarts start (default random)")
    fit.add_argument("--output", help="save the fitted model (.npz)")
    fit.add_argument("--report", help="write a JSON report")
    fit.add_argument("--plot", help="draw the fit (PNG; needs matplotlib)")
    fit.add_argument("--quiet", action="store_true", help="no summary, no progress")
    fit.add_argument("--verbose", action="store_true",
                     help="one line per iteration; " + _VERBOSE_HELP)
    fit.set_defaults(run=_command_fit)

    predict = commands.add_parser(
        "predict", help="labels (or probabilities) of every row; moe: E[y | x]")
    predict.add_argument("model", help="a model file written by fastem fit --output")
    predict.add_argument("data", help="CSV/TSV, .npy or .parquet")
    predict.add_argument("--columns", help="columns to use (default: those of the fit)")
    predict.add_argument("--lengths", help="file of sequence lengths (hmm-*)")
    predict.add_argument("--sequence-column",
                         help="column whose runs are sequences (default: that of the fit)")
    predict.add_argument("--proba", action="store_true",
                         help="posterior probabilities instead of labels")
    predict.add_argument("--scheduler", help=_SCHEDULER_HELP)
    predict.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    predict.add_argument("--output", help="write CSV here (default: standard output); for "
                         "partitioned data, a new Parquet directory")
    predict.set_defaults(run=_command_predict)

    score = commands.add_parser("score", help="total log-likelihood of the data")
    score.add_argument("model", help="a model file written by fastem fit --output")
    score.add_argument("data", help="CSV/TSV, .npy or .parquet")
    score.add_argument("--columns", help="columns to use (default: those of the fit)")
    score.add_argument("--lengths", help="file of sequence lengths (hmm-*)")
    score.add_argument("--sequence-column",
                       help="column whose runs are sequences (default: that of the fit)")
    score.add_argument("--scheduler", help=_SCHEDULER_HELP)
    score.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    score.add_argument("--output", help="also write per-row log-likelihoods (gmm): CSV, or a "
                       "new Parquet directory for partitioned data")
    score.set_defaults(run=_command_score)

    sample = commands.add_parser("sample", help="draw N rows from a fitted model")
    sample.add_argument("model", help="a model file written by fastem fit --output")
    sample.add_argument("n", type=int, help="number of rows")
    sample.add_argument("--random-state", type=int, help="seed (default: the model's)")
    sample.add_argument("--output", help="write CSV here (default: standard output)")
    sample.set_defaults(run=_command_sample)

    select = commands.add_parser("select", help="BIC/AIC over a grid of Gaussian mixtures")
    select.add_argument("data", help="CSV/TSV, .npy or .parquet")
    select.add_argument("--columns", help="comma-separated column names or indices")
    select.add_argument("--n-components", default="1-6", help="K or LOW-HIGH")
    select.add_argument("--covariance-type", default="full", help="a type, a list, or 'all'")
    select.add_argument("--n-init", type=int, default=1, help="restarts per model")
    select.add_argument("--random-state", type=int, default=0, help="seed of the initialisation")
    select.add_argument("--missing", choices=("marginalize",), help="treat NaN as missing")
    select.add_argument("--plot", help="draw BIC curves (PNG)")
    select.set_defaults(run=_command_select)

    warm = commands.add_parser(
        "warmup", help="compile the kernels into numba's cache (before starting workers)")
    warm.set_defaults(run=_command_warmup)

    bench = commands.add_parser("bench", help="compare with scikit-learn and hmmlearn")
    bench.add_argument("--quick", action="store_true", help="one tenth of the rows")
    bench.set_defaults(run=_command_bench)
    return parser


def _command_warmup(args):
    from ._warmup import warmup

    seconds = warmup(verbose=True)
    print(f"kernels compiled or loaded from numba's cache in {seconds:.1f} s")
    return 0


def main(argv=None):
    """Entry point of the ``fastem`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    stdout = sys.stdout
    if not isinstance(stdout, _ReaderMayLeave):
        sys.stdout = _ReaderMayLeave(stdout)
    try:
        return _run(args)
    finally:
        sys.stdout.flush()  # what is still buffered, while a gone reader is still caught
        sys.stdout = stdout


def _run(args):
    try:
        return args.run(args)
    except (KeyboardInterrupt, SystemError) as error:
        if interruption(error) is None:
            raise
        print(file=sys.stderr)  # Ctrl-C: quiet, partial outputs already removed
        return 130
    except BrokenPipeError:  # e.g. `fastem predict ... | head`: the reader left
        _silence_stdout()
        return 0
    except (_UserError, ValueError, TypeError, OSError, OverflowError, MemoryError) as error:
        print(f"fastem {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        print(f"fastem {args.command}: error: {error.msg} (an optional package is missing)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
