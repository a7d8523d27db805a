"""The note manifest of an EHR notes export, and which manifest row describes which text file.

An export is a folder of ``*.txt`` notes plus ``manifest.csv`` (note_id, patient_mrn, note_type,
loinc_document_code, author, note_datetime, file relative to the manifest's folder). A text file
takes its metadata from the ``manifest.csv`` in its own folder, else in its parent folder (the
generator's ``notes/manifest.csv`` + ``notes/text/<id>.txt``): the row whose ``file`` is that
text file, else (rows without a ``file``) the row whose ``note_id`` is the file's stem.

Every manifest row is accounted for exactly once: a row that describes a text file is accounted
with that file (it lands, or is quarantined, as the note); every other row (its file is missing,
is not a ``.txt`` note, lies where no text file would look for this manifest, repeats a file an
earlier row describes, or the row is malformed) is quarantined by the manifest's own unit, which
lands nothing. The index is built once per manifest version per process (the reader stays
stateless and picklable; each worker of the job reads the manifest once).
"""

# Paths are handled as strings here: per note, pathlib's object churn cost more than reading
# the note (profiled on 44,000-note exports).
# ruff: noqa: PTH100, PTH113, PTH118, PTH119, PTH120, PTH122

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from python_ingest.csv_util import csv_records, unicode_text
from python_ingest.model import Quarantined

MANIFEST_NAME = "manifest.csv"
COLUMNS = (
    "note_id",
    "patient_mrn",
    "note_type",
    "loinc_document_code",
    "author",
    "note_datetime",
    "file",
)
# Header spellings seen in EHR note extracts, compared lower-case without punctuation.
_ALIASES = {
    "noteid": "note_id",
    "documentid": "note_id",
    "rowid": "note_id",  # MIMIC-III NOTEEVENTS
    "patientmrn": "patient_mrn",
    "mrn": "patient_mrn",
    "patientid": "patient_mrn",
    "subjectid": "patient_mrn",  # MIMIC: the patient's identifier in the source
    "notetype": "note_type",
    "documenttype": "note_type",
    "category": "note_type",
    "loincdocumentcode": "loinc_document_code",
    "loinccode": "loinc_document_code",
    "loinc": "loinc_document_code",
    "author": "author",
    "authorname": "author",
    "notedatetime": "note_datetime",
    "notedate": "note_datetime",
    "datetime": "note_datetime",
    "charttime": "note_datetime",
    "chartdate": "note_datetime",
    "file": "file",
    "filename": "file",
    "filepath": "file",
    "path": "file",
}


def canonical(name: str) -> str | None:
    """The manifest column a header names, or None for a column we carry as extra."""
    return _ALIASES.get(re.sub(r"[^a-z0-9]", "", name.lower()))


def is_note_text(path: Path | str) -> bool:
    return os.path.splitext(path)[1].lower() == ".txt"


class Folders:
    """Which files exist, asked of the disk once per folder.

    An export is tens of thousands of notes in a few folders. Asking the disk about each note
    and each candidate manifest (two or three ``stat`` calls per note, through ``pathlib``)
    cost more than reading the notes. Here each folder is asked once whether it holds a
    manifest, and a folder whose files are checked one by one (a manifest's rows) is listed
    once. A ``Folders`` lives for one read (one pool task), so no answer is older than that.
    """

    def __init__(self) -> None:
        self._files: dict[str, frozenset[str]] = {}
        self._manifests: dict[str, str | None] = {}  # by the text's folder
        self._indexes: dict[str, ManifestIndex] = {}

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a regular file (or a link to one), from its folder's listing."""
        folder, name = os.path.split(path)
        found = self._files.get(folder)
        if found is None:
            try:
                with os.scandir(folder) as entries:
                    found = frozenset(e.name for e in entries if e.is_file())
            except OSError:
                found = frozenset()
            self._files[folder] = found
        return name in found

    def manifest_for(self, text: str) -> str | None:
        """The manifest that describes ``text`` (absolute): in its folder, else in the parent."""
        folder = os.path.dirname(text)
        if folder not in self._manifests:
            found = None
            for candidate in (folder, os.path.dirname(folder)):
                if os.path.isfile(os.path.join(candidate, MANIFEST_NAME)):
                    found = os.path.join(candidate, MANIFEST_NAME)
                    break
            self._manifests[folder] = found
        return self._manifests[folder]

    def index(self, manifest: str) -> ManifestIndex:
        """``load_index`` once per manifest for the life of this view."""
        found = self._indexes.get(manifest)
        if found is None:
            found = self._indexes[manifest] = load_index(Path(manifest))
        return found


@dataclass(frozen=True)
class ManifestRow:
    line: int
    raw: str
    values: dict[str, str]  # canonical column -> value ("" when empty)
    extra: dict[str, str]  # other columns, as written


@dataclass
class ManifestIndex:
    path: Path
    header_problem: str | None = None
    rows: list[ManifestRow] = field(default_factory=list)
    malformed: list[Quarantined] = field(default_factory=list)
    by_path: dict[str, ManifestRow] = field(default_factory=dict)  # absolute text file
    by_id: dict[str, ManifestRow] = field(default_factory=dict)

    def row_for(self, text: Path | str) -> ManifestRow | None:
        """The row describing ``text`` (absolute; by file, else by note_id among rows without
        a file)."""
        text = os.fspath(text)
        row = self.by_path.get(text)
        return row if row is not None else self.by_id.get(file_stem(text))

    def target(self, row: ManifestRow) -> str | None:
        """The absolute, normalized path the row's ``file`` names (relative to the manifest's
        folder; Windows separators accepted), or None when the row names no file."""
        name = row.values.get("file", "").replace("\\", "/")
        return os.path.normpath(os.path.join(os.path.dirname(self.path), name)) if name else None


def file_stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


_CACHE: dict[Path, tuple[tuple[int, int], ManifestIndex]] = {}


def load_index(manifest: Path) -> ManifestIndex:
    """The index of ``manifest`` (absolute), re-read only when it changed (size or mtime)."""
    stat = manifest.stat()
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _CACHE.get(manifest)
    if cached is not None and cached[0] == version:
        return cached[1]
    index = _build_index(manifest)
    _CACHE[manifest] = (version, index)
    return index


def _build_index(manifest: Path) -> ManifestIndex:
    index = ManifestIndex(manifest)
    text, problem = unicode_text(manifest.read_bytes(), "the manifest")
    if text is None:
        index.header_problem = problem
        return index
    records = csv_records(text)
    first = next(records, None)
    if first is None:
        return index
    header = [name.strip() for name in first[2]]
    names = [canonical(name) for name in header]
    if "note_id" not in names and "file" not in names:
        index.header_problem = (
            "not a notes manifest: the header has neither a note_id nor a file column "
            f"({', '.join(header)[:200]})"
        )
        return index
    for line, raw, fields in records:
        if len(fields) != len(header):
            reason = f"the row has {len(fields)} fields but the header has {len(header)}"
            index.malformed.append(Quarantined(f"line {line}", reason, raw))
            continue
        values: dict[str, str] = {}
        extra: dict[str, str] = {}
        for name, column, value in zip(header, names, fields, strict=True):
            if column is None:
                extra[name] = value
            else:
                values.setdefault(column, value.strip())
        row = ManifestRow(line, raw, values, extra)
        index.rows.append(row)
        target = index.target(row)
        if target is not None:
            index.by_path.setdefault(target, row)
        elif values.get("note_id"):
            index.by_id.setdefault(values["note_id"], row)
    return index


def unclaimed_rows(index: ManifestIndex, folders: Folders) -> list[Quarantined]:
    """The manifest's rows that no text file accounts for, each with the reason."""
    if index.header_problem is not None:
        return [Quarantined("file", index.header_problem)]
    bad = list(index.malformed)
    for row in index.rows:
        locator, target = f"line {row.line}", index.target(row)
        note_id = row.values.get("note_id", "")
        if target is not None:
            reason = _file_problem(index, row, target, folders)
        elif not note_id:
            reason = "the row names neither a note_id nor a file"
        elif index.by_id.get(note_id) is not row:
            reason = f"note_id {note_id} repeats line {index.by_id[note_id].line}"
        else:
            reason = _id_problem(index, note_id, folders)
        if reason is not None:
            bad.append(Quarantined(locator, reason, row.raw))
    bad.sort(key=lambda q: int(q.locator.split()[1]) if q.locator != "file" else 0)
    return bad


def _file_problem(
    index: ManifestIndex, row: ManifestRow, target: str, folders: Folders
) -> str | None:
    name = row.values["file"]
    first = index.by_path[target]
    if first is not row:
        return f"file {name!r} is already described by line {first.line}"
    if not folders.is_file(target):
        return f"file {name!r} does not exist: the note's text is missing from the export"
    if not is_note_text(target):
        return f"file {name!r} is not a .txt note, so no note lands for this row"
    if folders.manifest_for(target) != os.fspath(index.path):
        return (
            f"file {name!r} is not in this manifest's folder or a folder below it, so its "
            "note lands without this row's metadata"
        )
    return None


def _id_problem(index: ManifestIndex, note_id: str, folders: Folders) -> str | None:
    folder = index.path.parent
    pattern = f"*/{glob.escape(note_id)}.txt"
    for found in (folder / f"{note_id}.txt", *folder.glob(pattern)):
        candidate = os.path.abspath(found)
        if folders.is_file(candidate) and folders.manifest_for(candidate) == os.fspath(index.path):
            if index.row_for(candidate) is index.by_id.get(note_id):
                return None
            described = index.by_path[candidate].line
            return f"note_id {note_id}'s text file is described by line {described}"
    return f"no text file {note_id}.txt beside the manifest or one folder below it"
