"""Notes delivered as a table (one note per CSV row, the text in a column) or as documents (the
i2b2/n2c2 corpora's XML, JSON arrays of note objects).

Research and EHR extracts ship notes this way (MIMIC's NOTEEVENTS, MTSamples): quoted text over
many lines, no id column at all, notes longer than the csv module's default field limit. Each
row lands or is quarantined with the reason; a CSV that holds no text column is quarantined
whole instead of being passed over in silence.
"""

from __future__ import annotations

import csv
import io
import json
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


I2B2 = """<?xml version="1.0" encoding="UTF-8" ?>
<deidi2b2>
<TEXT><![CDATA[
Record date: 2067-05-03

Mr. Nadir is seen for follow-up of his diabetes. A1c 7.2 & rising.
]]></TEXT>
<TAGS>
<DATE id="P0" start="14" end="24" text="2067-05-03" TYPE="DATE" comment="" />
<NAME id="P1" start="30" end="35" text="Nadir" TYPE="PATIENT" comment="" />
</TAGS>
</deidi2b2>
"""


def test_notes_in_xml_and_json_documents_land(tmp_path: Path) -> None:
    """The i2b2/n2c2 corpora's XML (one note a file, its annotations kept) and JSON arrays of
    note objects; other XML and broken files are quarantined whole, with the reason."""
    source = tmp_path / "corpus"
    source.mkdir()
    (source / "110-01.xml").write_text(I2B2, encoding="utf-8")
    (source / "ccda.xml").write_text(
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CCD</title></ClinicalDocument>'
    )
    (source / "bomb.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaa">]><deidi2b2><TEXT>&a;</TEXT>'
        "</deidi2b2>"
    )
    (source / "notes.json").write_text(
        '[{"note_id": "J1", "patient_mrn": "MRN9", "text": "Stable."}, {"text": "  "}, 3]'
    )
    reader = NotesReader()
    assert [p.name for p in reader.discover(source)] == [
        "110-01.xml",
        "bomb.xml",
        "ccda.xml",
        "notes.json",
    ]
    xml = reader.read(source / "110-01.xml")
    (row,) = xml.tables["notes"].to_pylist()
    assert (row["note_id"], row["source_format"], row["_source_locator"]) == (
        "110-01",
        "xml",
        "110-01",
    )
    assert row["text"][14:24] == "2067-05-03" and row["text"][30:35] == "Nadir"
    tags = json.loads(row["extra_fields"])["TAGS"]
    assert tags[1] == {
        "tag": "NAME", "id": "P1", "start": "30", "end": "35", "text": "Nadir",
        "TYPE": "PATIENT", "comment": "",
    }  # fmt: skip
    ccda = reader.read(source / "ccda.xml").quarantined
    assert [q.locator for q in ccda] == ["ccda"]
    assert "root <{urn:hl7-org:v3}ClinicalDocument>" in ccda[0].reason
    assert "EntitiesForbidden" in reader.read(source / "bomb.xml").quarantined[0].reason
    notes = reader.read(source / "notes.json")
    notes.check_accounting(source / "notes.json")
    assert [r["note_id"] for r in notes.tables["notes"].to_pylist()] == ["J1"]
    assert [(q.locator, q.reason) for q in notes.quarantined] == [
        ("item 2", "note body is empty or whitespace-only (2 characters)"),
        ("item 3", "the item is JSON but not a note object"),
    ]
    summary = IngestJob(NotesReader(), tmp_path / "lakehouse").run(source)
    assert (summary.records_read, summary.records_landed) == (6, 2)
