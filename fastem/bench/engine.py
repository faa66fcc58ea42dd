"""The engine's schedules in ``python -m fastem.bench``: SQUAREM against plain EM on slowly
converging problems, and online EM over a long stream (in a child process, whose anonymous
memory is the measure)."""

from __future__ import annotations

import json
import subprocess
import sys

from . import acceleration


def _stream_in_child(rows):
    command = [sys.executable, "-m", "fastem.bench.stream", "--rows", str(rows)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick, log, problems=None, stream=True):
    """Records for the "acceleration" and "stream" tables (quick: 4 slow problems and
    2 million streamed rows; otherwise 20 and 20 million); half of the slow problems are
    mixtures, half HMMs."""
    import fastem

    fastem.warmup()
    wanted = problems if problems is not None else 4 if quick else 20
    records = []
    for parity in (0, 1):
        found, index = 0, parity
        while found < (wanted + 1 - parity) // 2 and index < 40 * wanted:
            record = acceleration.run_problem(index)
            records.append(record)
            found += record["slow"]
            index += 2
            log(f"  {record['problem']}: {record['plain_passes']} passes plain, "
                f"{record['squarem_passes']} with SQUAREM")
    stream = _stream_in_child(2_000_000 if quick else 20_000_000) if stream else None
    if stream is not None:
        log(f"  online EM over {stream['rows']:,} rows: {stream['stream_s']:.1f} s, "
            f"peak {stream['peak_anonymous_mb']:.0f} MB")
    return {"acceleration": records,
            "acceleration_summary": acceleration.summary(records),
            "stream": [] if stream is None else [stream]}
