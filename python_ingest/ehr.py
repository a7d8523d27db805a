"""EHR reader: FHIR R4 JSON (bulk-export NDJSON, single resources, Bundles) into bronze.

What it lands, one row per FHIR resource in ``ehr_resources`` (type, id, patient, lastUpdated
and the resource exactly as received), plus flattened rows for the clinical types in
``ehr_patients``, ``ehr_encounters``, ``ehr_conditions``, ``ehr_observations``,
``ehr_medication_requests``, ``ehr_procedures`` and ``ehr_document_references`` (clinical notes
sent through FHIR, their plain text decoded: ``ehr_documents``; see ``ehr_schemas``/
``ehr_extract``).

Discovery (``discover``), whatever wrote the folder:

* ``*.ndjson`` / ``*.ndjson.gz``: FHIR Bulk Data files, one resource per line. Each line is a
  record (blank lines are not); locator ``line N Type/id``.
* ``*.json`` / ``*.json.gz`` holding a FHIR resource: one record, locator ``Type/id``; or a
  Bundle of any type (transaction, batch, collection, searchset, document ...): each
  ``entry.resource`` is a record, locator ``entry N Type/id`` (N counts from 1). The Bundle
  itself is an envelope and is not landed.
* skipped, on purpose: JSON without a top-level ``resourceType`` (the bulk-export
  ``manifest.json``, which has ``output`` instead; any other JSON such as a facts file),
  FHIR XML (``*.xml``: another serialization, not parsed by this reader), every other file,
  and hidden files and folders (``.*``). A ``*.json`` that is not valid JSON is *not* skipped:
  it may be a damaged FHIR file, so it is read and quarantined as a whole.

A record lands when it is JSON, a known FHIR resource type, passes ``ehr_validate`` and every
``Patient/x`` reference in it names a Patient of the same folder or one landed by an earlier run
(checked only when the folder carries Patients at all; ``ehr_refs``); otherwise it is
quarantined with the reason. ``raw_json`` and ``_record_hash`` use the record's own bytes: the
NDJSON line, the whole single-resource file, or a Bundle entry's ``resource`` value as it
stands in the file (re-serialized compactly only if that span cannot be located).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from python_ingest.ehr_extract import EXTRACTORS, timestamp
from python_ingest.ehr_refs import (
    BundleScope,
    PatientIndex,
    Resolver,
    patient_ids_in_json,
    patient_ids_in_ndjson,
    with_stand_in_id,
)
from python_ingest.ehr_schemas import PATIENTS, RESOURCES, TABLES, TableBuilder
from python_ingest.ehr_validate import TYPED_RESOURCES, check_resource
from python_ingest.job_split import line_range
from python_ingest.model import FileOutcome, Quarantined, record_hash
from python_ingest.source_bytes import read_source

NDJSON = (".ndjson", ".ndjson.gz")
JSON = (".json", ".json.gz")
BOM = b"\xef\xbb\xbf"
# Which resources get full R4B model validation: "typed" (the flattened types, the default),
# "all", or "rules" (none: only the spec rules every resource gets). Model validation costs ~40x
# a JSON parse and makes the EHR ingest ~3x slower end to end (see ehr_validate), but without it
# a malformed value the models use (a birthDate of 1950-13-45) would land as a silent null in
# the typed tables instead of being quarantined with a reason; an operator who accepts that for
# speed opts out with this variable.
VALIDATION_MODES = ("typed", "all", "rules")
DEFAULT_VALIDATION = "typed"
VALIDATION_ENV = "MMLAKE_EHR_VALIDATION"
# Best-effort type and id of a line that is not JSON (truncated, or a Python dict repr).
_SALVAGE_TYPE = re.compile(rb"""["']resourceType["']\s*:\s*["']([A-Za-z]+)["']""")
_SALVAGE_ID = re.compile(rb"""["']id["']\s*:\s*["']([A-Za-z0-9\-.]{1,64})["']""")
_ENTRY_RESOURCE = re.compile(r'"resource"\s*:\s*(?=\{)')


def _read_bytes(path: Path) -> bytes:
    data = read_source(path)
    if path.name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    return data[3:] if data.startswith(BOM) else data


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(NDJSON):
        return "ndjson"
    return "json" if name.endswith(JSON) else None


def _locator(where: str, rtype: Any, rid: Any) -> str:
    """``line 3 Observation/abc``; the parts that are unknown are left out."""
    what = ""
    if isinstance(rtype, str):
        what = f"{rtype}/{rid}" if isinstance(rid, str) else rtype
    return f"{where} {what}".strip() or "file"


def _salvage(raw: bytes) -> tuple[str | None, str | None]:
    """Type and id of a broken record, for its locator (a cut line usually keeps both)."""
    found = [
        m[1].decode() if (m := rx.search(raw)) else None for rx in (_SALVAGE_TYPE, _SALVAGE_ID)
    ]
    return found[0], found[1]


def _element(resource: dict[str, Any], reference: str) -> str:
    """``Observation.subject``: the top-level element holding ``reference`` (for the reason)."""
    rtype = resource.get("resourceType")
    for key, value in resource.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("reference") == reference:
                return f"{rtype}.{key}"
    return f"{rtype} (a nested element)"


def _json_problem(raw: bytes, exc: Exception) -> str:
    """Why a record is not JSON, with the likely cause when the parser's message shows it."""
    message = str(exc)
    hint = ""
    if "unexpected end of data" in message:
        hint = ": it stops mid-way, as a line cut off during the export does"
    elif raw.lstrip().startswith(b"{'"):
        hint = ": it is single-quoted, like a Python dict printed instead of JSON"
    return f"the record is not valid JSON ({message}){hint}"


class _File:
    """The outcome of one file being built: rows, quarantined records and the counts."""

    def __init__(self, resolver: Resolver, validation: str) -> None:
        self.resolver = resolver
        self.validation = validation
        self.rows = TableBuilder()
        self.quarantined: list[Quarantined] = []
        self.read = 0
        self.landed = 0

    def reject(self, locator: str, reason: str, payload: bytes | None = None) -> None:
        self.read += 1
        self.quarantined.append(Quarantined(locator, reason, payload))

    def record(self, where: str, raw: bytes, resource: Any = None) -> None:
        """Validate one resource and land it, or quarantine it with the reason."""
        if resource is None:
            try:
                resource = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                self.reject(_locator(where, *_salvage(raw)), _json_problem(raw, exc), raw)
                return
        rtype = resource.get("resourceType") if isinstance(resource, dict) else None
        rid = resource.get("id") if isinstance(resource, dict) else None
        locator = _locator(where, rtype, rid)
        mode = self.validation
        full = mode == "all" or (mode == "typed" and rtype in TYPED_RESOURCES)
        problem = check_resource(resource, full=full)
        patient = None
        if problem is None:
            patient, problem = self.resolver.patient_of(resource)
        if problem is None and (bad := self.resolver.unresolved_patients(raw)):
            named = ", ".join(f"{_element(resource, ref)} -> {ref}" for ref in bad)
            verb = "is not a Patient" if len(bad) == 1 else "are not Patients"
            problem = f"{named}, which {verb} in this export nor landed by an earlier run"
        typed = EXTRACTORS.get(rtype) if problem is None else None
        row: tuple[Any, ...] = ()
        if typed is not None:
            try:
                row = typed[1](resource, self.resolver)
            except Exception as exc:  # a shape the validation let through: keep the record safe
                problem = f"the {rtype} could not be flattened ({type(exc).__name__}: {exc})"
        if problem is not None:
            self.reject(locator, problem, raw)
            return
        digest = record_hash(raw)
        last_updated = timestamp((resource.get("meta") or {}).get("lastUpdated"))
        rid = rid if isinstance(rid, str) else None
        # raw_json stays bytes (UTF-8, checked by the parser): Arrow takes them ~30x faster
        # than Python str for a string column.
        self.rows.add(RESOURCES, (rtype, rid, patient, last_updated, raw, locator, digest))
        if typed is not None:
            head = (rid, patient) if typed[2] else ()
            self.rows.add(typed[0], (*head, *row, last_updated, locator, digest))
        self.read += 1
        self.landed += 1

    def outcome(self) -> FileOutcome:
        return FileOutcome(self.rows.tables(), self.quarantined, self.read, self.landed)


class EhrReader:
    """Reads FHIR R4 JSON files into the EHR bronze tables (see the module docstring)."""

    modality = "ehr"
    tables = TABLES

    def __init__(self, validation: str | None = None) -> None:
        validation = validation or os.environ.get(VALIDATION_ENV) or DEFAULT_VALIDATION
        if validation not in VALIDATION_MODES:
            raise ValueError(f"validation must be one of {VALIDATION_MODES}, not {validation!r}")
        self.validation = validation
        # folder -> its Patient ids; filled by discover() and shipped to workers with the reader.
        self.patients: dict[str, PatientIndex] = {}
        self.landed = PatientIndex()  # Patients landed by earlier runs (``use_landed``)

    def use_landed(self, values: Callable[[str, str], Iterable[str]]) -> None:
        """Take the Patient ids earlier runs landed: an incremental (``_since``) bulk export
        references Patients it does not carry because they did not change."""
        self.landed = PatientIndex(values(PATIENTS, "id"))

    def discover(self, source: Path) -> list[Path]:
        """FHIR files under ``source``, sorted; indexes each folder's Patient ids on the way."""
        candidates = [source] if source.is_file() else sorted(source.rglob("*"))
        files, ids = [], defaultdict(list)
        for path in candidates:
            hidden = any(p.startswith(".") for p in path.relative_to(source).parts)
            if hidden or not path.is_file() or (kind := _kind(path)) is None:
                continue
            found = _scan(path, kind)
            if found is not None:
                files.append(path)
                ids[str(path.resolve().parent)].extend(found)
        self.patients = {folder: PatientIndex(found) for folder, found in ids.items()}
        return files

    def read(self, path: Path) -> FileOutcome:
        with _no_cyclic_gc():
            return self._read(path)

    def splittable(self, path: Path) -> bool:
        """Plain NDJSON can be parsed in line ranges by several workers (``job_split``)."""
        return path.name.lower().endswith(".ndjson")

    def read_range(self, path: Path, start: int, stop: int) -> FileOutcome:
        """The lines of an NDJSON file starting in [start, stop), numbered as in the file."""
        first, data = line_range(path, start, stop)
        if first == 1 and data.startswith(BOM):
            data = data[len(BOM) :]
        with _no_cyclic_gc():
            return self._read_ndjson(data, self._index(path), first)

    def _index(self, path: Path) -> PatientIndex:
        folder = str(path.resolve().parent)
        if folder not in self.patients:  # read() without discover(): index this folder now
            found = [ids for p in sorted(path.parent.iterdir()) if (ids := _index_only(p))]
            self.patients[folder] = PatientIndex(i for ids in found for i in ids)
        return self.patients[folder]

    def _read(self, path: Path) -> FileOutcome:
        index = self._index(path)
        try:
            data = _read_bytes(path)
        except (OSError, EOFError, zlib.error) as exc:
            reason = f"the file could not be read or decompressed: {exc}"
            return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)
        if _kind(path) == "ndjson":
            return self._read_ndjson(data, index)
        return self._read_json(data, index)

    def _file(self, index: PatientIndex, scope: BundleScope | None = None) -> _File:
        """A file's outcome in the making, its references resolved against the export's
        Patients (``index``), its Bundle's entries and the Patients landed before."""
        return _File(Resolver(index, scope, self.landed), self.validation)

    def _read_ndjson(self, data: bytes, index: PatientIndex, first_line: int = 1) -> FileOutcome:
        state = self._file(index)
        for number, line in enumerate(data.split(b"\n"), start=first_line):
            line = line.removesuffix(b"\r")
            if line.strip():
                state.record(f"line {number}", line)
        return state.outcome()

    def _read_json(self, data: bytes, index: PatientIndex) -> FileOutcome:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            state = self._file(index)
            state.reject("file", f"the file is not valid JSON: {exc}", data)
            return state.outcome()
        if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
            state = self._file(index)
            state.record("", data, doc)
            return state.outcome()
        entries = doc.get("entry") if isinstance(doc.get("entry"), list) else []
        scope = BundleScope()
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                scope.add(entry.get("fullUrl"), entry["resource"])
        state = self._file(index, scope)
        spans = _entry_spans(data, entries)
        for number, entry in enumerate(entries, start=1):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                request = entry.get("request") if isinstance(entry, dict) else None
                what = f" (request {request.get('method')} {request.get('url')})" if request else ""
                raw = orjson.dumps(entry)
                reason = f"the Bundle entry has no resource{what}, so there is nothing to land"
                state.reject(f"entry {number}", reason, raw)
                continue
            raw = spans.get(number - 1) or orjson.dumps(resource)
            state.record(f"entry {number}", raw, with_stand_in_id(entry, resource))
        return state.outcome()


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Millions of short-lived dicts and row tuples with no cycles: the cyclic GC would only
    rescan them (20-30% of the time); it is back on when the file is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _entry_spans(data: bytes, entries: list[Any]) -> dict[int, bytes]:
    """Each entry's ``resource`` as the bytes it has in the file, by entry position.

    A ``"resource": {`` key past the end of the previous entry's resource starts the next one
    (keys inside a resource, like a nested Bundle's, fall within its span). Spans are only used
    when they line up one-to-one with the parsed entries, type and id included.
    """
    wanted = [
        i
        for i, e in enumerate(entries)
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    text = data.decode("utf-8")
    decoder, spans, end = json.JSONDecoder(), [], 0
    for match in _ENTRY_RESOURCE.finditer(text):
        if match.end() < end:
            continue
        try:
            value, end = decoder.raw_decode(text, match.end())
        except ValueError:
            return {}
        spans.append((value, match.end(), end))
    if len(spans) != len(wanted):
        return {}
    out = {}
    for i, (value, start, stop) in zip(wanted, spans, strict=True):
        parsed = entries[i]["resource"]
        if value.get("resourceType") != parsed.get("resourceType") or value.get("id") != parsed.get(
            "id"
        ):
            return {}
        out[i] = text[start:stop].encode("utf-8")
    return out


def _scan(path: Path, kind: str) -> list[str] | None:
    """Patient ids of a file to read, or None when discovery skips it (see the docstring)."""
    try:
        data = _read_bytes(path)
    except (OSError, EOFError, zlib.error):
        return []  # read() quarantines it with the reason
    if kind == "ndjson":
        return patient_ids_in_ndjson(data)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []  # maybe a damaged FHIR file: read() quarantines it
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        return None  # a bulk-export manifest.json (has "output") or other non-FHIR JSON
    return patient_ids_in_json(doc)


def _index_only(path: Path) -> list[str]:
    kind = _kind(path) if path.is_file() and not path.name.startswith(".") else None
    return (_scan(path, kind) or []) if kind else []
