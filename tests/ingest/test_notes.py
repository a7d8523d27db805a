"""Clinical notes bronze ingestion: text files joined to their export manifest, exactly once.

The generated cohort writes ``notes/text/<id>.txt`` and ``notes/manifest.csv`` and lists the notes
it emptied on purpose in ``_truth/dirty_records.csv``: those must be quarantined, every other
note must land once with its text byte-for-byte and its manifest metadata, across re-runs and a
rewritten note. Hand-made exports cover the manifest's own failures (rows whose file is missing,
repeated rows, malformed rows), notes without a manifest, non-UTF-8 text and NDJSON exports.
There are no third-party note files in ``shared/realdata`` (clinical notes are PHI); if a
``notes`` folder appears there, every file in it must land or be quarantined with a reason.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import pickle
from pathlib import Path
from typing import Any

import pytest

from python_ingest.job import IngestJob
from python_ingest.model import FileOutcome, OutcomeGroup
from python_ingest.notes import NotesReader
from tests.ingest.support import Duck, Landed, dirty_records, fixtures_for, land_copy, rerun, scan
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "notes"


cohort, landed = fixtures_for(NotesReader, seed=5, modalities=("ehr", "notes"))


def _manifest(cohort: Path) -> list[dict[str, str]]:
    with (cohort / "notes" / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _notes(duck: Duck, bronze: Path) -> dict[str, dict[str, Any]]:
    return {r["note_id"]: r for r in duck.records(f"select * from {scan(bronze, 'notes')}")}


def test_every_note_lands_once_with_its_text_and_metadata(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, summary = landed
    empty = {r["locator"] for r in dirty_records(cohort, "notes")}
    assert empty, "the cohort should hold a few empty notes at dirty_rate 0.05"
    notes = _notes(duck, bronze)
    count = duck.query(f"select count(*) from {scan(bronze, 'notes')}")[0][0]
    manifest = _manifest(cohort)
    assert count == len(notes) == len(manifest) - len(empty) == summary.records_landed
    for line, row in enumerate(manifest, start=2):
        if row["note_id"] in empty:
            assert row["note_id"] not in notes
            continue
        note = notes[row["note_id"]]
        data = (cohort / "notes" / row["file"]).read_bytes()
        assert note["text"].encode("utf-8") == data
        assert note["char_count"] == len(data.decode("utf-8"))
        assert note["text_sha256"] == note["_record_hash"] == hashlib.sha256(data).hexdigest()
        for column in ("patient_mrn", "note_type", "loinc_document_code", "author"):
            assert note[column] == row[column], column
        assert note["note_datetime_raw"] == row["note_datetime"]
        assert note["note_datetime"] == dt.datetime.fromisoformat(row["note_datetime"])
        assert (note["manifest_file"], note["manifest_line"]) == (
            str(cohort / "notes" / "manifest.csv"),
            line,
        )
        assert note["_source_file"] == str(cohort / "notes" / row["file"])
        assert note["_source_locator"] == row["note_id"]
        assert (note["source_format"], note["extra_fields"]) == ("text", None)


def test_empty_notes_are_quarantined_and_nothing_else(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, _ = landed
    rows = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where modality = 'notes'"
    )
    got = {(Path(f).relative_to(cohort).as_posix(), loc) for f, loc, _ in rows}
    assert got == {(r["file"], r["locator"]) for r in dirty_records(cohort, "notes")}
    assert len(rows) == len(got)
    assert all(reason.startswith("note body is empty or whitespace-only") for *_, reason in rows)


def test_accounting_per_file(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, summary = landed
    log = {
        Path(p).name: (read, landed_, bad)
        for p, read, landed_, bad in duck.query(
            f"select path, records_read, records_landed, records_quarantined "
            f"from {scan(bronze, '_ingest_log')} where status = 'landed'"
        )
    }
    empty = {Path(r["file"]).name for r in dirty_records(cohort, "notes")}
    assert len(log) == summary.files_seen == len(_manifest(cohort)) + 1
    assert log.pop("manifest.csv") == (0, 0, 0)  # every row describes a text file that exists
    assert all(v == ((1, 0, 1) if name in empty else (1, 1, 0)) for name, v in log.items())


def test_reruns_change_nothing_and_a_rewritten_note_is_relanded(
    duck: Duck, cohort: Path, landed: Landed, tmp_path: Path
) -> None:
    source, bronze, first = land_copy(NotesReader(), cohort / "notes", tmp_path)

    def snapshot() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        notes = duck.query(
            f"select note_id, _record_hash from {scan(bronze, 'notes')} order by all"
        )
        quarantine = duck.query(
            f"select _source_file, _source_locator from {scan(bronze, '_quarantine')} order by all"
        )
        return notes, quarantine

    before = snapshot()
    assert len(before[0]) == landed[1].records_landed
    for again in rerun(NotesReader(), source, bronze):
        assert (again.files_skipped, again.files_landed) == (first.files_seen, 0)
        assert snapshot() == before

    # The EHR re-exports two notes: one amended, one previously empty now signed.
    row = next(
        r
        for r in _manifest(cohort)
        if r["note_id"] not in {d["locator"] for d in dirty_records(cohort, "notes")}
    )
    amended = source / row["file"]
    amended.write_text(amended.read_text(encoding="utf-8") + "\nADDENDUM: reviewed.\n", "utf-8")
    signed_id = dirty_records(cohort, "notes")[0]["locator"]
    (source / "text" / f"{signed_id}.txt").write_text("Signed note body.\n", encoding="utf-8")
    third = IngestJob(NotesReader(), bronze.parent).run(source)
    assert (third.files_landed, third.records_landed, third.records_quarantined) == (2, 2, 0)
    notes = _notes(duck, bronze)
    assert len(notes) == len(before[0]) + 1
    assert notes[row["note_id"]]["text"].endswith("ADDENDUM: reviewed.\n")
    assert notes[signed_id]["text"] == "Signed note body.\n"
    assert notes[signed_id]["patient_mrn"]  # the manifest row joins the re-landed note
    quarantined = {loc for _, loc in snapshot()[1]}
    assert signed_id not in quarantined and len(quarantined) == len(before[1]) - 1


def _write_export(folder: Path) -> None:
    """A hand-made export: manifest with dangling, repeated and malformed rows, odd notes."""
    text = folder / "text"
    text.mkdir(parents=True)
    (text / "N1.txt").write_bytes("\ufeffChest pain, denies fever.\r\n".encode())
    (text / "N2.txt").write_text("Follow-up visit.\n", encoding="utf-8")
    (text / "N3.txt").write_bytes(b"Caf\xe9 au lait spots.\n")  # Latin-1, not UTF-8
    (text / "ORPHAN.txt").write_text("No manifest row for me.\n", encoding="utf-8")
    (folder / "N4.txt").write_text("Joined by note_id.\n", encoding="utf-8")
    (folder / "manifest.csv").write_text(
        "note_id,patient_mrn,note_type,loinc_document_code,author,note_datetime,file,department\n"
        'N1,MRN1,progress_note,11506-3,"Doe, Jane MD",2024-03-01T09:30:00+01:00,text/N1.txt,ONC\n'
        "N2,MRN2,radiology_report,18748-4,Roe,03/02/2024 14:05,text/N2.txt,RAD\n"
        "N3,MRN3,progress_note,11506-3,Roe,not a date,text/N3.txt,ONC\n"
        "N5,MRN5,progress_note,11506-3,Roe,2024-03-05T10:00:00,text/N5.txt,ONC\n"
        "N2b,MRN2,radiology_report,18748-4,Roe,2024-03-02T14:05:00,text/N2.txt,RAD\n"
        "N6,MRN6,progress_note\n"
        "N4,MRN4,consult,11488-4,Roe,2024-03-04,,ONC\n"
        "N7,MRN7,consult,11488-4,Roe,2024-03-04,,ONC\n",
        encoding="utf-8",
    )


def test_manifest_rows_without_a_note_and_notes_without_a_row(duck: Duck, tmp_path: Path) -> None:
    source = tmp_path / "export"
    _write_export(source)
    lakehouse = tmp_path / "lakehouse"
    summary = IngestJob(NotesReader(), lakehouse).run(source)
    bronze = lakehouse / "bronze"
    notes = _notes(duck, bronze)
    assert set(notes) == {"N1", "N2", "ORPHAN", "N4"}
    n1 = notes["N1"]
    assert n1["text"] == "Chest pain, denies fever.\r\n"  # BOM dropped, line ends kept
    assert n1["_record_hash"] != n1["text_sha256"]
    assert n1["note_datetime"] == dt.datetime(2024, 3, 1, 9, 30)  # wall clock as written
    assert n1["note_datetime_raw"] == "2024-03-01T09:30:00+01:00"
    assert (n1["author"], n1["extra_fields"]) == ("Doe, Jane MD", '{"department":"ONC"}')
    assert notes["N2"]["note_datetime"] == dt.datetime(2024, 3, 2, 14, 5)
    assert notes["N2"]["manifest_line"] == 3
    assert notes["N4"]["patient_mrn"] == "MRN4"  # no file column: joined by note_id
    orphan = notes["ORPHAN"]
    assert orphan["patient_mrn"] is None and orphan["manifest_file"] is None
    reasons = {
        (Path(f).name, loc): reason
        for f, loc, reason in duck.query(
            f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')}"
        )
    }
    assert set(reasons) == {
        ("N3.txt", "N3"),
        ("manifest.csv", "line 5"),
        ("manifest.csv", "line 6"),
        ("manifest.csv", "line 7"),
        ("manifest.csv", "line 9"),
    }
    assert reasons[("N3.txt", "N3")] == "the note is not UTF-8 text (byte 0xE9 at offset 3)"
    assert "does not exist" in reasons[("manifest.csv", "line 5")]
    assert "already described by line 3" in reasons[("manifest.csv", "line 6")]
    assert "has 3 fields but the header has 8" in reasons[("manifest.csv", "line 7")]
    assert "no text file N7.txt" in reasons[("manifest.csv", "line 9")]
    assert summary.records_read == 5 + 4  # five notes, four unclaimed manifest rows
    assert summary.records_landed == 4


def test_windows_unicode_notes_and_manifest_land(duck: Duck, tmp_path: Path) -> None:
    """UTF-16 behind a byte-order mark (Windows "Unicode" text) is read, for notes and for the
    manifest; text whose mark promises UTF-16 but whose bytes are not is quarantined."""
    source = tmp_path / "export"
    source.mkdir()
    body = "Pt. seen with café-au-lait macules.\r\nPlan: MRI brain.\r\n"
    (source / "W1.txt").write_bytes(body.encode("utf-16"))  # the mark, then UTF-16LE
    (source / "W2.txt").write_bytes(codecs.BOM_UTF16_BE + "Note two.\n".encode("utf-16-be"))
    (source / "W3.txt").write_bytes(codecs.BOM_UTF16_LE + b"N\x00o\x00\x00\xd8")  # lone surrogate
    (source / "manifest.csv").write_bytes(
        "note_id,patient_mrn,note_type,file\r\nW1,MRN-Ü1,progress_note,W1.txt\r\n".encode("utf-16")
    )
    lakehouse = tmp_path / "lakehouse"
    summary = IngestJob(NotesReader(), lakehouse).run(source)
    bronze = lakehouse / "bronze"
    notes = _notes(duck, bronze)
    assert set(notes) == {"W1", "W2"}
    assert notes["W1"]["text"] == body and notes["W1"]["patient_mrn"] == "MRN-Ü1"
    raw = (source / "W1.txt").read_bytes()
    assert notes["W1"]["_record_hash"] == hashlib.sha256(raw).hexdigest()
    assert notes["W1"]["text_sha256"] == hashlib.sha256(body.encode("utf-8")).hexdigest()
    assert notes["W2"]["text"] == "Note two.\n"
    reasons = duck.query(f"select _source_locator, reason from {scan(bronze, '_quarantine')}")
    assert reasons == [("W3", "the note is not UTF-16LE text (byte 0x00 at offset 6)")]
    assert (summary.records_read, summary.records_landed) == (3, 2)


def test_manifest_file_paths_as_exports_write_them(duck: Duck, tmp_path: Path) -> None:
    """Windows separators and ``..`` in a row's file, a row naming a PDF, and a row naming a
    note two folders down (which no manifest lookup from that note reaches)."""
    source = tmp_path / "export"
    (source / "text").mkdir(parents=True)
    (source / "deep" / "inner").mkdir(parents=True)
    (source / "text" / "A.txt").write_text("Note A.\n", encoding="utf-8")
    (source / "text" / "B.pdf").write_bytes(b"%PDF-1.4\n")
    (source / "text" / "D.txt").write_text("Note D.\n", encoding="utf-8")
    (source / "deep" / "inner" / "C.txt").write_text("Note C.\n", encoding="utf-8")
    (source / "manifest.csv").write_text(
        "note_id,patient_mrn,file\n"
        "A,MRN1,text\\A.txt\n"
        "B,MRN2,text/B.pdf\n"
        "C,MRN3,deep/inner/C.txt\n"
        "D,MRN4,./text/../text/D.txt\n",
        encoding="utf-8",
    )
    bronze = tmp_path / "lakehouse" / "bronze"
    summary = IngestJob(NotesReader(), bronze.parent).run(source)
    notes = _notes(duck, bronze)
    assert set(notes) == {"A", "C", "D"}
    assert (notes["A"]["patient_mrn"], notes["A"]["manifest_line"]) == ("MRN1", 2)
    assert (notes["D"]["patient_mrn"], notes["D"]["manifest_line"]) == ("MRN4", 5)
    assert notes["C"]["patient_mrn"] is None and notes["C"]["manifest_file"] is None
    reasons = dict(duck.query(f"select _source_locator, reason from {scan(bronze, '_quarantine')}"))
    assert set(reasons) == {"line 3", "line 4"}
    assert "is not a .txt note" in reasons["line 3"]
    assert "not in this manifest's folder or a folder below it" in reasons["line 4"]
    assert (summary.records_read, summary.records_landed) == (3 + 2, 3)


def test_a_folder_of_notes_without_manifest_and_ndjson(tmp_path: Path) -> None:
    source = tmp_path / "plain"
    source.mkdir()
    (source / "a.txt").write_text("Note A.\n", encoding="utf-8")
    (source / "b.TXT").write_text(" \n\t\n", encoding="utf-8")
    (source / "export.ndjson").write_bytes(
        b'{"note_id":"J1","patient_mrn":"MRN9","note_text":"Doing well.","ward":"4B"}\n'
        b"\n"
        b'{"note_id":"J2","text":"   "}\n'
        b'{"note_id":"J3","text":"cut off\n'
        b'{"note_id":"J4"}\n'
    )
    (source / ".hidden").mkdir()
    (source / ".hidden" / "c.txt").write_text("skipped\n", encoding="utf-8")
    reader = NotesReader()
    assert [p.name for p in reader.discover(source)] == ["a.txt", "b.TXT", "export.ndjson"]
    outcome = reader.read(source / "export.ndjson")
    outcome.check_accounting(source / "export.ndjson")
    (row,) = outcome.tables["notes"].to_pylist()
    assert (row["note_id"], row["patient_mrn"], row["text"], row["extra_fields"]) == (
        "J1",
        "MRN9",
        "Doing well.",
        '{"ward":"4B"}',
    )
    assert (row["source_format"], row["_source_locator"]) == ("ndjson", "line 1")
    assert [q.locator for q in outcome.quarantined] == ["line 3", "line 4", "line 5"]
    assert "no text field" in outcome.quarantined[2].reason
    plain = reader.read(source / "a.txt")
    assert plain.tables["notes"].to_pylist()[0]["note_id"] == "a"
    assert plain.tables["notes"].schema == outcome.tables["notes"].schema
    blank = reader.read(source / "b.TXT")
    assert (blank.records_read, blank.quarantined[0].locator) == (1, "b")


def _facts(outcome: FileOutcome) -> tuple[Any, ...]:
    tables = {name: (t.schema, t.to_pylist()) for name, t in outcome.tables.items()}
    bad = [(q.locator, q.reason, q.payload) for q in outcome.quarantined]
    return outcome.records_read, outcome.records_landed, bad, tables


def test_read_many_gives_what_read_gives_file_by_file(tmp_path: Path, cohort: Path) -> None:
    """The job reads a pool task's notes with ``read_many`` (the text notes' rows built as one
    table, sliced per file); each outcome must be exactly ``read``'s, and must survive the trip
    back from a worker (``OutcomeGroup``) unchanged."""
    source = tmp_path / "export"
    _write_export(source)
    reader = NotesReader()
    mine = reader.discover(source)
    generated = reader.discover(cohort / "notes")
    for paths in (mine, generated[:200], [*generated[:5], *mine, *generated[-5:]]):
        grouped = reader.read_many(paths)
        alone = [reader.read(path) for path in paths]
        assert [_facts(o) for o in grouped] == [_facts(o) for o in alone]
        sent = OutcomeGroup([(str(i), o) for i, o in enumerate(grouped)])
        arrived = pickle.loads(pickle.dumps(sent))
        assert [(d, _facts(o)) for d, o in arrived] == [(d, _facts(o)) for d, o in sent]


def test_real_note_files_land_or_are_quarantined(tmp_path: Path) -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"no third-party clinical notes are shipped: {REALDATA} is absent")
    summary = IngestJob(NotesReader(), tmp_path / "lakehouse").run(REALDATA)
    assert summary.files_landed == summary.files_seen
    assert summary.records_read == summary.records_landed + summary.records_quarantined
