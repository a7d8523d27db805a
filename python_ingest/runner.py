"""`mmlake ingest`: run the modality jobs over a source folder and summarize."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mmlake.console import console, progress_bar, summary_table
from python_ingest.job import IngestJob, ModalitySummary
from python_ingest.registry import modality_sources, reader_for

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from python_ingest.spark_engine import SparkIngestJob


ENGINES = ("local", "spark")


def ingest_sources(
    source: Path, modality: str, lakehouse: Path, *, progress: bool = True, engine: str = "local"
) -> list[ModalitySummary]:
    """Land every modality found under ``source``; returns one summary per modality.

    ``engine="spark"`` runs the same readers on PySpark (``python_ingest.spark_engine``), on the
    active Spark session or a local one started from ``profiles.yml``'s ``spark`` target.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    pairs = modality_sources(source, modality)
    if not pairs:
        raise ValueError(f"{source} has none of the modality folders (ehr, genomics, ...)")
    spark = None
    if engine == "spark":
        from python_ingest.spark_engine import SparkIngestJob
        from python_ingest.spark_session import session_for

        spark = session_for(lakehouse)
    summaries = []
    for name, folder in pairs:
        job: IngestJob | SparkIngestJob = (
            IngestJob(reader_for(name), lakehouse)
            if spark is None
            else SparkIngestJob(reader_for(name), lakehouse, spark)
        )
        pending = job.pending(folder)
        with progress_bar(f"Ingesting {name}", len(pending[0]), enabled=progress) as advance:
            summaries.append(job.run(folder, on_file=advance, pending=pending))
        if name == "imaging":
            _imaging_features(lakehouse, folder, spark)
    return summaries


def _imaging_features(lakehouse: Path, folder: Path, spark: SparkSession | None) -> None:
    """Second imaging pass: radiomics features and embeddings per series from landed pixels,
    on the engine that landed the instances (it reads them back in that engine's format)."""
    if spark is None:
        from python_ingest.imaging_features import compute_imaging_features

        features = compute_imaging_features(lakehouse, source=folder)
    else:
        from python_ingest.spark_imaging import compute_imaging_features_spark

        features = compute_imaging_features_spark(lakehouse, spark, source=folder)
    statuses = ", ".join(f"{n:,} {status}" for status, n in sorted(features.by_status.items()))
    console.print(
        f"imaging features: {features.series_seen:,} series, "
        f"{features.series_skipped:,} unchanged" + (f", {statuses}" if statuses else "")
    )


def summarize_ingest(summaries: list[ModalitySummary], lakehouse: Path) -> None:
    summary_table(
        f"Ingested into {lakehouse / 'bronze'}",
        ("modality", "files", "skipped", "records read", "landed", "quarantined"),
        [
            (
                s.modality,
                s.files_seen,
                s.files_skipped,
                s.records_read,
                s.records_landed,
                s.records_quarantined,
            )
            for s in summaries
        ],
    )
