"""Clinical notes: plain-text note files (with the export's manifest) and NDJSON note exports.

Bronze table ``notes``, one row per note, restricted: ``text`` is the raw note and carries PHI
(names, MRN, dates, phone numbers) exactly as the EHR wrote it; de-identification is silver's job.

Units of accounting (``records_read == records_landed + quarantined`` per file):

* a ``*.txt`` file is one note. Its metadata comes from the manifest that describes it
  (``python_ingest.notes_manifest``); a file no manifest row describes still lands, with its
  file name (without ``.txt``) as ``note_id`` and null metadata. Locator: the note_id (what an
  EHR calls the note). ``_record_hash`` is the sha256 of the file's bytes; ``text_sha256`` that of
  the decoded text (as UTF-8: they differ when a byte-order mark was dropped or the file was
  UTF-16) and is the content fingerprint silver de-duplicates on.
* ``manifest.csv`` lands nothing itself: its unit is the rows no text file accounts for
  (dangling, repeated or malformed rows), each quarantined with ``line N`` and the reason.
* ``*.ndjson`` / ``*.jsonl``: one note object per line (``text`` or ``note_text``/``body``/
  ``content``/``transcription``, plus the manifest's field names); locator ``line N``, hash of
  the line's bytes.
* any other ``*.csv``: a notes table, one note per row with the text in a column of those names
  (an EHR or research extract: MIMIC's ``TEXT`` with ``ROW_ID``, ``SUBJECT_ID``, ``CATEGORY``,
  ``CHARTDATE``, or ``CHARTTIME`` where it gives the time too; MTSamples' ``transcription``);
  locator ``line N`` (where the row starts), hash of the row's text. A CSV without such a
  column is quarantined whole, with its header.
* ``*.json``: an array of note objects (``item N``) or one note object (``document``), mapped
  like an NDJSON line.
* ``*.xml``: one note in the i2b2/n2c2 corpora's layout (``TEXT``, with its annotations kept as
  ``extra_fields``: ``python_ingest.notes_xml``), named by its file stem.
* a note object or row without an id of its own is named ``<file stem> line N``.

Text is UTF-8, or UTF-16/32 behind a byte-order mark (Windows "Unicode" text). A note whose body
is empty or whitespace-only (a failed export, an unsigned draft), or that is not such text (a
legacy code page cannot be told from the bytes), is quarantined with the reason.
``note_datetime`` is local wall-clock time: EHR note exports write it without an offset, so it is a
timestamp without time zone (Spark/Delta ``TIMESTAMP_NTZ``) parsed from ISO 8601 (or US
``M/D/YYYY h:mm``), and ``note_datetime_raw`` keeps the string as written (an offset, if one was
written, is kept only there). A date-time that does not parse leaves ``note_datetime`` null and
does not hold the note back: the raw string stays.
"""

# Paths are handled as strings here: per note, pathlib's object churn cost more than reading
# the note (profiled on 44,000-note exports).
# ruff: noqa: PTH100, PTH119, PTH122

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import orjson
import pyarrow as pa

from python_ingest.csv_util import csv_records, csv_text, unicode_text
from python_ingest.discovery import visible_files
from python_ingest.model import READER_LINEAGE, FileOutcome, Quarantined
from python_ingest.notes_manifest import (
    MANIFEST_NAME,
    Folders,
    canonical,
    file_stem,
    is_note_text,
    unclaimed_rows,
)
from python_ingest.notes_xml import read_xml_note
from python_ingest.source_bytes import read_source

NOTES = "notes"
NOTES_SCHEMA = pa.schema(
    [
        pa.field("note_id", pa.string()),
        pa.field("patient_mrn", pa.string()),
        pa.field("note_type", pa.string()),
        pa.field("loinc_document_code", pa.string()),
        pa.field("author", pa.string()),
        pa.field("note_datetime", pa.timestamp("us")),  # local wall clock, no zone
        pa.field("note_datetime_raw", pa.string()),
        pa.field("text", pa.string()),
        pa.field("char_count", pa.int64()),
        pa.field("text_sha256", pa.string()),
        pa.field("manifest_file", pa.string()),  # absolute path, as _source_file names files
        pa.field("manifest_line", pa.int64()),
        pa.field("extra_fields", pa.string()),  # other manifest columns / object fields, as JSON
        pa.field("source_format", pa.string(), nullable=False),  # text|ndjson|csv|json|xml
        *READER_LINEAGE,
    ]
)
_ROW = pa.struct(list(NOTES_SCHEMA))
_METADATA = ("patient_mrn", "note_type", "loinc_document_code", "author")
_TEXT_KEYS = ("text", "note_text", "body", "content", "transcription")
_US_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
_NDJSON_SUFFIXES = (".ndjson", ".jsonl")
_CSV_SUFFIX = ".csv"
_JSON_SUFFIX = ".json"
_XML_SUFFIX = ".xml"


def file_kind(path: Path | str) -> str | None:
    """``manifest``, ``text``, ``ndjson``, ``csv`` or None (not a notes file)."""
    if os.path.basename(path).lower() == MANIFEST_NAME:
        return "manifest"
    if is_note_text(path):
        return "text"
    if os.path.splitext(path)[1].lower() in _NDJSON_SUFFIXES:
        return "ndjson"
    if os.path.splitext(path)[1].lower() == _CSV_SUFFIX:
        return "csv"
    if os.path.splitext(path)[1].lower() == _JSON_SUFFIX:
        return "json"
    if os.path.splitext(path)[1].lower() == _XML_SUFFIX:
        return "xml"
    return None


class NotesReader:
    """Lands a folder of clinical notes; stateless (manifests are cached per process)."""

    modality = "notes"
    tables = (NOTES,)

    def discover(self, source: Path) -> list[Path]:
        """Note texts, manifests, NDJSON, CSV, JSON and XML exports under ``source``, skipping
        hidden folders."""
        return visible_files(source, lambda p: file_kind(p) is not None)

    def read(self, path: Path) -> FileOutcome:
        return self._read(os.path.abspath(path), Folders())

    def read_many(self, paths: list[Path]) -> list[FileOutcome]:
        """``read`` of each path, the text notes' rows built in one Arrow call and sliced.

        A text note is a one-row table, so building it costs more than reading the note; a
        pool task's notes share that call, and one view of their folders (``Folders``).
        """
        folders = Folders()
        out: list[FileOutcome | None] = []
        rows: list[tuple[int, dict]] = []  # (position in out, the note's row)
        for path in paths:
            key = os.path.abspath(path)  # the manifest index is keyed by absolute paths
            kind = file_kind(key)
            found = _text_record(key, folders) if kind == "text" else self._read(key, folders)
            if isinstance(found, dict):
                rows.append((len(out), found))
                found = None
            out.append(found)
        if rows:
            table = _landed([row for _, row in rows]).tables[NOTES]
            for k, (i, _) in enumerate(rows):
                out[i] = FileOutcome({NOTES: table.slice(k, 1)}, [], 1, 1)
        return [o for o in out if o is not None]

    def _read(self, path: str, folders: Folders) -> FileOutcome:
        kind = file_kind(path)
        if kind == "manifest":
            bad = unclaimed_rows(folders.index(path), folders)
            return FileOutcome(quarantined=bad, records_read=len(bad))
        if kind == "ndjson":
            return _read_ndjson(Path(path))
        if kind == "csv":
            return _read_csv(Path(path))
        if kind == "json":
            return _read_json(Path(path))
        if kind == "xml":
            return _read_xml(path)
        found = _text_record(path, folders)
        return found if isinstance(found, FileOutcome) else _landed([found])


def _text_record(path: str, folders: Folders) -> dict | FileOutcome:
    """One note file (absolute path) joined to the manifest row that describes it: its row, or
    the outcome that quarantines it."""
    data = read_source(path)
    manifest = folders.manifest_for(path)
    index = folders.index(manifest) if manifest is not None else None
    row = index.row_for(path) if index is not None and index.header_problem is None else None
    values = row.values if row is not None else {}
    note_id = values.get("note_id") or file_stem(path)
    problem, text = _decode(data)
    if problem is not None:
        return _rejected(note_id, problem, data)
    record = _record(values, text, note_id, data)
    if row is not None and index is not None:
        record["manifest_file"] = str(index.path)
        record["manifest_line"] = row.line
        record["extra_fields"] = _json_or_none(row.extra)
    record.update(source_format="text", _source_locator=note_id)
    return record


def _read_ndjson(path: Path) -> FileOutcome:
    """One note object per line; bad lines are quarantined, the others land."""
    found: list[tuple[str, object, bytes]] = []
    for number, line in enumerate(read_source(path).split(b"\n"), 1):
        line = line.removesuffix(b"\r")
        if not line.strip():
            continue
        locator = f"line {number}"
        try:
            found.append((locator, orjson.loads(line), line))
        except orjson.JSONDecodeError as exc:
            reason = f"the line is not valid JSON ({exc})"
            found.append((locator, Quarantined(locator, reason, line), line))
    return _note_objects(found, file_stem(str(path)), "ndjson", "line")


def _read_json(path: Path) -> FileOutcome:
    """A JSON array of note objects (``item N``) or one note object (``document``), mapped as
    NDJSON lines are; a JSON file that is neither is quarantined whole."""
    data = read_source(path)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _rejected("file", f"the file is not valid JSON ({exc})", data[:200])
    items = document if isinstance(document, list) else [document]
    found = [
        (
            f"item {i}" if isinstance(document, list) else "document",
            obj,
            orjson.dumps(obj, option=orjson.OPT_SORT_KEYS),
        )
        for i, obj in enumerate(items, 1)
    ]
    return _note_objects(found, file_stem(str(path)), "json", "item")


def _note_objects(
    found: list[tuple[str, object, bytes]], stem: str, source_format: str, noun: str
) -> FileOutcome:
    """(locator, parsed JSON or why it did not parse, raw) per record, as the file's outcome."""
    records: list[dict] = []
    bad: list[Quarantined] = []
    for locator, obj, raw in found:
        if isinstance(obj, Quarantined):
            bad.append(obj)
        elif not isinstance(obj, dict):
            bad.append(Quarantined(locator, f"the {noun} is JSON but not a note object", raw))
        else:
            note = _object_record(obj, f"{stem} {locator}", locator, raw, source_format)
            (bad if isinstance(note, Quarantined) else records).append(note)
    return _outcome(records, bad)


def _read_xml(path: str) -> FileOutcome:
    """One note in the i2b2/n2c2 XML layout (``python_ingest.notes_xml``), named by its file."""
    data = read_source(path)
    note_id = file_stem(path)
    found = read_xml_note(data)
    if isinstance(found, str):
        return _rejected(note_id, found, data[:200])
    if not found.text.strip():
        return _rejected(note_id, _EMPTY.format(n=len(found.text)), data)
    record = _record({}, found.text, note_id, data)
    record.update(
        extra_fields=_json_or_none(found.extra), source_format="xml", _source_locator=note_id
    )
    return _landed([record])


def _read_csv(path: Path) -> FileOutcome:
    """A notes table (one note per row, the text in a column: an EHR or research extract such
    as MIMIC's); a file without a text column is quarantined whole, with its header."""
    data = read_source(path)
    text, problem = csv_text(data)
    if text is None:
        return _rejected("file", str(problem), data[:200])
    records_in = csv_records(text)
    header = next(records_in, None)
    if header is None:
        return FileOutcome()  # an empty file holds no note
    names = [name.strip() for name in header[2]]
    if not any(name.lower() in _TEXT_KEYS for name in names):
        reason = (
            "a CSV without a note text column (" + ", ".join(_TEXT_KEYS) + "), so it holds no "
            "note; a notes manifest must be named manifest.csv. The header is "
            + ", ".join(names)[:300]
        )
        return _rejected("file", reason, None)
    records: list[dict] = []
    bad: list[Quarantined] = []
    stem = file_stem(str(path))
    for number, raw, fields in records_in:
        locator = f"line {number}"
        if len(fields) != len(names):
            reason = f"the row has {len(fields)} fields but the header has {len(names)}"
            bad.append(Quarantined(locator, reason, raw))
            continue
        obj = dict(zip(names, fields, strict=True))
        found = _object_record(obj, f"{stem} {locator}", locator, raw.encode("utf-8"), "csv")
        (bad if isinstance(found, Quarantined) else records).append(found)
    return _outcome(records, bad)


def _object_record(
    obj: dict, fallback_id: str, locator: str, raw: bytes, source_format: str
) -> dict | Quarantined:
    """A note object's row (its fields mapped like manifest columns), or why it cannot land.

    A note without an id of its own (an extract with no id column) is named after its place,
    ``<file stem> line N``, so that it still reaches the notes models, and a re-landed file
    replaces it.
    """
    values: dict[str, str] = {}
    sources: dict[str, str] = {}  # column -> the key its value came from
    extra: dict[str, object] = {}
    text: object = None
    for key, value in obj.items():
        column = canonical(key)
        if key.lower() in _TEXT_KEYS and text is None:
            text = value
        elif column is None or column == "file":
            extra[key] = value
        elif column not in values or _displaces(key, value, sources[column], values[column]):
            if column in values:
                extra[sources[column]] = values[column]
            values[column] = value if isinstance(value, str) else orjson.dumps(value).decode()
            sources[column] = key
        else:
            extra[key] = value
    if not isinstance(text, str):
        reason = "the note object has no text field" if text is None else "text is not a string"
        return Quarantined(locator, reason, raw)
    if not text.strip():
        return Quarantined(locator, _EMPTY.format(n=len(text)), raw)
    record = _record(values, text, values.get("note_id") or fallback_id, raw)
    record.update(extra_fields=_json_or_none(extra), source_format=source_format)
    record["_source_locator"] = locator
    return record


def _displaces(key: str, value: object, held_key: str, held: str) -> bool:
    """Whether ``key``'s value takes a column another key filled: an empty value gives way to a
    present one, and MIMIC's CHARTTIME (date and time) to its CHARTDATE (the day only)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return False
    return not held.strip() or (held_key.lower() == "chartdate" and key.lower() == "charttime")


def _outcome(records: list[dict], bad: list[Quarantined]) -> FileOutcome:
    outcome = _landed(records) if records else FileOutcome()
    outcome.quarantined = bad
    outcome.records_read = len(records) + len(bad)
    return outcome


_EMPTY = "note body is empty or whitespace-only ({n} characters)"


def _decode(data: bytes) -> tuple[str | None, str]:
    """(problem, text): Unicode text (``csv_util.unicode_text``), non-empty after whitespace."""
    text, problem = unicode_text(data, "the note")
    if text is None:
        return problem, ""
    if not text.strip():
        return _EMPTY.format(n=len(text)), text
    return None, text


def _record(values: dict[str, str], text: str, note_id: str | None, raw: bytes) -> dict:
    raw_when = values.get("note_datetime") or None
    record: dict[str, object] = {name: values.get(name) or None for name in _METADATA}
    record.update(
        note_id=note_id,
        note_datetime=_parse_datetime(raw_when),
        note_datetime_raw=raw_when,
        text=text,
        char_count=len(text),
        text_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        _record_hash=hashlib.sha256(raw).hexdigest(),
    )
    return record


def _parse_datetime(raw: str | None) -> dt.datetime | None:
    """The wall-clock time as written (an offset, if any, is dropped: it stays in the raw)."""
    if raw is None:
        return None
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=None)
    except ValueError:
        pass
    for fmt in _US_FORMATS:
        try:
            return dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
    return None


def _json_or_none(values: dict) -> str | None:
    return orjson.dumps(values).decode() if values else None


def _rejected(locator: str, reason: str, payload: bytes | None) -> FileOutcome:
    return FileOutcome(quarantined=[Quarantined(locator, reason, payload)], records_read=1)


def _landed(records: list[dict]) -> FileOutcome:
    # One struct conversion in C++: a text file is a one-row table, so per-call cost is all.
    rows = pa.array(records, _ROW)
    table = pa.Table.from_arrays(rows.flatten(), schema=NOTES_SCHEMA)
    return FileOutcome(
        tables={NOTES: table}, records_read=len(records), records_landed=len(records)
    )
