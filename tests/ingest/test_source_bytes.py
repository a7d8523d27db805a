"""One read per source file: the ledger's sha256 always describes the bytes that landed.

A file rewritten while the ingest runs (an export tool still writing, an operator fixing a
note) is the case that matters: the content that lands and the hash the ledger records must
come from the same read, so the next run sees the rewrite as a change and re-lands it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import python_ingest.ledger as ledger
import python_ingest.source_bytes as source_bytes
from mmlake.duckdb_ext import connect
from python_ingest.job import IngestJob
from python_ingest.notes import NotesReader
from python_ingest.source_bytes import hash_and_hold, holding, read_source
from tests.ingest.support import Duck, scan

ORIGINAL = "Assessment: stable disease. ECOG 1.\n"
REWRITTEN = "Assessment: progression in the liver. ECOG 2.\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_reader_gets_the_hashed_bytes_even_if_the_file_changed(tmp_path: Path) -> None:
    note = tmp_path / "n1.txt"
    note.write_text(ORIGINAL, encoding="utf-8")
    with holding():
        digest = hash_and_hold(note, note.stat().st_size)
        note.write_text(REWRITTEN, encoding="utf-8")
        assert read_source(note).decode() == ORIGINAL
        assert read_source(note).decode() == ORIGINAL  # a reader's fallback re-read agrees
    assert digest == _sha(ORIGINAL)
    # Outside the scope nothing is held: the file is read as it now is.
    assert read_source(note).decode() == REWRITTEN


def test_large_files_are_hashed_in_blocks_and_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source_bytes, "MAX_HELD_BYTES", 8)
    big = tmp_path / "big.txt"
    big.write_text(ORIGINAL, encoding="utf-8")
    with holding():
        assert hash_and_hold(big, big.stat().st_size) is None
        digest = ledger.file_digest(NotesReader(), big, big.stat().st_size, hold=True)
        assert digest == ledger.sha256_file(big) == _sha(ORIGINAL)
        big.write_text(REWRITTEN, encoding="utf-8")
        assert read_source(big).decode() == REWRITTEN


def _landed(duck: Duck, bronze: Path) -> list[tuple[str, str, str]]:
    return duck.query(
        f"""
        select n.text, n._record_hash, l.sha256
        from {scan(bronze, "notes")} as n
        join {scan(bronze, "_ingest_log")} as l
            on l.path = n._source_file and l.status = 'landed'
            and l.batch_id = n._ingest_batch_id
        order by n._ingested_at
        """
    )


def test_a_note_rewritten_mid_ingest_lands_as_hashed_and_relands_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "notes"
    source.mkdir()
    note = source / "n1.txt"
    note.write_text(ORIGINAL, encoding="utf-8")

    def racing_writer(path: Path, size: int) -> str | None:
        """Hash as the job does, then let another program rewrite the note."""
        digest = hash_and_hold(path, size)
        path.write_text(REWRITTEN, encoding="utf-8")
        return digest

    monkeypatch.setattr(ledger, "hash_and_hold", racing_writer)
    lakehouse = tmp_path / "lakehouse"
    first = IngestJob(NotesReader(), lakehouse, workers=1).run(source)
    monkeypatch.undo()
    assert (first.records_read, first.records_landed) == (1, 1)

    duck = Duck(connect())
    bronze = lakehouse / "bronze"
    # What landed is what was hashed: the note as it was read, not as it is now.
    assert _landed(duck, bronze) == [(ORIGINAL, _sha(ORIGINAL), _sha(ORIGINAL))]

    # The next run sees a different sha256 and replaces the row with the rewritten note.
    second = IngestJob(NotesReader(), lakehouse, workers=1).run(source)
    assert (second.files_skipped, second.records_landed) == (0, 1)
    rows = duck.query(f"select text, _record_hash from {scan(bronze, 'notes')}")
    assert rows == [(REWRITTEN, _sha(REWRITTEN))]
    third = IngestJob(NotesReader(), lakehouse, workers=1).run(source)
    assert (third.files_skipped, third.records_landed) == (1, 0)
