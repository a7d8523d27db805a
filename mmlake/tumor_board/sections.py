"""Turn the rows read for one patient into page sections, each item with its provenance.

Absence is stated, never hidden: a modality the patient does not have, a model that was not
built, an index that does not exist all become a sentence in the section.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mmlake.tumor_board.lineage import BronzeRow, Provenance, provenance
from mmlake.tumor_board.model import (
    MODALITIES,
    SECTIONS,
    Fact,
    Figure,
    Section,
    Sources,
    Table,
    Traces,
)

__all__ = ["MODALITIES", "SECTIONS", "build_sections", "present_modalities"]


def _gold(model: str, sources: Sources, key: Mapping[str, Any], **kw: Any) -> Provenance:
    return provenance(
        f"gold.{model}",
        key,
        delta_table=f"gold/{model}",
        delta_version=sources.versions.get(model),
        **kw,
    )


def _silver(model: str, key: Mapping[str, Any], bronze: BronzeRow | None) -> Provenance:
    """A silver row (a DuckDB table, not Delta): the Delta row it resolves to is bronze."""
    return provenance(
        f"silver.{model}",
        key,
        delta_table=bronze.table if bronze else None,
        delta_version=bronze.version if bronze else None,
        delta_key={"_record_hash": bronze.record_hash} if bronze else {},
        bronze=bronze,
    )


def demographics(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("demographics")
    bronze = t.patients.get(pk)
    for row in d.get("identifiers", []):
        p = _silver("stg_ehr__patient_identifiers", {"patient_key": pk}, bronze)
        name = " ".join(str(v) for v in (row["given_names"], row["family_name"]) if v)
        sec.facts += [
            Fact("Name", name or None, p),
            Fact("MRN", row["mrn"], p),
            Fact("Birth date", row["birth_date"], p),
            Fact("City / state", " / ".join(str(v) for v in (row["city"], row["state"]) if v), p),
            Fact("Phone", row["phone"], p),
        ]
    for row in d.get("patients", []):
        p = _silver("stg_ehr__patients", {"patient_key": pk}, bronze)
        sec.facts += [
            Fact("Birth year", row["birth_year"], p),
            Fact("Deceased", row["deceased"], p),
            Fact("Deceased date", row["deceased_date"], p),
        ]
    for row in d.get("cohort", []):
        p = _gold("oncology_cohort", s, {"patient_key": pk}, bronze=bronze)
        sec.facts += [Fact("Age band", row["age_band"], p), Fact("Sex", row["sex"], p)]
    sec.facts.insert(0, Fact("Patient key", pk, _gold("oncology_cohort", s, {"patient_key": pk})))
    return sec


def diagnosis(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("diagnosis")
    diagnoses = d.get("diagnoses", [])
    bronze = t.conditions.get(diagnoses[0]["condition_id"]) if diagnoses else None
    for row in d.get("cohort", []):
        p = _gold("oncology_cohort", s, {"patient_key": pk}, bronze=bronze)
        code = f"{row['diagnosis_code']} ({row['diagnosis_code_system']})"
        sec.facts += [
            Fact("Cancer type", row["cancer_type_display"] or row["cancer_type"], p),
            Fact("Diagnosis", f"{row['diagnosis_display']} - {code}", p),
            Fact("Primary site", row["primary_site"], p),
            Fact("Stage", row["stage_text"] or row["stage_group"], p),
            Fact("Index date (diagnosis)", row["index_date"], p),
        ]
    for row in d.get("ecog", []):
        p = _gold("features_clinical", s, {"patient_key": pk})
        sec.facts += [
            Fact("ECOG (by landmark)", row["ecog"], p),
            Fact("Albumin g/dL", row["albumin_g_dl"], p),
            Fact("LDH U/L", row["ldh_u_l"], p),
            Fact("Hemoglobin g/dL", row["hemoglobin_g_dl"], p),
        ]
    if not sec.facts:
        sec.messages.append("No oncology diagnosis visible for this patient.")
    return sec


def present_modalities(d: Mapping[str, Any]) -> dict[str, bool | None]:
    rows = d.get("multimodal", [])
    if not rows:
        return dict.fromkeys(MODALITIES)
    return {m: bool(rows[0][f"has_{m}"]) for m in MODALITIES}


def modalities(pk: str, d: Mapping[str, Any], s: Sources) -> Section:
    sec = Section("modalities")
    p = _gold("patient_multimodal", s, {"patient_key": pk})
    present = present_modalities(d)
    for name, has in present.items():
        sec.facts.append(Fact(name, "present" if has else "absent", p))
    absent = [m for m, has in present.items() if not has]
    if absent:
        sec.messages.append("Absent modalities: " + ", ".join(absent) + ".")
    return sec


def biomarkers(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("biomarkers")
    rows = d.get("biomarkers", [])
    if not rows:
        sec.messages.append(
            "No genomics for this patient (modality absent or not visible to this principal)."
        )
        return sec
    table = Table(
        "Biomarkers (actionable first)",
        ("Biomarker", "Kind", "Role", "Evidence", "Matched therapy", "Actionable", "VAF", "TMB"),
    )
    for row in rows:
        variant = d["_variants"].get(row["variant_key"]) or {}
        bronze = t.variants.get(variant.get("_record_hash") or "")
        p = _gold(
            "genomic_biomarkers",
            s,
            {"patient_biomarker_id": row["patient_biomarker_id"]},
            bronze=bronze,
            source_file=row["_source_file"],
            source_locator=row["_source_locator"],
            ingest_batch=variant.get("_ingest_batch_id"),
            variant_key=row["variant_key"],
        )
        table.rows.append(
            (
                (
                    row["biomarker_name"],
                    row["biomarker_kind"],
                    row["biomarker_role"],
                    row["evidence_level"],
                    row["matched_therapy"],
                    "yes" if row["is_actionable"] else "no",
                    row["vaf"],
                    row["tmb_per_mb"],
                ),
                p,
            )
        )
    sec.tables.append(table)
    return sec


def imaging(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("imaging")
    for row in d.get("imaging", []):
        bronze = t.imaging.get(row["baseline_study_key"] or "")
        p = _gold("features_imaging", s, {"patient_key": pk}, bronze=bronze, method="radiomics")
        for label, col in (
            ("Baseline study", "modality"),
            ("Body part", "body_part_examined"),
            ("Days from index", "days_from_index"),
            ("Studies", "n_studies"),
            ("Feature status", "feature_status"),
            ("Lesion", "has_lesion"),
            ("Lesion volume (ml)", "lesion_volume_ml"),
            ("Lesion diameter (mm)", "lesion_diameter_mm"),
            ("Sphericity", "shape_sphericity"),
            ("Entropy (first order)", "firstorder_entropy"),
            ("GLCM contrast", "glcm_contrast"),
        ):
            sec.facts.append(Fact(label, row[col], p))
    if not sec.facts:
        sec.messages.append("No imaging for this patient (modality absent or not visible).")
    if s.similar is None:
        sec.messages.append("Similar cases: no similar-case index; run `mmlake similar build`.")
        return sec
    neighbours = s.similar.get(pk, [])
    if not neighbours:
        sec.messages.append("Similar cases: none recorded for this patient.")
        return sec
    table = Table(
        "Similar cases",
        (
            "Mode",
            "Rank",
            "Neighbour",
            "Similarity",
            "Shared modalities",
            "Cancer type",
            "By modality",
        ),
    )
    for row in sorted(neighbours, key=lambda r: (r["mode"], r["rank"])):
        shown = (
            row["neighbour_key"] if row["neighbour_key"] in s.visible else "(not visible to you)"
        )
        p = provenance(
            "gold.similar_cases",
            {"patient_key": pk, "mode": row["mode"], "rank": row["rank"]},
            delta_table="gold/similar_cases",
            delta_version=s.similar_version,
            method=f"knn:{row['source_table']}@v{row['source_version']}",
        )
        table.rows.append(
            (
                (
                    row["mode"],
                    row["rank"],
                    shown,
                    round(row["similarity"], 3) if row["similarity"] is not None else None,
                    row["shared_modalities"],
                    row["neighbour_cancer_type"],
                    row["contributions"],
                ),
                p,
            )
        )
    sec.tables.append(table)
    return sec


def timeline(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("timeline")
    rows = d.get("events", [])
    if not rows:
        sec.messages.append("No note events for this patient (notes absent or not visible).")
        return sec
    table = Table("Events from clinical notes", ("Date", "Kind", "Concept", "Value", "Note type"))
    for row in rows:
        p = _gold(
            "note_events",
            s,
            {"event_key": row["event_key"]},
            bronze=t.notes.get(row["note_key"] or ""),
            method=f"nlp:{row['rule_id']}",
            note_key=row["note_key"],
        )
        table.rows.append(
            (
                (
                    row["event_date"],
                    row["event_kind"],
                    row["concept"],
                    row["value"],
                    row["note_type"],
                ),
                p,
            )
        )
    sec.tables.append(table)
    return sec


def wearables(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> Section:
    sec = Section("wearables")
    rows = d.get("wearables", [])
    if not rows:
        sec.messages.append("No wearables for this patient (modality absent or not visible).")
        return sec
    files = (d.get("wearable_files") or [{}])[0]
    bronze = t.wearables.get(files.get("record_hash") or "")
    p = _gold(
        "wearables_daily",
        s,
        {"patient_key": pk},
        bronze=bronze,
        method="daily aggregate",
        n_rows=len(rows),
        n_source_files=files.get("n_files"),
        n_events=files.get("n_events"),
    )
    for title, col, unit in (
        ("Daily steps", "steps_total", "steps"),
        ("Resting heart rate", "resting_heart_rate", "bpm"),
        ("Minimum SpO2", "spo2_min", "%"),
    ):
        points = [
            (float(r["days_from_index"]), float(r[col]))
            for r in rows
            if r[col] is not None and r["days_from_index"] is not None
        ]
        sec.figures.append(Figure(title, points, unit, p))
    return sec


def risk(pk: str, s: Sources) -> Section:
    sec = Section("risk")
    rows = s.risk.get(pk, [])
    if not rows:
        sec.messages.append("No risk score for this patient (run `mmlake score`).")
        return sec
    row = max(rows, key=lambda r: r["scored_at"])
    p = provenance(
        "gold.risk_scores",
        {"patient_key": pk, "model_version": row["model_version"]},
        delta_table="gold/risk_scores",
        delta_version=s.risk_version,
        method=f"model:{row['model_name']}@{row['model_version']}",
        train_run_id=row["train_run_id"],
        gold_input=f"{row['gold_table']}@v{row['gold_version']}",
    )
    sec.facts += [
        Fact("Progression risk (365 d)", round(row["score"], 3), p),
        Fact("Model", f"{row['model_name']} version {row['model_version']}", p),
        Fact("Fusion strategy", row["strategy"], p),
        Fact("Modalities used", row["modalities_present"], p),
        Fact("Scored at", row["scored_at"], p),
    ]
    return sec


def trials(pk: str, d: Mapping[str, Any], s: Sources) -> Section:
    sec = Section("trials")
    if not d.get("_trials_built"):
        sec.messages.append("Trial matching is not built (gold trial_matches absent).")
        return sec
    matches = d.get("matches", [])
    if not matches:
        sec.messages.append("No trial evaluated for this patient.")
    table = Table("Trials", ("Trial", "Title", "Status", "Met", "Not met", "Unknown"))
    for row in matches:
        p = _gold("trial_matches", s, {"patient_key": pk, "trial_id": row["trial_id"]})
        table.rows.append(
            (
                (
                    row["trial_id"],
                    row["trial_title"],
                    row["status"],
                    row["n_met"],
                    row["n_not_met"],
                    row["n_unknown"],
                ),
                p,
            )
        )
    criteria = Table(
        "Per-criterion evidence",
        ("Trial", "Criterion", "Kind", "Status", "Evidence", "Value", "Date", "Method"),
    )
    for row in d.get("criteria", []):
        p = _gold(
            "trial_eligibility",
            s,
            {"patient_key": pk, "trial_id": row["trial_id"], "criterion_id": row["criterion_id"]},
            method=row.get("method") or "structured",
            evidence=json.dumps([row.get("evidence_table"), row.get("evidence_key")]),
        )
        criteria.rows.append(
            (
                (
                    row["trial_id"],
                    row.get("criterion_description") or row["criterion_id"],
                    row.get("criterion_kind"),
                    row["status"],
                    row.get("evidence_table"),
                    row.get("evidence_value"),
                    row.get("evidence_date"),
                    row.get("method"),
                ),
                p,
            )
        )
    sec.tables += [t for t in (table, criteria) if t.rows]
    return sec


def build_sections(pk: str, d: Mapping[str, Any], t: Traces, s: Sources) -> list[Section]:
    """All evidence sections of one patient's page, in page order (review is added later)."""
    return [
        demographics(pk, d, t, s),
        diagnosis(pk, d, t, s),
        modalities(pk, d, s),
        biomarkers(pk, d, t, s),
        imaging(pk, d, t, s),
        timeline(pk, d, t, s),
        wearables(pk, d, t, s),
        risk(pk, s),
        trials(pk, d, s),
    ]
