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


_DELIMITERS = ",;\t|"
_INDEX_NAMES = {"", "unnamed: 0", "index"}


def _delimiter(path, sample):
    """The field separator: tab for .tsv/.tab, else the one csv's sniffer finds among
    , ; tab | in the first lines (a semicolon CSV is common), else a comma."""
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=_DELIMITERS).delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in _DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _text_delimiter(path):
    """The delimiter of a text file, from its first 64 KiB."""
    # utf-8-sig drops a byte-order mark, which would otherwise turn the first data row
    # of a headerless file into a "header" (one row silently lost).
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return _delimiter(path, handle.read(65536))


def _read_text(path, delimiter):
    """(names, columns of strings) of a CSV/TSV file; the header is detected."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
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
    widths = {len(row) for row in body}
    if widths != {len(names)}:
        raise ValueError(f"{path}: rows have {sorted(widths)} fields, the header has "
                         f"{len(names)}")
    return names, [list(column) for column in zip(*body, strict=True)]


def _numeric_text(path, delimiter):
    """(names, columns) of a text file that holds numbers only, parsed by numpy's C reader
    (several times faster than splitting fields in Python); None when it holds anything
    else (text, missing values, quotes), which the general reader handles."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = next(csv.reader([handle.readline()], delimiter=delimiter), None)
        if not first:
            return None
        has_header = not all(_is_number(field) for field in first)
        handle.seek(0)
        try:
            X = np.loadtxt(handle, delimiter=delimiter, skiprows=int(has_header), ndmin=2,
                           dtype=np.float64)
        except ValueError:
            return None
    if X.shape[0] == 0 or X.shape[1] != len(first):
        return None
    names = [field.strip() for field in first] if has_header else [
        f"x{i}" for i in range(X.shape[1])]
    return names, [X[:, i].copy() for i in range(X.shape[1])]


def _numbers(strings):
    """A float64 array from strings (vectorised; missing tokens become NaN), or None when
    the first value is not a number (a text column). A later non-number is an error."""
    try:
        return np.array(strings, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    if not _is_number(strings[0]):
        return None
    out = np.empty(len(strings))
    for row, text in enumerate(strings):
        try:
            out[row] = _number(text)
        except ValueError:
            raise _NotANumber(row, text) from None
    return out


class _NotANumber(ValueError):
    def __init__(self, row, text):
        super().__init__(row, text)
        self.row, self.text = row, text


def _columns(path):
    """(names, columns): each column a float64 array (numeric) or a list of strings."""
    lower = path.lower()
    if lower.endswith(".npy"):
        try:
            X = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: not a numeric .npy array ({error})") from None
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{path}: not a numeric .npy array (dtype {X.dtype})")
        X = X[:, None] if X.ndim == 1 else X
        if X.ndim != 2:
            raise ValueError(f"{path}: expected a 2-d array, got shape {X.shape}")
        return [f"x{i}" for i in range(X.shape[1])], [X[:, i].astype(np.float64)
                                                       for i in range(X.shape[1])]
    if lower.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"{path}: reading Parquet needs pyarrow "
                             "(pip install pyarrow)") from None
        table = pq.read_table(path)
        columns = []
        for name in table.column_names:
            values = table.column(name).to_numpy(zero_copy_only=False)
            if values.dtype.kind in "biuf":
                columns.append(values.astype(np.float64))
            else:
                columns.append(["" if v is None else str(v) for v in values])
        return list(table.column_names), columns
    delimiter = _text_delimiter(path)
    fast = _numeric_text(path, delimiter)
    if fast is not None:
        return fast
    names, strings = _read_text(path, delimiter)
    columns = []
    for name, column in zip(names, strings, strict=True):
        try:
            numbers = _numbers(column)
        except _NotANumber as error:
            raise ValueError(f"{path}: row {error.row + 1}, column {name!r}: {error.text!r} is "
                             "not a number") from None
        columns.append(column if numbers is None else numbers)
    return names, columns


def read_table(path, columns=None, sequence_column=None):
    """(X, names, sequence_ids, skipped) from a data file.

    ``columns``: comma-separated names or 0-based indices to keep. By default every
    numeric column is kept except the sequence column and an index column (empty name,
    as pandas writes it, or "Unnamed: 0"); text columns are skipped. ``skipped`` names
    what was left out. ``sequence_column``: a column whose consecutive equal values form
    one sequence (its values are returned as ``sequence_ids``, else None). Empty fields,
    NA and nan are missing (NaN). CSV fields are separated by , ; tab or | (detected).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    names, data = _columns(path)
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
        ids = list(data[position])
        skip.add(position)
    skipped = []
    if columns:
        wanted = [resolve(c) for c in columns.split(",")]
        for position in wanted:
            if not isinstance(data[position], np.ndarray):
                raise ValueError(f"{path}: column {names[position]!r} is not numeric (first "
                                 f"value {data[position][0]!r})")
    else:
        wanted = []
        for position, name in enumerate(names):
            if position in skip:
                continue
            if name.strip().lower() in _INDEX_NAMES or not isinstance(data[position],
                                                                       np.ndarray):
                skipped.append(name if name.strip() else f"column {position} (unnamed)")
                continue
            wanted.append(position)
        if not wanted:
            raise ValueError(f"{path}: no numeric columns (skipped: {', '.join(skipped)})")
    values = np.column_stack([data[position] for position in wanted])
    return values, [names[i] for i in wanted], ids, skipped


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
