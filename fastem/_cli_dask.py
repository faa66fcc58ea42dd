"""The command line on partitioned data: Parquet or CSV globs read with Dask.

``fastem fit gmm 'data/part-*.parquet' --scheduler tcp://HOST:8786`` fits on a
cluster; without ``--scheduler`` the partitions are processed one after the other in
this process (each with every core); ``--scheduler local`` starts a LocalCluster of
worker processes on this machine. ``predict`` writes a Parquet dataset (one part per
input partition), ``score`` prints the total and can write per-row log-likelihoods.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile

import numpy as np

_PATTERN_CHARACTERS = "*?["
_PARQUET = (".parquet", ".pq")


class DaskInputError(ValueError):
    """A problem with partitioned input or output, reported in one line."""


def wants_dask(args) -> bool:
    """True when the data are read as partitions: a glob, a directory, or ``--scheduler``."""
    data = getattr(args, "data", None)
    if getattr(args, "scheduler", None):
        return True
    return data is not None and (any(c in data for c in _PATTERN_CHARACTERS)
                                 or os.path.isdir(data))


@contextlib.contextmanager
def scheduler(address, verbose=False):
    """The Dask client for ``--scheduler``: None (no client: partitions one after the
    other here), ``local`` (a LocalCluster of worker processes), or an address.

    A local cluster's workers log a failed task before fastem reports it in one line:
    their logs reach stderr only with ``verbose``."""
    if address is None:
        yield None
        return
    try:
        import distributed
    except ImportError:
        raise ImportError("--scheduler needs dask.distributed: pip install "
                          "'fastem[dask]'") from None
    if address == "local":
        with distributed.LocalCluster(processes=True, dashboard_address=":0",
                                      silence_logs=logging.WARNING if verbose
                                      else logging.CRITICAL + 10) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout="20s")
    except OSError as error:
        raise DaskInputError(f"--scheduler: cannot reach {address}: {error}") from None
    with client:
        yield client


def _files(pattern):
    if os.path.isdir(pattern):
        return pattern, [pattern]
    files = sorted(glob.glob(pattern))
    if not files:
        raise DaskInputError(f"{pattern}: no files match")
    return pattern, files


def read_frame(path, columns=None, sequence_column=None):
    """A dask dataframe of the Parquet dataset or CSV/TSV files at ``path`` (a glob or a
    directory), restricted to ``columns`` (names or 0-based indices, comma-separated)
    and the sequence column; returns (frame, feature names)."""
    from .engine.dask_backend import import_dask

    import_dask()
    import dask.dataframe as dd

    from . import _tabular

    pattern, files = _files(path)
    delimiter = None  # Parquet
    if os.path.isdir(pattern) or files[0].lower().endswith(_PARQUET):
        frame = dd.read_parquet(files if not os.path.isdir(pattern) else pattern)
    else:
        delimiter = _tabular._text_delimiter(files[0])
        frame = dd.read_csv(files, sep=delimiter, na_values=["?", "NA", "null", "none"])
    names = list(frame.columns)
    if columns:
        chosen = []
        for item in (c.strip() for c in columns.split(",")):
            if item in names:
                chosen.append(item)
            elif item.lstrip("-").isdigit() and -len(names) <= int(item) < len(names):
                chosen.append(names[int(item)])
            else:
                raise DaskInputError(f"--columns: no column {item!r} (columns: "
                                     f"{', '.join(map(str, names))})")
    else:
        from ._dask_io import _numeric

        chosen = [c for c, t in frame.dtypes.items() if c != sequence_column and _numeric(t)]
        if not chosen:
            raise DaskInputError(f"{path}: no numeric columns")
    if sequence_column is not None and sequence_column not in names:
        raise DaskInputError(f"--sequence-column: no column {sequence_column!r}")
    keep = chosen + ([sequence_column] if sequence_column is not None else [])
    _check_every_file_has(files, keep, delimiter)
    return frame[keep], chosen


def _check_every_file_has(files, columns, delimiter):
    """Refuse, before any partition is read, a file without one of ``columns``.

    Dask takes the column names from the first file; a later file that names a column
    otherwise would fail inside a task with pandas' KeyError. Only the Parquet footers
    and the CSV header lines are read here.
    """
    for path in _data_files(files):
        if delimiter is None:
            import pyarrow.parquet as pq

            try:
                present = pq.read_schema(path).names
            except Exception as error:  # pyarrow's errors have no common base
                raise DaskInputError(f"{path}: not a readable Parquet file ({error})") from None
        else:  # the header as Dask's own reader parses it (spaces, quotes, a BOM)
            import pandas as pd

            present = list(pd.read_csv(path, sep=delimiter, nrows=0).columns)
        for column in columns:
            if column not in present:
                raise DaskInputError(f"{path}: no column {column!r} (this file has: "
                                     f"{', '.join(map(str, present))})")


def _data_files(files):
    """The files behind ``files``: a directory stands for the Parquet files inside it."""
    for path in files:
        if not os.path.isdir(path):
            yield path
            continue
        for folder, _, names in sorted(os.walk(path)):
            for name in sorted(names):
                if name.lower().endswith(_PARQUET):
                    yield os.path.join(folder, name)


def fit_arguments(model, frame, sequence_column, is_hmm):
    """``fit``'s arguments for a dask dataframe."""
    if not is_hmm:
        if sequence_column is not None:
            raise DaskInputError("--sequence-column only applies to the hmm-* models")
        return (frame,), {}
    if sequence_column is None:
        raise DaskInputError("hmm-* on partitioned data need --sequence-column (each "
                             "partition must hold whole sequences)")
    return (frame,), {"lengths": sequence_column}


def write_parquet(array, path, column_names):
    """Write a dask array of rows (or one column) as a Parquet dataset at ``path`` (a new
    directory, created only if every part was written)."""
    import dask.dataframe as dd

    if os.path.exists(path):
        raise DaskInputError(f"--output: {path} exists (Parquet output is a new directory)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DaskInputError(f"--output: the folder {folder} does not exist")
    if array.ndim == 1:
        array = array[:, None]
    frame = dd.from_dask_array(array, columns=list(column_names))
    temporary = tempfile.mkdtemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        frame.to_parquet(temporary, write_index=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            shutil.rmtree(temporary)


def n_rows(frame) -> int:
    return int(frame.map_partitions(len).sum().compute())


def report(model, frame, sequence_column, seconds, is_hmm):
    """What ``fit --report`` writes, computed on the partitions (one more pass for the
    log-likelihood)."""
    if is_hmm:
        rows = n_rows(frame)
        log_likelihood = float(model.score(frame, lengths=sequence_column))
        monitor = model.monitor_
        fields = dict(iterations=monitor.iter, converged=monitor.converged,
                      history=list(monitor.history), startprob=model.startprob_.tolist(),
                      transmat=model.transmat_.tolist())
    else:
        per_row = model.score_samples(frame)  # its length is known: no pass to count rows
        rows = int(per_row.shape[0])
        log_likelihood = float(per_row.sum().compute())
        fields = dict(iterations=model.n_iter_, converged=model.converged_,
                      history=[float(h) for h in model.lower_bounds_],
                      weights=model.weights_.tolist(), means=model.means_.tolist())
    p = model._n_parameters()
    return dict(model=type(model).__name__, n_components=model.n_components, seconds=seconds,
                n_samples=rows, n_partitions=frame.npartitions, log_likelihood=log_likelihood,
                bic=-2 * log_likelihood + p * np.log(rows), aic=-2 * log_likelihood + 2 * p,
                **fields)


def summary(model, facts):
    """The printed fit summary, from :func:`report`'s facts."""
    lines = [f"fastem: {facts['model']}, {facts['n_components']} components, "
             f"{facts['n_samples']} rows in {facts['n_partitions']} partitions",
             f"  iterations {facts['iterations']}, converged {facts['converged']}, "
             f"{facts['seconds']:.2f} s",
             f"  log-likelihood {facts['log_likelihood']:.4f}, BIC {facts['bic']:.2f}, "
             f"AIC {facts['aic']:.2f}"]
    if "weights" in facts:
        for k in range(model.n_components):
            lines.append(f"  component {k}: weight {model.weights_[k]:.4f}, mean "
                         + np.array2string(model.means_[k][:8], precision=4))
    else:
        lines.append("  transition matrix\n" + np.array2string(model.transmat_, precision=3))
    return "\n".join(lines)
