"""The EHR's record of the imaging studies: one Procedure and one ImagingStudy per DICOM study.

Both are built from :func:`mmlake.generate.imaging_dicom.plan_studies`, the very plan the DICOM
writer renders, so the EHR and the PACS export agree on what a tumour board traces a report by:

* ``Procedure`` (SNOMED CT / MR, as ordered): ``performedDateTime`` = StudyDate + StudyTime, and
  an ``identifier`` typed ACSN (v2-0203) holding the AccessionNumber;
* ``ImagingStudy`` (R4): the same accession plus the Study Instance UID (``urn:dicom:uid``,
  ``urn:oid:<uid>``), ``started``, modality, body site, and the one axial series with its
  SeriesInstanceUID, SeriesNumber and number of instances (= DICOM files of the series, damaged
  ones included). It points at its Procedure (``procedureReference``), so that Procedure is
  never one of the damaged leaves.

Times carry the clinic's offset, as every clinical time of the export does.
"""

from __future__ import annotations

import datetime as dt

from mmlake.generate import ehr_fhir_resources as fhir
from mmlake.generate.ehr_fhir_resources import Head, Resource
from mmlake.generate.imaging_dicom import StudyPlan
from mmlake.generate.imaging_phantom import ANATOMIES

# The radiology information system that issues accession numbers (fictional, like the EHR).
ACCESSION_SYSTEM = "https://ris.riverside-cancer-center.example.org/sid/accession"
DICOM_UID_SYSTEM = "urn:dicom:uid"
DCM = "http://dicom.nema.org/resources/ontology/DCM"  # DICOM modality codes (CID 29)
IMAGING_PROCEDURE = {
    "CT": ("77477000", "Computerized axial tomography"),
    "MR": ("113091000", "Magnetic resonance imaging"),
}
_MODALITY_DISPLAY = {"CT": "Computed Tomography", "MR": "Magnetic Resonance"}
# BodyPartExamined -> SNOMED CT body structure (as DICOM PS3.16 Annex L maps them).
BODY_SITE_SNOMED = {
    "CHEST": ("51185008", "Thoracic structure"),
    "ABDOMEN": ("113345001", "Abdominal structure"),
    "BRAIN": ("12738006", "Brain structure"),
}


def started(plan: StudyPlan) -> dt.datetime:
    """StudyDate + StudyTime as a clinic-local time (studies run 07:30-18:00, same UTC date)."""
    return plan.when.replace(tzinfo=fhir.CLINIC_TZ)


def accession_identifier(plan: StudyPlan) -> Resource:
    acsn = fhir.concept(fhir.coding(f"{fhir.TERMINOLOGY}/v2-0203", "ACSN", "Accession ID"))
    return {"use": "usual", "type": acsn, "system": ACCESSION_SYSTEM, "value": plan.accession}


def procedure(h: Head, plan: StudyPlan, condition_id: str) -> Resource:
    """The imaging Procedure, dated on the study and identified by its accession number."""
    code = IMAGING_PROCEDURE[plan.modality]
    res = fhir.procedure(h, code, started(plan), plan.body_part.title(), condition_id)
    opening = {k: res[k] for k in ("resourceType", "id", "meta")}  # identifier right after meta
    return opening | {"identifier": [accession_identifier(plan)]} | res


def _modality(plan: StudyPlan) -> dict[str, str]:
    return fhir.coding(DCM, plan.modality, _MODALITY_DISPLAY[plan.modality])


def imaging_study(h: Head, plan: StudyPlan, procedure_id: str, condition_id: str) -> Resource:
    """An R4 ImagingStudy of the plan's single axial series (``modality`` is a Coding list)."""
    study_description, series_description = ANATOMIES[plan.body_part].descriptions
    n_images = plan.geometry.n_slices
    study_uid = {
        "use": "official",
        "system": DICOM_UID_SYSTEM,
        "value": f"urn:oid:{plan.study_uid}",
    }
    series = {
        "uid": plan.series_uid,
        "number": plan.series_number,
        "modality": _modality(plan),
        "description": series_description,
        "numberOfInstances": n_images,
        "bodySite": fhir.coding(fhir.SNOMED, *BODY_SITE_SNOMED[plan.body_part]),
        "started": fhir.fhir_datetime(started(plan) + dt.timedelta(minutes=4)),  # SeriesTime
    }
    code = IMAGING_PROCEDURE[plan.modality]
    return fhir.begin("ImagingStudy", h) | {
        "identifier": [study_uid, accession_identifier(plan)],
        "status": "available",
        "modality": [_modality(plan)],
        **fhir.context(h),
        "started": fhir.fhir_datetime(started(plan)),
        "numberOfSeries": 1,
        "numberOfInstances": n_images,
        "procedureReference": fhir.ref("Procedure", procedure_id),
        "procedureCode": [fhir.concept(fhir.coding(fhir.SNOMED, *code), text=study_description)],
        "reasonReference": [fhir.ref("Condition", condition_id)],
        "description": study_description,
        "series": [series],
    }
