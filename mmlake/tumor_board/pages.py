"""`render_pages`: one static evidence page per patient plus an index, rendered for a principal.

The steps are: find the patients the principal can see (a governed read), read every dbt model
once for the whole batch (governed reads), read the Delta tables written outside dbt for those
patients only, trace silver/gold keys back to their bronze rows for lineage, then write the
pages and append one audit row for the render itself (``via = 'mmlake tumor-board'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mmlake.governance.audit import record_read
from mmlake.tumor_board import html
from mmlake.tumor_board.lineage import BronzeTracer
from mmlake.tumor_board.reads import (
    VIA,
    Reader,
    TumorBoardError,
    by_patient,
    column_access,
    read_cohort,
    visible_patients,
)
from mmlake.tumor_board.sections import Sources, Traces, build_sections, present_modalities

DEFAULT_RELATIVE = Path("reports") / "tumor_board"
GOLD_MODELS = (
    "oncology_cohort",
    "features_clinical",
    "patient_multimodal",
    "genomic_biomarkers",
    "features_imaging",
    "note_events",
    "wearables_daily",
    "trial_matches",
    "trial_eligibility",
)
MISSING_INDEX = "no similar-case index (gold/similar_cases): run `mmlake similar build`"


class RenderedPages(list[Path]):
    """The patient pages written, plus the index page and what was missing."""

    index: Path
    missing_index: bool = False


def default_output(lakehouse: Path) -> Path:
    return lakehouse / DEFAULT_RELATIVE


def _trace(tracer: BronzeTracer, data: dict[str, dict[str, Any]]) -> Traces:
    def collect(part: str, column: str) -> set[str]:
        return {r[column] for d in data.values() for r in d.get(part, []) if r.get(column)}

    variants = {
        v["_record_hash"]
        for d in data.values()
        for v in d["_variants"].values()
        if v.get("_record_hash")
    }
    return Traces(
        conditions=tracer.lookup(
            "ehr_resources",
            "id",
            collect("diagnoses", "condition_id"),
            "resource_type = 'Condition'",
        ),
        patients=tracer.lookup("ehr_patients", "pk(mrn)", data.keys()),
        notes=tracer.lookup("notes", "pk('note:' || note_id)", collect("events", "note_key")),
        imaging=tracer.lookup(
            "imaging_features", "pk(study_instance_uid)", collect("imaging", "baseline_study_key")
        ),
        variants=tracer.by_hash("genomics_variants", variants),
        wearables=tracer.by_hash("wearables_events", collect("wearable_files", "record_hash")),
    )


def _sources(reader: Reader, keys: Sequence[str], visible: Sequence[str]) -> tuple[Sources, bool]:
    versions = {model: reader.gold_version(model) for model in GOLD_MODELS}
    try:
        risk_rows, risk_version = reader.delta_rows("risk_scores", keys)
    except FileNotFoundError:
        risk_rows, risk_version = [], None
    try:
        similar_rows, similar_version = reader.delta_rows("similar_cases", keys)
        similar: dict[str, list[dict[str, Any]]] | None = by_patient(similar_rows)
    except FileNotFoundError:
        similar, similar_version = None, None
    sources = Sources(
        versions=versions,
        risk=by_patient(risk_rows),
        risk_version=risk_version,
        similar=similar,
        similar_version=similar_version,
        visible=frozenset(visible),
    )
    return sources, similar is None


def render_pages(
    lakehouse: Path,
    principal: str,
    patient_keys: Sequence[str] | None,
    out_dir: Path | None = None,
) -> RenderedPages:
    """Write ``<out_dir>/<patient_key>.html`` per patient and ``index.html``.

    ``patient_keys=None`` renders every patient the principal can see. Raises
    :class:`TumorBoardError` for an unknown or invisible patient key, an empty cohort or a
    refused read; a missing similar-case index is not an error here (the section says so and
    ``missing_index`` is set), so the caller decides how loudly to report it.
    """
    out = out_dir or default_output(lakehouse)
    generated_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    reader = Reader(lakehouse, principal)
    visible = visible_patients(reader)
    if not visible:
        raise TumorBoardError(f"empty cohort: no patients are visible to {principal}")
    if patient_keys is None:
        keys = visible
    else:
        seen = set(visible)
        unknown = [k for k in patient_keys if k not in seen]
        if unknown:
            raise TumorBoardError(
                f"unknown patient key {unknown[0]!r} (not in the cohort, or not visible to "
                f"{principal})"
            )
        keys = list(dict.fromkeys(patient_keys))
    if not keys:
        raise TumorBoardError("empty cohort: no patient keys given")
    data = read_cohort(reader, keys)
    sources, missing_index = _sources(reader, keys, visible)
    tracer = BronzeTracer(lakehouse, column_access(reader))
    try:
        traces = _trace(tracer, data)
    finally:
        tracer.close()
    out.mkdir(parents=True, exist_ok=True)
    pages = RenderedPages()
    entries = []
    n_items = 0
    for key in keys:
        sections = build_sections(key, data[key], traces, sources)
        risk_rows = sources.risk.get(key, [])
        latest = max(risk_rows, key=lambda r: r["scored_at"]) if risk_rows else None
        n_items += sum(
            len(s.facts) + sum(len(t.rows) for t in s.tables) + len(s.figures) for s in sections
        )
        path = out / f"{key}.html"
        path.write_text(
            html.page(
                key,
                principal,
                generated_at,
                sections,
                latest["model_version"] if latest else None,
            ),
            encoding="utf-8",
        )
        pages.append(path)
        cohort = (data[key].get("cohort") or [{}])[0]
        present = present_modalities(data[key])
        entries.append(
            {
                "file": path.name,
                "patient_key": key,
                "cancer_type": cohort.get("cancer_type_display"),
                "stage": cohort.get("stage_text"),
                "modalities": "+".join(m for m, has in present.items() if has),
                "risk": round(latest["score"], 3) if latest else None,
            }
        )
    pages.index = out / "index.html"
    pages.index.write_text(html.index_page(principal, generated_at, entries), encoding="utf-8")
    pages.missing_index = missing_index
    record_read(
        lakehouse,
        principal=principal,
        via=VIA,
        status="ok",
        sql=f"render tumor-board pages for {len(keys)} patients into {out}",
        tables=[f"gold.{m}" for m in GOLD_MODELS] + ["gold.risk_scores", "gold.similar_cases"],
        columns=["page"],
        row_count=n_items,
        message=("patients: " + ", ".join(keys))[:4000],
    )
    return pages
