"""Arrow schemas of the EHR bronze tables, and the column-wise builder that fills them.

Every table ends with the reader's lineage (``_source_locator``, ``_record_hash``); a typed row
carries the same two values as its ``ehr_resources`` row, which is how silver joins a flattened
column back to the resource exactly as received. Types are ones Spark/Databricks read too:
string, int32/int64, double, boolean, timestamp[us, UTC], date32, list and struct.

Time columns follow one rule: a FHIR dateTime with a time becomes a UTC timestamp; a date-only
value becomes midnight UTC of that date; a year or year-month value stays null there (the
``raw_json`` keeps it). Where the calendar day is the clinical fact (onset, birth, effective
day) a ``*_date`` column holds the date exactly as written, before any time-zone shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from python_ingest.model import READER_LINEAGE

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()

RESOURCES = "ehr_resources"
PATIENTS = "ehr_patients"
ENCOUNTERS = "ehr_encounters"
CONDITIONS = "ehr_conditions"
OBSERVATIONS = "ehr_observations"
MEDICATION_REQUESTS = "ehr_medication_requests"
PROCEDURES = "ehr_procedures"
DOCUMENT_REFERENCES = "ehr_document_references"

IDENTIFIER = pa.struct([("system", STR), ("value", STR), ("type_code", STR)])  # ACSN, MR ...
COMPONENT = pa.struct(
    [
        ("code_system", STR),
        ("code", STR),
        ("code_display", STR),
        ("value_quantity", pa.float64()),
        ("value_unit", STR),
        ("value_code", STR),
        ("value_code_display", STR),
        ("value_string", STR),
    ]
)


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in fields] + list(READER_LINEAGE))


# Resource identity shared by the typed tables (Patient has no patient_ref/encounter_ref).
_HEAD = (("id", STR), ("patient_ref", STR))
_LAST = (("last_updated", TS),)

SCHEMAS: dict[str, pa.Schema] = {
    RESOURCES: pa.schema(
        [
            pa.field("resource_type", STR, nullable=False),
            pa.field("id", STR),
            pa.field("patient_ref", STR),
            pa.field("last_updated", TS),
            pa.field("raw_json", STR, nullable=False),
            *READER_LINEAGE,
        ]
    ),
    PATIENTS: _schema(
        ("id", STR),
        ("mrn", STR),
        ("mrn_system", STR),
        ("family", STR),
        ("given", STR),
        ("gender", STR),
        ("birth_date", pa.date32()),
        ("birth_year", pa.int32()),
        ("deceased", pa.bool_()),
        ("deceased_at", TS),
        ("phone", STR),
        ("address_line", STR),
        ("city", STR),
        ("state", STR),
        ("postal_code", STR),
        ("country", STR),
        ("race", STR),
        ("ethnicity", STR),
        *_LAST,
    ),
    ENCOUNTERS: _schema(
        *_HEAD,
        ("status", STR),
        ("class_system", STR),
        ("class_code", STR),
        ("class_display", STR),
        ("type_system", STR),
        ("type_code", STR),
        ("type_display", STR),
        ("type_text", STR),
        ("reason_code", STR),
        ("reason_display", STR),
        ("period_start", TS),
        ("period_end", TS),
        ("service_provider", STR),
        *_LAST,
    ),
    CONDITIONS: _schema(
        *_HEAD,
        ("encounter_ref", STR),
        ("clinical_status", STR),
        ("verification_status", STR),
        ("category", STR),
        ("code_system", STR),
        ("code", STR),
        ("code_display", STR),
        ("code_text", STR),
        ("icd10cm_code", STR),
        ("icd10cm_display", STR),
        ("snomed_code", STR),
        ("snomed_display", STR),
        ("onset_at", TS),
        ("onset_date", pa.date32()),
        ("abatement_at", TS),
        ("recorded_at", TS),
        ("stage_summary_text", STR),
        ("stage_summary_system", STR),
        ("stage_summary_code", STR),
        ("stage_type_code", STR),
        *_LAST,
    ),
    OBSERVATIONS: _schema(
        *_HEAD,
        ("encounter_ref", STR),
        ("status", STR),
        ("category", STR),
        ("code_system", STR),
        ("code", STR),
        ("code_display", STR),
        ("code_text", STR),
        ("loinc_code", STR),
        ("loinc_display", STR),
        ("value_type", STR),
        ("value_quantity", pa.float64()),
        ("value_comparator", STR),
        ("value_unit", STR),
        ("value_unit_code", STR),
        ("value_code", STR),
        ("value_code_system", STR),
        ("value_code_display", STR),
        ("value_string", STR),
        ("value_integer", pa.int64()),
        ("value_boolean", pa.bool_()),
        ("interpretation", STR),
        ("reference_low", pa.float64()),
        ("reference_high", pa.float64()),
        ("effective_at", TS),
        ("effective_date", pa.date32()),
        ("issued", TS),
        ("focus_ref", STR),
        ("components", pa.list_(COMPONENT)),
        *_LAST,
    ),
    MEDICATION_REQUESTS: _schema(
        *_HEAD,
        ("encounter_ref", STR),
        ("status", STR),
        ("intent", STR),
        ("rxnorm_code", STR),
        ("rxnorm_display", STR),
        ("medication_text", STR),
        ("medication_ref", STR),
        ("authored_on", TS),
        ("dosage_text", STR),
        ("status_reason", STR),
        ("reason_code", STR),
        ("reason_text", STR),
        ("reason_ref", STR),
        ("prior_prescription_ref", STR),
        *_LAST,
    ),
    PROCEDURES: _schema(
        *_HEAD,
        ("encounter_ref", STR),
        ("status", STR),
        ("code_system", STR),
        ("code", STR),
        ("code_display", STR),
        ("code_text", STR),
        ("performed_at", TS),
        ("performed_end", TS),
        ("body_site", STR),
        ("reason_code", STR),
        ("reason_ref", STR),
        ("identifiers", pa.list_(IDENTIFIER)),
        *_LAST,
    ),
    DOCUMENT_REFERENCES: _schema(
        *_HEAD,
        ("encounter_ref", STR),
        ("status", STR),
        ("doc_status", STR),
        ("type_system", STR),
        ("type_code", STR),
        ("type_display", STR),
        ("type_text", STR),
        ("loinc_code", STR),
        ("loinc_display", STR),
        ("category", STR),
        ("document_date", TS),
        ("period_start", TS),
        ("period_end", TS),
        ("author_ref", STR),
        ("author_display", STR),
        ("content_type", STR),
        ("attachment_url", STR),
        ("attachment_title", STR),
        ("text", STR),
        ("text_status", STR),
        *_LAST,
    ),
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)  # ehr_resources first: the primary table


class TableBuilder:
    """Rows (tuples in schema order, lineage last) collected per table, turned into columns once.

    Building each Arrow column from one Python list is what keeps a file of 100k resources at
    a few Arrow calls per column instead of one per row.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list[Sequence[Any]]] = {name: [] for name in TABLES}

    def add(self, table: str, row: Sequence[Any]) -> None:
        self.rows[table].append(row)

    def tables(self) -> dict[str, pa.Table]:
        out = {}
        for name, rows in self.rows.items():
            if not rows:
                continue
            schema = SCHEMAS[name]
            columns = list(zip(*rows, strict=True))
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
            out[name] = pa.Table.from_arrays(arrays, schema=schema)
        return out
