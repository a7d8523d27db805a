"""Clinical notes delivered through FHIR: DocumentReferences land with their text decoded.

The attachment rules of ``python_ingest.ehr_documents`` on hand-made content (charsets, a PDF
beside the text, a url only, damaged base64), then a real Synthea bulk export
(``shared/realdata/fhir/bulk-ndjson-10-patients``: 1215 DocumentReferences whose base64 data is
text/plain clinical-note text, per its EXPECTED_FACTS.md) through the ingest job.
"""

from __future__ import annotations

import base64

import pytest

from python_ingest.ehr import EhrReader
from python_ingest.ehr_documents import note_text
from tests.ingest.support import Duck, Landed, land, scan
from tests.realdata import REALDATA

BULK = REALDATA / "fhir" / "bulk-ndjson-10-patients"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _attachment(content_type: str | None, data: bytes | None = None, **extra: str) -> dict:
    attachment: dict = dict(extra)
    if content_type is not None:
        attachment["contentType"] = content_type
    if data is not None:
        attachment["data"] = _b64(data)
    return {"attachment": attachment}


def test_plain_text_is_decoded_in_its_declared_charset() -> None:
    utf8 = note_text([_attachment("text/plain; charset=utf-8", b"Pt seen, ECOG 1.")])
    assert (utf8.text, utf8.status) == ("Pt seen, ECOG 1.", "decoded")
    latin = note_text(
        [_attachment('text/plain; charset="ISO-8859-1"', "Ménière".encode("latin-1"))]
    )
    assert (latin.text, latin.status) == ("Ménière", "decoded")
    # No charset: UTF-8 (a byte-order mark is not part of the note).
    bare = note_text([_attachment("text/plain", b"\xef\xbb\xbfImpression: stable.")])
    assert (bare.text, bare.status) == ("Impression: stable.", "decoded")
    # Whitespace inside base64Binary is allowed by FHIR.
    wrapped = {"attachment": {"contentType": "text/plain", "data": "SGVs\nbG8="}}
    assert note_text([wrapped]).text == "Hello"


def test_the_plain_text_attachment_is_chosen_over_a_rendering() -> None:
    found = note_text(
        [
            _attachment("application/pdf", b"%PDF-1.7", title="rendered.pdf"),
            _attachment("text/plain", b"Assessment: progression.", title="note.txt"),
        ]
    )
    assert (found.content_type, found.title, found.text) == (
        "text/plain",
        "note.txt",
        "Assessment: progression.",
    )


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ([_attachment("application/pdf", b"%PDF-1.7")], "not_plain_text"),
        ([_attachment("text/html", b"<p>note</p>")], "not_plain_text"),
        ([_attachment("text/plain", url="https://ehr.example.org/Binary/1")], "not_inline"),
        ([], "no_attachment"),
        (None, "no_attachment"),
        ([{"attachment": {"title": "empty"}}], "no_attachment"),
        ([_attachment("text/plain; charset=utf-8", b"\xff\xfe\xfa")], "undecodable"),
        ([{"attachment": {"contentType": "text/plain", "data": "not*base64"}}], "undecodable"),
        ([_attachment("text/plain; charset=x-no-such-charset", b"abc")], "undecodable"),
    ],
)
def test_why_a_document_has_no_text(content: object, status: str) -> None:
    found = note_text(content)
    assert (found.text, found.status) == (None, status)


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Landed:
    if not BULK.is_dir():
        pytest.skip(f"the real FHIR bulk export is not here: {BULK} is absent")
    return land(EhrReader(), BULK, tmp_path_factory.mktemp("lakehouse"))


def test_a_synthea_bulk_export_lands_every_note_with_its_text(duck: Duck, bulk: Landed) -> None:
    bronze, _ = bulk
    documents = scan(bronze, "ehr_document_references")
    summary = duck.query(
        "select count(*), count(distinct id), count(distinct patient_ref), "
        "count(*) filter (where text_status = 'decoded' and length(text) > 0), "
        "count(encounter_ref), count(*) filter (where loinc_code in ('34117-2', '34111-5')), "
        f"count(*) filter (where status = 'current') from {documents}"
    )
    assert summary == [(1215, 1215, 13, 1215, 1215, 1215, 13)]
    # The text is the attachment's bytes decoded, exactly: compare one with the raw resource.
    [(text, raw)] = duck.query(
        f"select d.text, r.raw_json from {documents} as d "
        f"join {scan(bronze, 'ehr_resources')} as r using (_record_hash) "
        "order by d.id limit 1"
    )
    data = duck.query("select json_extract_string(?, '$.content[0].attachment.data')", raw)[0][0]
    assert text == base64.b64decode(data).decode("utf-8")
    # Every note names a Patient of the export, which carries its MRN for the notes models.
    unlinked = duck.query(
        f"select count(*) from {documents} as d "
        f"left join {scan(bronze, 'ehr_patients')} as p on d.patient_ref = p.id "
        "where p.mrn is null"
    )
    assert unlinked == [(0,)]
