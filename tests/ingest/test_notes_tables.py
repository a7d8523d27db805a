"""Notes delivered as a table: one note per CSV row, the text in a column.

Research and EHR extracts ship notes this way (MIMIC's NOTEEVENTS, MTSamples): quoted text over
many lines, no id column at all, notes longer than the csv module's default field limit. Each
row lands or is quarantined with the reason; a CSV that holds no text column is quarantined
whole instead of being passed over in silence.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from python_ingest.job import IngestJob
from python_ingest.notes import NotesReader

LONG = "Assessment: stable disease. " * 6000  # 168,000 characters: over csv's 131,072 default


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


@pytest.fixture
def export(tmp_path: Path) -> Path:
    source = tmp_path / "extract"
    source.mkdir()
    header = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CHARTTIME", "CATEGORY",
              "DESCRIPTION", "TEXT"]  # fmt: skip
    mimic = [
        header,
        ["174", "22532", "167853", "2151-08-04", "", "Discharge summary", "Report",
         "Admission Date: [**2151-7-16**]\nChief Complaint: dyspnea.\n\nNo chest pain."],
        ["175", "13702", "107527", "2118-06-14", "", "Radiology", "CHEST", "   "],
        ["176", "13702", "167118"],
        ["177", "26880", "135453", "2162-03-25", "2162-03-25 14:10:00", "Nursing", "Note", LONG],
    ]  # fmt: skip
    (source / "NOTEEVENTS.csv").write_text(_csv(mimic), encoding="utf-8")
    samples = [
        ["description", "medical_specialty", "sample_name", "transcription"],
        ["A 23-year-old", "Allergy / Immunology", "Allergic Rhinitis", "SUBJECTIVE: allergies."],
    ]
    (source / "mtsamples.csv").write_text(_csv(samples), encoding="utf-8")
    (source / "notes_index.csv").write_text("note_id,file\nN1,n1.txt\n", encoding="utf-8")
    return source


def test_each_row_of_a_notes_table_is_a_note(export: Path) -> None:
    outcome = NotesReader().read(export / "NOTEEVENTS.csv")
    outcome.check_accounting(export / "NOTEEVENTS.csv")
    rows = outcome.tables["notes"].to_pylist()
    assert [(r["note_id"], r["patient_mrn"], r["note_type"]) for r in rows] == [
        ("174", "22532", "Discharge summary"),
        ("177", "26880", "Nursing"),
    ]
    first = rows[0]
    assert first["text"].startswith("Admission Date") and "\n\nNo chest pain." in first["text"]
    assert (first["note_datetime"].isoformat(), first["source_format"]) == (
        "2151-08-04T00:00:00",
        "csv",
    )
    assert first["extra_fields"] == '{"HADM_ID":"167853","CHARTTIME":"","DESCRIPTION":"Report"}'
    # Where MIMIC gives the time too, CHARTTIME is the note's time and CHARTDATE is kept.
    assert rows[1]["note_datetime"].isoformat() == "2162-03-25T14:10:00"
    assert '"CHARTDATE":"2162-03-25"' in rows[1]["extra_fields"]
    assert (rows[1]["char_count"], rows[1]["_source_locator"]) == (len(LONG), "line 8")
    # The first note's text spans lines 2-5: a row's locator is the line it starts on.
    assert [(q.locator, q.reason) for q in outcome.quarantined] == [
        ("line 6", "note body is empty or whitespace-only (3 characters)"),
        ("line 7", "the row has 3 fields but the header has 8"),
    ]


def test_a_note_without_an_id_is_named_by_its_place(export: Path) -> None:
    outcome = NotesReader().read(export / "mtsamples.csv")
    (row,) = outcome.tables["notes"].to_pylist()
    assert (row["note_id"], row["text"]) == ("mtsamples line 2", "SUBJECTIVE: allergies.")


def test_a_csv_without_a_text_column_is_quarantined_whole(export: Path) -> None:
    outcome = NotesReader().read(export / "notes_index.csv")
    assert (outcome.records_read, outcome.records_landed) == (1, 0)
    (bad,) = outcome.quarantined
    assert bad.locator == "file"
    assert "no note" in bad.reason and "manifest.csv" in bad.reason
    assert bad.reason.endswith("The header is note_id, file")


def test_the_job_accounts_for_every_row_and_reruns_change_nothing(
    export: Path, tmp_path: Path
) -> None:
    reader = NotesReader()
    assert [p.name for p in reader.discover(export)] == [
        "NOTEEVENTS.csv",
        "mtsamples.csv",
        "notes_index.csv",
    ]
    job = IngestJob(reader, tmp_path / "lakehouse")
    first = job.run(export)
    assert (first.records_read, first.records_landed, first.records_quarantined) == (6, 3, 3)
    again = IngestJob(NotesReader(), tmp_path / "lakehouse").run(export)
    assert (again.files_skipped, again.files_landed) == (3, 0)
