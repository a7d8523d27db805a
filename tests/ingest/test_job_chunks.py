"""How the job cuts a run into commits and how it shapes what it writes.

Commit chunks start small (the first commit comes soon, so parsing overlaps it) and double up
to a cap in files and bytes; a chunk's small tables are written as one Arrow chunk per column,
a large one as it is (one string column over 2 GB cannot be a single chunk).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import python_ingest.job as job
import python_ingest.job_tables as job_tables
from python_ingest.ledger import SourceFile


def _files(n: int, size: int) -> list[SourceFile]:
    return [SourceFile(Path(f"/landing/{i:06d}.jsonl"), size, None) for i in range(n)]


def test_chunks_double_from_the_first_size_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job, "FIRST_CHUNK_FILES", 10)
    monkeypatch.setattr(job, "CHUNK_FILES", 40)
    monkeypatch.setattr(job, "FIRST_CHUNK_BYTES", 10_000)
    monkeypatch.setattr(job, "CHUNK_BYTES", 1_000_000)
    files = _files(150, 100)
    chunks = list(job._chunks(files))
    assert [len(c) for c in chunks] == [10, 20, 40, 40, 40]
    assert [f for c in chunks for f in c] == files  # every file once, in order

    # Bytes bound the chunks the same way; a file larger than the bound is a chunk alone.
    big = [*_files(3, 6_000), SourceFile(Path("/landing/huge.ndjson"), 5_000_000, None)]
    assert [len(c) for c in job._chunks([*big, *_files(2, 100)])] == [1, 2, 1, 2]


def test_small_tables_are_written_as_one_chunk_and_large_ones_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = [pa.table({"event_id": [f"e{i}"], "value": [float(i)]}) for i in range(500)]
    many = pa.concat_tables(pieces)
    assert many.column(0).num_chunks == 500
    small = job_tables.few_chunks(many)
    assert small.column(0).num_chunks == 1 and small.equals(many)

    monkeypatch.setattr(job_tables, "COMBINE_MAX_BYTES", many.nbytes - 1)
    assert job_tables.few_chunks(many).column(0).num_chunks == 500
