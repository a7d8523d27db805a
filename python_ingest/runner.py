"""`mmlake ingest`: run the modality jobs over a source folder and summarize."""

from __future__ import annotations

from pathlib import Path

from mmlake.console import progress_bar, summary_table
from python_ingest.job import IngestJob, ModalitySummary
from python_ingest.registry import modality_sources, reader_for


def ingest_sources(
    source: Path, modality: str, lakehouse: Path, *, progress: bool = True
) -> list[ModalitySummary]:
    """Land every modality found under ``source``; returns one summary per modality."""
    pairs = modality_sources(source, modality)
    if not pairs:
        raise ValueError(f"{source} has none of the modality folders (ehr, genomics, ...)")
    summaries = []
    for name, folder in pairs:
        job = IngestJob(reader_for(name), lakehouse)
        pending = job.pending(folder)
        with progress_bar(f"Ingesting {name}", len(pending[0]), enabled=progress) as advance:
            summaries.append(job.run(folder, on_file=advance, pending=pending))
    return summaries


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
