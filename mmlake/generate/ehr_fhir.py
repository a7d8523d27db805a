"""The EHR as a FHIR R4 Bulk Data export: ``DIR/ehr/<Type>.<nnn>.ndjson`` plus ``manifest.json``.

Each patient's first year is charted as an oncology EHR holds it: biopsy, diagnosis visit
(cancer Condition with stage, labs, ECOG, vitals), imaging, surgery or radiotherapy,
systemic therapy orders, infusion visits, and restaging follow-ups whose mCODE disease-status
Observations (LOINC 97509-4) carry the outcome: label == some status "worsened" (SNOMED
271299001) dated within 365 days of the cancer Condition's onsetDateTime. Imaging visits are the
DICOM studies themselves (``imaging_dicom.plan_studies``: same date, accession number and Study
Instance UID), charted as a Procedure and an ImagingStudy (``ehr_fhir_imaging``).

The EHR observes stage, LDH/albumin (tumour burden ``b``, nutrition ``n``), ECOG (frailty ``f``)
and targeted therapy; those values are logged as features exactly as written. A few leaf records
are made invalid on purpose (``ehr_fhir_resources.damage``), never one that a feature, the label
or a reference needs.

The chart is laid out by ``ehr_fhir_chart.Chart``; this module writes it as the bulk export.
"""

from __future__ import annotations

import datetime as dt
import re

import orjson

from mmlake.generate import ehr_fhir_research as research
from mmlake.generate import ehr_fhir_resources as fhir
from mmlake.generate.cohort import PatientRecord, new_uuid, stream_rng
from mmlake.generate.ehr_fhir_chart import Chart
from mmlake.generate.imaging_dicom import plan_studies
from mmlake.generate.truth import GenerationContext

RESOURCE_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "Procedure",
    "ImagingStudy",
    "Consent",
    "ResearchSubject",
    "ResearchStudy",
)
DEFAULT_RESOURCES_PER_FILE = 100_000
EXPORT_EPOCH = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)  # after the last possible follow-up
# Every reference inside a serialized resource (subject, encounter, focus, priorPrescription …).
_REFERENCE = re.compile(rb'"reference":"([^"]+)"')


class EhrWriter:
    """Streams every patient's chart into per-type NDJSON files; writes the manifest on close.

    Memory is one patient's chart (a few dozen resources) plus one open file per type.
    """

    modality = "ehr"

    def __init__(
        self, ctx: GenerationContext, *, resources_per_file: int = DEFAULT_RESOURCES_PER_FILE
    ) -> None:
        if resources_per_file < 1:
            raise ValueError("resources_per_file must be at least 1")
        self.ctx = ctx
        self.directory = ctx.out_dir / "ehr"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._sinks = {
            t: fhir.NdjsonSink(self.directory, t, resources_per_file) for t in RESOURCE_TYPES
        }
        self._counts = {"patients": 0, "records": 0, "dirty": 0}

    def add(self, patient: PatientRecord) -> None:
        if not patient.has(self.modality):
            return
        # The imaging writer's own plan, so dates, accessions and UIDs match the DICOM files.
        studies = plan_studies(self.ctx.seed, patient, self.ctx.image_size)
        chart = Chart(patient, self.ctx.seed, studies)
        chart.build()
        lines = [orjson.dumps(entry.resource) for entry in chart.entries]
        referenced = set(_REFERENCE.findall(b"\n".join(lines)))
        # A private stream for corruption: clinical content never depends on the dirty rate.
        rng = stream_rng(self.ctx.seed, patient.index, "ehr:dirty")
        for entry, line in zip(chart.entries, lines, strict=True):
            res = entry.resource
            key = f"{res['resourceType']}/{res['id']}"
            damage = None
            # Only leaves may be damaged: nothing references them and no feature or label
            # depends on them, so every other record stays valid and resolvable.
            if not entry.protected and key.encode() not in referenced:
                hit = self.ctx.corrupt(rng)
                u_kind, u_detail = rng.random(2)  # drawn always: the stream is rate-independent
                if hit:
                    purpose = f"ehr:dangling:{res['id']}"
                    dangling = new_uuid(stream_rng(self.ctx.seed, patient.index, purpose))
                    damage = fhir.damage(res, float(u_kind), float(u_detail), dangling)
            path, number = self._sinks[res["resourceType"]].write(damage[0] if damage else line)
            self._counts["records"] += 1
            if damage:
                self._counts["dirty"] += 1
                file, locator = self.ctx.relative(path), f"line {number} {key}"
                self.ctx.truth.dirty(self.modality, damage[1], file, locator, damage[2])
        # Research consent and enrolment: never damaged (the governance row filters use them).
        for res in research.research_resources(self.ctx.seed, patient):
            self._sinks[res["resourceType"]].write(orjson.dumps(res))
            self._counts["records"] += 1
        for name, value in chart.features.items():
            self.ctx.truth.feature(patient.patient_id, self.modality, name, value)
        self._counts["patients"] += 1

    def close(self) -> dict[str, int]:
        """Close the NDJSON files and write the bulk-export completion manifest."""
        # The studies are cohort-level: written once, whoever enrolled in them.
        for res in research.research_studies(self.ctx.seed):
            self._sinks[res["resourceType"]].write(orjson.dumps(res))
            self._counts["records"] += 1
        for sink in self._sinks.values():
            sink.close()
        # The export's clock is fixed by the seed (never the wall clock), after every lastUpdated.
        offset = int(stream_rng(self.ctx.seed, 0, "ehr:manifest").integers(0, 30 * 86_400))
        outputs = [
            {"type": sink.resource_type, "url": path.name, "count": count}
            for sink in self._sinks.values()
            for path, count in sink.files
        ]
        manifest = {
            "transactionTime": fhir.fhir_instant(EXPORT_EPOCH + dt.timedelta(seconds=offset)),
            "request": f"{fhir.FHIR_BASE}/$export?_type={','.join(RESOURCE_TYPES)}",
            "requiresAccessToken": True,
            "output": outputs,
            "error": [],
        }
        (self.directory / "manifest.json").write_bytes(
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
        )
        return {**self._counts, "files": len(outputs) + 1}
