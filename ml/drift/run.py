"""`mmlake drift`: compare the gold a model was trained on with the gold it would score now.

The reference is normally a training run: its ``mmlake.gold_version`` tag names the exact
``patient_multimodal`` version it learned from, so drift is measured against what the model
actually saw. ``version:<N>`` compares against a gold version directly, which is how drift is
watched before any model exists (or between two builds). The result is a report under
``<lakehouse>/reports/drift/`` and an MLflow run (``mmlake.kind = drift``) whose metrics can be
charted over time next to the training runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ml import tracking
from ml.data import GoldSnapshot, MLInputError, load_gold, utc_now
from ml.drift.compute import compute_drift
from ml.drift.report import ReportPaths, write_report
from ml.features import MODALITIES

VERSION_PREFIX = "version:"
TAG_REFERENCE_VERSION = "mmlake.reference_gold_version"


@dataclass(frozen=True)
class DriftResult:
    """What the CLI prints and callers chain on: the verdict, where the report is, its JSON."""

    status: str  # overall: stable | moderate | major
    paths: ReportPaths
    report: dict[str, object]
    mlflow_run_id: str

    def summary_line(self) -> str:
        summary = self.report["summary"]
        psi_max = summary["psi_max"]
        return (
            f"drift {self.status}: gold v{self.report['reference']['gold_version']} -> "
            f"v{self.report['current']['gold_version']}, PSI max "
            f"{'n/a' if psi_max is None else f'{psi_max:.3f}'}, "
            f"{summary['n_features_major']} major / {summary['n_features_moderate']} moderate "
            f"features, availability flagged: "
            f"{', '.join(summary['availability_flagged']) or 'none'}"
        )


def resolve_reference(lakehouse: Path, reference: str | None) -> tuple[int, str | None]:
    """(reference gold version, training run id or None) for a --reference argument."""
    if reference is not None and reference.startswith(VERSION_PREFIX):
        text = reference[len(VERSION_PREFIX) :].strip()
        if not text.isdigit():
            raise MLInputError(
                f"--reference {reference!r}: expected version:<N> with N a Delta version number"
            )
        return int(text), None

    import mlflow
    from mlflow.exceptions import MlflowException

    tracking.configure(lakehouse)
    if reference is None:
        run = tracking.latest_run(lakehouse, "train")
        if run is None:
            raise MLInputError(
                f"no finished training run in {tracking.tracking_uri(lakehouse)}: run "
                "`mmlake train` first, or compare gold versions with --reference version:<N>"
            )
    else:
        try:
            run = mlflow.get_run(reference.strip())
        except MlflowException as exc:
            raise MLInputError(
                f"unknown MLflow run {reference!r} in {tracking.tracking_uri(lakehouse)} "
                "(pass a training run id or version:<N>)"
            ) from exc
    tags = run.data.tags
    kind = tags.get(tracking.TAG_KIND)
    if kind != "train":
        raise MLInputError(
            f"run {run.info.run_id} is a {kind or 'untagged'!s} run, not a training run "
            f"({tracking.TAG_KIND} = 'train'); pass a training run id or version:<N>"
        )
    version = tags.get(tracking.TAG_GOLD_VERSION, "")
    if not version.isdigit():
        raise MLInputError(
            f"training run {run.info.run_id} has no {tracking.TAG_GOLD_VERSION} tag; "
            "pass --reference version:<N> instead"
        )
    return int(version), run.info.run_id


def _describe(snapshot: GoldSnapshot) -> dict[str, object]:
    return {
        "gold_version": snapshot.gold_version,
        "gold_versions": dict(snapshot.versions),
        "rows": len(snapshot.frame),
        "dbt_manifest_sha256": snapshot.manifest_digest,
    }


def run_drift(lakehouse: Path, reference: str | None, current_version: int | None) -> DriftResult:
    """Measure drift of gold ``current_version`` (None = latest) against ``reference``.

    Raises MLInputError (one line) for an unknown run, a run that is not a training run, or a
    gold version that does not exist.
    """
    reference_version, train_run_id = resolve_reference(lakehouse, reference)
    reference_snap = load_gold(lakehouse, reference_version)
    current_snap = load_gold(lakehouse, current_version)

    drift = compute_drift(reference_snap.frame, current_snap.frame)
    report: dict[str, object] = {
        "generated_at": utc_now().isoformat(timespec="seconds"),
        "reference": {**_describe(reference_snap), "run_id": train_run_id},
        "current": _describe(current_snap),
        **drift,
    }

    import mlflow

    experiment_id = tracking.configure(lakehouse)
    tags = {
        tracking.TAG_KIND: "drift",
        tracking.TAG_GOLD_VERSION: str(current_snap.gold_version),
        tracking.TAG_GOLD_VERSIONS: json.dumps(current_snap.versions, sort_keys=True),
        TAG_REFERENCE_VERSION: str(reference_snap.gold_version),
        "mmlake.drift_status": str(drift["overall"]),
    }
    if current_snap.manifest_digest:
        tags[tracking.TAG_MANIFEST] = current_snap.manifest_digest
    if train_run_id is not None:
        tags[tracking.TAG_PARENT] = train_run_id
    # nested=True: `mmlake score` may call this inside its own run.
    with mlflow.start_run(
        experiment_id=experiment_id, run_name="drift", tags=tags, nested=True
    ) as run:
        report["mlflow_run_id"] = run.info.run_id
        paths = write_report(report, tracking.reports_dir(lakehouse) / "drift")
        mlflow.log_params(
            {
                "reference_gold_version": reference_snap.gold_version,
                "current_gold_version": current_snap.gold_version,
                "reference_run_id": train_run_id or "",
            }
        )
        mlflow.log_metrics(_metrics(drift))
        for path in paths.all():
            mlflow.log_artifact(str(path), artifact_path="drift")
    return DriftResult(
        status=str(drift["overall"]), paths=paths, report=report, mlflow_run_id=run.info.run_id
    )


def _metrics(drift: dict[str, object]) -> dict[str, float]:
    """The numbers worth charting across drift runs (MLflow takes floats only, no None)."""
    summary = drift["summary"]
    metrics: dict[str, float] = {
        "n_features_major": float(summary["n_features_major"]),
        "n_features_moderate": float(summary["n_features_moderate"]),
    }
    if summary["psi_max"] is not None:
        metrics["psi_max"] = float(summary["psi_max"])
        metrics["psi_mean"] = float(summary["psi_mean"])
    by_modality = {a["modality"]: a for a in drift["availability"]}
    for modality in MODALITIES:
        if modality in by_modality:
            # Magnitude (what the flag is judged on); the signed change is in the JSON.
            metrics[f"availability_diff_{modality}"] = float(
                by_modality[modality]["abs_difference"]
            )
    label = drift["label"]
    if "difference" in label:
        metrics["label_rate_diff"] = float(label["difference"])  # current - reference
    return metrics
