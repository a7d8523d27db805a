"""The model card: what the champion is for, what it saw, how it behaves when data is missing.

Written after evaluation because its substance is measured: performance per missingness
scenario and per subgroup. It goes to ``<lakehouse>/reports/model_card.md``, the evaluation run,
the champion strategy's run, and the registered model version's description.
"""

from __future__ import annotations

from pathlib import Path

from ml import tracking
from ml.train import FUSION


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _results_table(results: list[dict], strategies: list[str]) -> list[str]:
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    lines = ["| strategy | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 1) + "|"]
    for strategy in strategies:
        cells = []
        for scenario in scenarios:
            row = next(
                (r for r in results if r["strategy"] == strategy and r["scenario"] == scenario),
                None,
            )
            cells.append(_fmt(row["auroc"]) if row else "")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return lines


def render(run: object, report: dict, champion: str | None, version: str | None) -> str:
    params = run.data.params
    tags = run.data.tags
    results = report.get("results", [])
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    fusion = [s for s in strategies if s in FUSION]
    baselines = [s for s in strategies if s not in FUSION]
    lines = [
        f"# Model card: {tracking.registered_model_name()}" + (f" v{version}" if version else ""),
        "",
        "## Intended use",
        "Estimates the risk of disease progression within 12 months of an oncology diagnosis,",
        "at the landmark (diagnosis + 30 days), from whichever of EHR, genomics, imaging,",
        "clinical notes and wearables a patient has. It supports research cohorts and tumor-board",
        "evidence review; it is not a diagnostic device and must not decide care on its own.",
        "",
        "## Data",
        f"- Training run `{run.info.run_id}`;"
        f" gold versions {tags.get(tracking.TAG_GOLD_VERSIONS)};",
        f"  dbt manifest sha256 `{tags.get(tracking.TAG_MANIFEST) or 'n/a'}`.",
        f"- Patients: {params.get('n_train')} train / {params.get('n_valid')} validation / "
        f"{params.get('n_test')} test (split by patient, stratified, seed {params.get('seed')});",
        f"  prevalence {params.get('prevalence')}. Modalities: {params.get('modalities')}.",
        "- Features use only data known at the landmark; the label is from EHR disease-status",
        "  assessments and never enters the features (a leakage guard refuses any single feature",
        "  that separates it).",
        "",
        "## Champion",
        f"`{champion}` (best validation AUROC under the cohort's own missingness among "
        f"{', '.join(fusion)}).",
        "",
        "## Test AUROC by missingness scenario",
        *_results_table(results, fusion + baselines),
        "",
        "Scenarios: " + "; ".join(f"`{k}`: {v}" for k, v in report.get("scenarios", {}).items()),
        "",
        "## Missingness behaviour",
        "Absent modalities are never zero-filled as if observed: early fusion imputes and adds",
        "availability flags; intermediate fusion substitutes a learned absent embedding; late",
        "fusion stacks only the predictions of modalities present; attention fusion masks absent",
        f"modality tokens. Neural strategies trained with modality dropout "
        f"{params.get('modality_dropout')}.",
        "",
        "## Subgroups (realistic scenario)",
    ]
    gaps = [g for g in report.get("largest_gaps", []) if g.get("strategy") == champion]
    if not gaps:
        lines.append("No subgroup attributes were available for this evaluation.")
    for gap in gaps:
        flag = " **flagged**" if gap.get("flagged") else ""
        low, high = gap.get("lowest") or {}, gap.get("highest") or {}
        lines.append(
            f"- {gap['group']}: largest AUROC gap {_fmt(gap.get('gap'))}{flag} "
            f"(lowest {low.get('value')}: {_fmt(low.get('auroc'))}, n={low.get('n')}; "
            f"highest {high.get('value')}: {_fmt(high.get('auroc'))}, n={high.get('n')})"
        )
    lines += [
        "",
        "## Limits",
        "- Trained and evaluated on one cohort; recalibrate and re-evaluate before use elsewhere.",
        "- Small subgroups give wide intervals; gaps are flagged, not explained.",
        "- Availability patterns absent from training are handled by design but measured only",
        "  through the simulated scenarios above; monitor drift (`mmlake drift`).",
        "",
    ]
    return "\n".join(lines)


def write_model_card(lakehouse: Path, run: object, report: dict, path: Path) -> Path:
    """Render, write, and attach the card to the champion's run and registered version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    champion = run.data.tags.get("mmlake.champion")
    client = MlflowClient()
    name = tracking.registered_model_name()
    version = None
    try:
        current = client.get_model_version_by_alias(name, tracking.CHAMPION_ALIAS)
        if (current.tags or {}).get("train_run_id") == run.info.run_id:
            version = str(current.version)
    except MlflowException:
        current = None
    text = render(run, report, champion, version)
    path.write_text(text, encoding="utf-8")
    if version is not None:
        client.update_model_version(name, version, description=text)
    strategy_runs = mlflow.search_runs(
        [run.info.experiment_id],
        filter_string=(
            f"tags.`{tracking.TAG_PARENT}` = '{run.info.run_id}' and "
            f"tags.`{tracking.TAG_STRATEGY}` = '{champion}'"
        ),
        output_format="list",
    )
    for strategy_run in strategy_runs:
        client.log_artifact(strategy_run.info.run_id, str(path))
    return path
