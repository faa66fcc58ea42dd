"""Reading data files for the command line: CSV/TSV (header detected), .npy, Parquet."""

from __future__ import annotations

import csv
import os

import numpy as np

_MISSING = {"", "na", "nan", "null", "none", "?"}


def _number(text):
    text = text.strip()
    if text.lower() in _MISSING:
        return np.nan
    return float(text)


def _is_number(text):
    try:
        _number(text)
    except ValueError:
        return False
    return True


def _read_text(path):
    # utf-8-sig drops a byte-order mark, which would otherwise turn the first data row
    # of a headerless file into a "header" (one row silently lost).
    with open(path, newline="", encoding="utf-8-sig") as handle:
        sample = handle.read(65536)
        handle.seek(0)
        tab = path.lower().endswith((".tsv", ".tab")) or ("\t" in sample and "," not in sample)
        reader = csv.reader(handle, delimiter="\t" if tab else ",")
        try:
            rows = [row for row in reader if row]
        except csv.Error as error:  # e.g. a field beyond csv's size limit
            raise ValueError(f"{path}, line {reader.line_num}: {error}") from None
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    has_header = not all(_is_number(field) for field in rows[0])
    names = ([field.strip() for field in rows[0]] if has_header
             else [f"x{i}" for i in range(len(rows[0]))])
    body = rows[1:] if has_header else rows
    if not body:
        raise ValueError(f"{path}: no data rows")
    return names, body


def read_table(path, columns=None, sequence_column=None):
    """(X, names, sequence_ids) from a data file.

    ``columns``: comma-separated names or 0-based indices to keep (default: all
    numeric columns except the sequence column). ``sequence_column``: a column
    whose consecutive equal values form one sequence (its values are returned
    as ``sequence_ids``, else None). Empty fields, NA and nan are missing (NaN).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    lower = path.lower()
    if lower.endswith(".npy"):
        try:
            X = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: not a numeric .npy array ({error})") from None
        X = np.atleast_2d(X.T).T if X.ndim == 1 else X
        if X.ndim != 2:
            raise ValueError(f"{path}: expected a 2-d array, got shape {X.shape}")
        names = [f"x{i}" for i in range(X.shape[1])]
        raw = [[str(v) for v in row] for row in X]
    elif lower.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"{path}: reading Parquet needs pyarrow "
                             "(pip install pyarrow)") from None
        table = pq.read_table(path)
        names = list(table.column_names)
        columns_data = [table.column(name).to_pylist() for name in names]
        raw = [["" if v is None else str(v) for v in row] for row in zip(*columns_data,
                                                                         strict=True)]
    else:
        names, raw = _read_text(path)
    widths = {len(row) for row in raw}
    if widths != {len(names)}:
        raise ValueError(f"{path}: rows have {sorted(widths)} fields, the header has "
                         f"{len(names)}")
    index_of = {name: i for i, name in enumerate(names)}

    def resolve(item):
        item = item.strip()
        if item in index_of:
            return index_of[item]
        if item.isdigit() and int(item) < len(names):
            return int(item)
        raise ValueError(f"{path}: no column {item!r} (columns: {', '.join(names)})")

    ids = None
    skip = set()
    if sequence_column is not None:
        position = resolve(sequence_column)
        ids = [row[position] for row in raw]
        skip.add(position)
    wanted = ([resolve(c) for c in columns.split(",")] if columns
              else [i for i in range(len(names)) if i not in skip])
    values = np.empty((len(raw), len(wanted)))
    for r, row in enumerate(raw):
        for c, position in enumerate(wanted):
            try:
                values[r, c] = _number(row[position])
            except ValueError:
                raise ValueError(f"{path}: row {r + 1}, column {names[position]!r}: "
                                 f"{row[position]!r} is not a number") from None
    return values, [names[i] for i in wanted], ids


def lengths_from_ids(ids):
    """Lengths of the runs of equal consecutive values."""
    lengths = []
    previous = object()
    for value in ids:
        if value != previous:
            lengths.append(0)
            previous = value
        lengths[-1] += 1
    return lengths


def read_lengths(path):
    """Sequence lengths from a text file: integers separated by whitespace or commas."""
    with open(path, encoding="utf-8-sig") as handle:
        text = handle.read().replace(",", " ").split()
    try:
        return [int(value) for value in text]
    except ValueError:
        raise ValueError(f"{path}: lengths must be integers") from None
