"""Every read behind a tumor-board page, for a whole batch of patients at once.

dbt models are read through :func:`mmlake.governance.query.governed_read` as the rendering
principal (consumer views: masks and row filters apply, each read is audited), once per model
for all requested patients rather than once per patient, so ``--all`` costs a dozen audited
reads instead of thousands. Delta tables written outside dbt (``gold/risk_scores``,
``gold/similar_cases``) are not behind consumer views: they are read with ``delta_scan`` and
filtered to the patient keys the principal's governed read of ``oncology_cohort`` returned,
so a page never shows a score or a neighbour of a patient the principal cannot see.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmlake.delta import delta_version
from mmlake.duckdb_ext import connect
from mmlake.governance.query import GovernedReadError, governed_read

VIA = "mmlake tumor-board"
KEY_PATTERN = re.compile(r"^[0-9A-Za-z_.:-]{1,128}$")


class TumorBoardError(RuntimeError):
    """A one-line, user-facing reason the pages cannot be rendered as asked."""


@dataclass
class Reader:
    """Governed and Delta reads for one principal over one lakehouse."""

    lakehouse: Path
    principal: str

    def rows(self, sql: str) -> list[dict[str, Any]]:
        try:
            return governed_read(self.principal, sql, self.lakehouse, via=VIA).table.to_pylist()
        except GovernedReadError as error:
            raise TumorBoardError(str(error).splitlines()[0]) from error

    def optional_rows(self, sql: str) -> list[dict[str, Any]] | None:
        """Rows of a model that may not be built yet (None when its view does not exist)."""
        try:
            return governed_read(self.principal, sql, self.lakehouse, via=VIA).table.to_pylist()
        except GovernedReadError as error:
            if "does not exist" in str(error) or "Catalog Error" in str(error):
                return None
            raise TumorBoardError(str(error).splitlines()[0]) from error

    def gold_version(self, model: str) -> int | None:
        return delta_version(self.lakehouse / "gold" / model)

    def delta_rows(self, table: str, keys: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
        """Rows of the Delta table ``gold/<table>`` for ``keys`` (already known visible)."""
        version = delta_version(self.lakehouse / "gold" / table)
        if version is None:
            raise FileNotFoundError(self.lakehouse / "gold" / table)
        with connect() as conn:
            rows = conn.execute(
                f"select * from delta_scan(?, version => {int(version)}) "
                "where patient_key in (select unnest(?))",
                [str(self.lakehouse / "gold" / table), list(keys)],
            ).fetch_arrow_table()
        return rows.to_pylist(), version


def key_list(keys: Iterable[str]) -> str:
    """A SQL ``in (...)`` list of patient keys; keys are validated, never interpolated raw."""
    checked = []
    for key in keys:
        if not KEY_PATTERN.match(key):
            raise TumorBoardError(f"not a patient key: {key!r}")
        checked.append(f"'{key}'")
    return "(" + ", ".join(checked) + ")"


def by_patient(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["patient_key"]].append(row)
    return grouped


def visible_patients(reader: Reader) -> list[str]:
    """Patient keys the principal can see (consent, study and cfr202 row filters applied)."""
    rows = reader.rows("select patient_key from oncology_cohort order by patient_key")
    return [r["patient_key"] for r in rows if r["patient_key"]]


def column_access(reader: Reader) -> dict[str, tuple[str, str | None]]:
    """``bronze.<table>.<column>`` -> (access, effective mask) of the bronze lineage columns."""
    rows = reader.rows(
        "select r.relation_name, r.column_name, governance.access(r.classification) as access, "
        "coalesce(r.mask, c.default_mask) as mask "
        "from governance.classification_registry as r "
        "left join governance.classifications as c on c.classification = r.classification "
        "where r.relation_name like 'bronze.%' "
        "and r.column_name in ('_source_file', '_source_locator', '_ingest_batch_id')"
    )
    return {f"{r['relation_name']}.{r['column_name']}": (r["access"], r["mask"]) for r in rows}


def read_cohort(reader: Reader, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Everything per patient from the dbt models, keyed by patient_key then by part."""
    where = f"where patient_key in {key_list(keys)}"
    parts: dict[str, list[dict[str, Any]]] = {
        "cohort": reader.rows(
            "select patient_key, cancer_type, cancer_type_display, diagnosis_code, "
            "diagnosis_code_system, diagnosis_display, stage, stage_group, stage_text, "
            f"primary_site, index_date, age_band, sex from oncology_cohort {where}"
        ),
        "diagnoses": reader.rows(
            "select patient_key, condition_id, diagnosis_date, stage_text "
            f"from int_ehr__oncology_diagnoses {where}"
        ),
        "patients": reader.rows(
            "select patient_key, birth_year, deceased, deceased_date "
            f"from stg_ehr__patients {where}"
        ),
        "identifiers": reader.rows(
            "select patient_key, mrn, family_name, given_names, birth_date, city, state, phone "
            f"from stg_ehr__patient_identifiers {where}"
        ),
        "multimodal": reader.rows(
            "select patient_key, has_ehr, has_genomics, has_imaging, has_notes, has_wearables, "
            f"n_modalities, modality_pattern from patient_multimodal {where}"
        ),
        "ecog": reader.rows(
            "select patient_key, ecog, albumin_g_dl, ldh_u_l, hemoglobin_g_dl "
            f"from features_clinical {where}"
        ),
        "biomarkers": reader.rows(
            "select patient_biomarker_id, patient_key, biomarker_kind, biomarker_name, "
            "gene_symbol, protein_change, variant_key, biomarker_role, evidence_level, "
            "matched_therapy, is_actionable, vaf, tmb_per_mb, sample_id, _source_file, "
            f"_source_locator from genomic_biomarkers {where} "
            "order by is_actionable desc, biomarker_name"
        ),
        "imaging": reader.rows(
            "select patient_key, baseline_study_key, days_from_index, n_studies, modality, "
            "body_part_examined, feature_status, has_lesion, lesion_volume_ml, "
            "lesion_diameter_mm, shape_sphericity, firstorder_entropy, glcm_contrast "
            f"from features_imaging {where}"
        ),
        "events": reader.rows(
            "select event_key, patient_key, event_date, event_kind, concept, concept_class, "
            f"value, note_key, note_type, rule_id from note_events {where} "
            "order by event_date, event_kind, concept"
        ),
        "wearables": reader.rows(
            "select patient_key, activity_date, days_from_index, resting_heart_rate, "
            f"steps_total, spo2_min, sleep_minutes from wearables_daily {where} "
            "order by days_from_index"
        ),
        "wearable_files": reader.rows(
            "select patient_key, count(*) as n_events, count(distinct _source_file) as n_files, "
            "max(_source_file) as source_file, max(_record_hash) as record_hash "
            f"from stg_wearables__events {where} group by patient_key"
        ),
    }
    variant_keys = sorted({r["variant_key"] for r in parts["biomarkers"] if r["variant_key"]})
    parts["variants"] = (
        reader.rows(
            "select variant_key, _source_file, _source_locator, _ingest_batch_id, _record_hash "
            f"from stg_genomics__variants where variant_key in {key_list(variant_keys)}"
        )
        if variant_keys
        else []
    )
    for name, model in (("matches", "trial_matches"), ("criteria", "trial_eligibility")):
        order = "trial_id" if name == "matches" else "trial_id, criterion_id"
        found = reader.optional_rows(f"select * from {model} {where} order by {order}")
        parts[name] = found if found is not None else []
        parts[f"{name}_built"] = [] if found is None else [{"built": True}]
    out: dict[str, dict[str, Any]] = {key: {} for key in keys}
    for name, rows in parts.items():
        if name in ("variants", "matches_built", "criteria_built"):
            continue
        for key, grouped in by_patient(rows).items():
            if key in out:
                out[key][name] = grouped
    for key in keys:
        out[key]["_variants"] = {r["variant_key"]: r for r in parts["variants"]}
        out[key]["_trials_built"] = bool(parts["matches_built"])
    return out
