"""``genomics_samples``: the specimens a lab's sample manifest lists, and every VCF sample column.

A VCF names its samples by lab specimen id only; the lab's manifest (CSV or TSV, one row per
specimen) is what links a specimen to a patient MRN. Both land here, one row per specimen and
source: ``source_kind`` is ``manifest`` for a manifest row and ``vcf`` for a sample column of a
VCF header. A VCF sample that no manifest lists (another client's specimen on the flow cell,
or a lab that sends no manifest at all) still lands, as do its genotypes: that is a linkage
question for silver (``vcf`` rows without a ``manifest`` row), not a malformed record, so it is
never quarantined.

Every manifest column is kept as text in ``fields`` (header name -> value, as written); the
columns whose meaning is obvious are also typed (dates as ISO dates, purity as a fraction). A
value that does not parse leaves its typed column null and keeps its text in ``fields``. A row
is quarantined when its number of fields differs from the header's or it has no specimen id.

An Illumina sample sheet (``SampleSheet.csv``, v1 or v2) is a manifest too: its ``[Data]``
(``[BCLConvert_Data]``) rows are the specimens, located by their line in the file, and the run's
name and date from ``[Header]`` fill ``sequencing_run`` and ``run_date`` where a row has none.
Its rows are ``source_kind`` ``sample_sheet``: a sheet says what was loaded on the sequencer,
not whose specimen it is, so it never stands in for the manifest that links specimen to MRN.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import pyarrow as pa

from python_ingest.model import READER_LINEAGE, FileOutcome, Quarantined, record_hash
from python_ingest.source_bytes import read_source

SAMPLES_TABLE = "genomics_samples"

SAMPLES_SCHEMA = (
    pa.schema(
        [
            pa.field("sample_id", pa.string()),
            pa.field("source_kind", pa.string()),  # manifest|sample_sheet|vcf|bgen|plink
            pa.field("sample_column", pa.int32()),  # 1-based sample column of a VCF (vcf rows)
            pa.field("patient_mrn", pa.string()),
            pa.field("specimen_type", pa.string()),
            pa.field("tumour_purity", pa.float64()),
            pa.field("collection_date", pa.date32()),
            pa.field("received_date", pa.date32()),
            pa.field("sequencing_run", pa.string()),
            pa.field("run_date", pa.date32()),
            pa.field("panel", pa.string()),
            pa.field("lab_name", pa.string()),
            pa.field("fields", pa.map_(pa.string(), pa.string())),
        ]
    )
    .append(READER_LINEAGE.field(0))
    .append(READER_LINEAGE.field(1))
)

# Typed column -> manifest header names that mean it (compared lower-case, '_' for ' ' / '-').
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sample_id": ("specimen_id", "sample_id", "specimen", "sample", "sampleid", "specimenid"),
    "patient_mrn": ("patient_mrn", "mrn", "patient_id", "medical_record_number"),
    "specimen_type": ("specimen_type", "sample_type", "tissue"),
    "tumour_purity": ("tumour_purity", "tumor_purity", "purity", "tumour_fraction"),
    "collection_date": ("collection_date", "collected", "collected_date"),
    "received_date": ("received_date", "received", "receipt_date"),
    "sequencing_run": ("sequencing_run", "run_id", "run"),
    "run_date": ("run_date", "sequencing_date"),
    "panel": ("panel", "assay"),
    "lab_name": ("lab_name", "laboratory", "lab"),
}
_DATES = {"collection_date", "received_date", "run_date"}


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _typed(column: str, text: str) -> object:
    text = text.strip()
    if not text:
        return None
    if column in _DATES:
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return None
    if column == "tumour_purity":
        try:
            return float(text)
        except ValueError:
            return None
    return text


def vcf_samples(samples: list[str], meta: dict[str, str]) -> pa.Table:
    """One row per sample column of a VCF header (run id from ``##sequencing_run`` if given)."""
    n = len(samples)
    rows = {name: [None] * n for name in SAMPLES_SCHEMA.names}
    rows["sample_id"] = samples
    rows["source_kind"] = ["vcf"] * n
    rows["sample_column"] = list(range(1, n + 1))
    rows["sequencing_run"] = [meta.get("sequencing_run")] * n
    rows["_source_locator"] = [f"sample {s}" for s in samples]
    rows["_record_hash"] = [record_hash(s) for s in samples]
    return pa.Table.from_pydict(rows, schema=SAMPLES_SCHEMA)


def read_manifest(path: Path) -> FileOutcome:
    """Land one manifest file: one ``genomics_samples`` row per specimen row."""
    text = read_source(path).decode("utf-8-sig", errors="replace")
    sheet = sample_sheet(text)
    if isinstance(sheet, str):
        return FileOutcome(quarantined=[Quarantined("file", sheet)], records_read=1)
    offset, run, kind = 0, {}, "manifest"
    if sheet is not None:
        (text, offset, run), kind = sheet, "sample_sheet"
    physical = text.splitlines(keepends=True)
    first = physical[0] if physical else ""
    delimiter = (
        "\t" if path.suffix.lower() == ".tsv" or first.count("\t") > first.count(",") else ","
    )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    outcome = FileOutcome()
    if not header:
        outcome.quarantined.append(Quarantined("file", "the manifest is empty: no header row"))
        outcome.records_read = 1
        return outcome
    names = [_norm(h) for h in header]
    index = {
        column: next((names.index(s) for s in synonyms if s in names), None)
        for column, synonyms in _SYNONYMS.items()
    }
    if index["sample_id"] is None:
        wanted = ", ".join(_SYNONYMS["sample_id"])
        reason = (
            f"the manifest has no specimen id column (looked for {wanted}; "
            f"its columns are {', '.join(header)})"
        )
        outcome.quarantined.append(Quarantined("file", reason, first))
        outcome.records_read = 1
        return outcome
    rows: dict[str, list[object]] = {name: [] for name in SAMPLES_SCHEMA.names}
    previous = reader.line_num
    for record in reader:
        raw = "".join(physical[previous : reader.line_num])
        line = previous + 1 + offset
        previous = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # a blank line is no specimen
        outcome.records_read += 1
        if len(record) != len(header):
            reason = f"the row has {len(record)} fields where the header has {len(header)}"
            outcome.quarantined.append(Quarantined(f"line {line}", reason, raw))
            continue
        sample = record[index["sample_id"]].strip()
        if not sample:
            outcome.quarantined.append(
                Quarantined(f"line {line}", "the row has no specimen id", raw)
            )
            continue
        for column, i in index.items():
            value = None if i is None else _typed(column, record[i])
            rows[column].append(run.get(column) if value is None else value)
        rows["sample_id"][-1] = sample
        rows["source_kind"].append(kind)
        rows["sample_column"].append(None)
        rows["fields"].append(list(zip(header, record, strict=True)))
        rows["_source_locator"].append(f"line {line}")
        rows["_record_hash"].append(record_hash(raw.rstrip("\r\n")))
    table = pa.Table.from_pydict(rows, schema=SAMPLES_SCHEMA)
    outcome.tables[SAMPLES_TABLE] = table
    outcome.records_landed = table.num_rows
    return outcome


# Sections of an Illumina sample sheet (v1 and v2) that list the samples of the run.
_DATA_SECTIONS = ("data", "bclconvert_data")
_SECTION = re.compile(r"^\[([A-Za-z0-9_ ]+)\]$")
_SHEET_DATES = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y")


def sample_sheet(text: str) -> tuple[str, int, dict[str, object]] | str | None:
    """An Illumina sample sheet's sample rows: (the ``[Data]`` section's text, the lines before
    it, the run's own name and date from ``[Header]``); a reason when a sample sheet has no
    sample section; None for a plain manifest.

    Sequencers and their labs send this file (``SampleSheet.csv``: ``[Header]``, ``[Reads]``,
    ``[Settings]``, then ``[Data]``, or ``[BCLConvert_Data]`` in v2) as the run's manifest.
    Lines exported from a spreadsheet carry trailing commas (``[Header],,,,``).
    """
    lines = text.splitlines(keepends=True)
    sections = [
        (i, match.group(1).strip().lower())
        for i, line in enumerate(lines)
        if (match := _SECTION.match(line.strip().rstrip(",").strip()))
    ]
    if not sections or sections[0][0] != _first_content(lines):
        return None
    found = next(((i, name) for i, name in sections if name in _DATA_SECTIONS), None)
    if found is None:
        named = ", ".join(f"[{name}]" for _, name in sections)
        return f"an Illumina sample sheet with no [Data] or [BCLConvert_Data] section ({named})"
    start = found[0] + 1
    end = next((i for i, _ in sections if i > found[0]), len(lines))
    header: dict[str, str] = {}
    head_at = next((i for i, name in sections if name == "header"), None)
    if head_at is not None:
        stop = next((i for i, _ in sections if i > head_at), len(lines))
        for fields in csv.reader(lines[head_at + 1 : stop]):
            if len(fields) >= 2 and fields[0].strip():
                header[_norm(fields[0])] = fields[1].strip()
    run: dict[str, object] = {}
    name = header.get("experiment_name") or header.get("runname") or header.get("run_name")
    if name:
        run["sequencing_run"] = name
    when = header.get("date", "")
    for fmt in _SHEET_DATES:
        try:
            run["run_date"] = dt.datetime.strptime(when, fmt).date()
            break
        except ValueError:
            continue
    return "".join(lines[start:end]), start, run


def _first_content(lines: list[str]) -> int:
    return next((i for i, line in enumerate(lines) if line.strip().strip(",")), -1)
