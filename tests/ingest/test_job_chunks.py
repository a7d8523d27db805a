"""How the job cuts a run into commits and how it shapes what it writes.

Commit chunks start small (the first commit comes soon, so parsing overlaps it) and double up
to a cap in files and bytes; each column is written in as few Arrow chunks as fit a bound (one
string column over 2 GB cannot be a single chunk), as zstd-compressed Parquet.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import python_ingest.job as job
import python_ingest.job_tables as job_tables
from python_ingest.ledger import SourceFile
from tests.ingest.support import Duck


def _files(n: int, size: int) -> list[SourceFile]:
    return [SourceFile(Path(f"/landing/{i:06d}.jsonl"), size, None) for i in range(n)]


def test_chunks_double_up_to_the_cap_then_halve_towards_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(job, "FIRST_CHUNK_FILES", 10)
    monkeypatch.setattr(job, "CHUNK_FILES", 40)
    monkeypatch.setattr(job, "FIRST_CHUNK_BYTES", 10_000)
    monkeypatch.setattr(job, "CHUNK_BYTES", 1_000_000)
    files = _files(150, 100)
    chunks = list(job._chunks(files))
    # Up (the first commit comes soon), capped, then never more than half of what is left (the
    # last commit, which nothing overlaps, is small), down to the first chunk's size.
    assert [len(c) for c in chunks] == [10, 20, 40, 40, 20, 10, 10]
    assert [f for c in chunks for f in c] == files  # every file once, in order

    # No chunk leaves a remainder smaller than the first chunk, and a small run is one chunk.
    assert [len(c) for c in job._chunks(_files(40, 100))] == [10, 15, 15]
    assert [len(c) for c in job._chunks(_files(9, 100))] == [9]

    # Bytes bound the chunks the same way; a file larger than the bound is a chunk alone.
    big = [*_files(3, 6_000), SourceFile(Path("/landing/huge.ndjson"), 5_000_000, None)]
    assert [len(c) for c in job._chunks([*big, *_files(2, 100)])] == [1, 2, 1, 2]

    # The first chunk is also at most an eighth of the run's bytes (not below MIN_CHUNK_BYTES).
    monkeypatch.setattr(job, "FIRST_CHUNK_FILES", 100)
    monkeypatch.setattr(job, "FIRST_CHUNK_BYTES", 1_000_000)
    monkeypatch.setattr(job, "MIN_CHUNK_BYTES", 1_000)
    assert [len(c) for c in job._chunks(_files(40, 1_000))] == [5, 10, 12, 6, 7]


def test_columns_are_written_in_as_few_chunks_as_fit_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = [pa.table({"event_id": [f"e{i:03d}"], "value": [float(i)]}) for i in range(500)]
    many = pa.concat_tables(pieces)
    assert many.column(0).num_chunks == 500
    small = job_tables.few_chunks(many)
    assert small.column(0).num_chunks == small.column(1).num_chunks == 1 and small.equals(many)

    # A column over the bound is combined in runs that each fit it (a string column over
    # 2 GB cannot be one chunk); a column under it is still one chunk.
    per_chunk = many.column(0).chunk(0).get_total_buffer_size()  # offsets and 4 characters
    bound = 5000  # value: 500 doubles (4,000 bytes) fit; event_id: 500 * 12 bytes do not
    assert many.column(1).get_total_buffer_size() <= bound < many.column(0).get_total_buffer_size()
    monkeypatch.setattr(job_tables, "COMBINE_MAX_BYTES", bound)
    runs = job_tables.few_chunks(many)
    assert runs.column(0).num_chunks == -(-500 // (bound // per_chunk)) == 2
    assert runs.column(1).num_chunks == 1
    assert all(c.get_total_buffer_size() <= bound for c in runs.column(0).chunks)
    assert runs.equals(many)


def test_a_landed_chunk_reads_back_whole_from_zstd_parquet(duck: Duck, tmp_path: Path) -> None:
    pieces = [pa.table({"event_id": [f"e{i:03d}"], "value": [float(i)]}) for i in range(500)]
    table = tmp_path / "events"
    job_tables.land(table, pieces, None)
    again = [pa.table({"event_id": [f"e{i:03d}"], "value": [i + 1000.0]}) for i in range(5)]
    job_tables.land(table, again, "event_id < 'e005'")  # a re-land replaces those rows
    rows = duck.query(f"select event_id, value from delta_scan('{table}') order by event_id")
    assert rows == [(f"e{i:03d}", i + (1000.0 if i < 5 else 0.0)) for i in range(500)]
    files = sorted(table.glob("*.parquet"))
    assert files
    for path in files:
        meta = pq.ParquetFile(path).metadata
        codecs = {
            meta.row_group(g).column(c).compression
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        }
        assert codecs == {"ZSTD"}, path
