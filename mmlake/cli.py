"""The `mmlake` command line: one entry point for every stage of the lakehouse."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ml.cli import register as register_ml_commands
from mmlake import paths
from mmlake.console import console, progress_bar
from mmlake.generate.cohort import MODALITIES, ModalityRates
from mmlake.governance.cli import app as governance_app
from mmlake.governance.cli import query as governance_query
from mmlake.nlp.cli import app as nlp_app
from mmlake.similar.cli import app as similar_app
from mmlake.tumor_board.cli import app as tumor_board_app

app = typer.Typer(
    name="mmlake",
    help=(
        "Multimodal precision-medicine lakehouse: generate a synthetic cohort, land it as Delta, "
        "build the governed dbt layers and run the end-to-end demo."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_short=True,
    rich_markup_mode="markdown",
)

app.add_typer(nlp_app, name="nlp")
app.add_typer(governance_app, name="governance")
app.add_typer(similar_app, name="similar")
app.add_typer(tumor_board_app, name="tumor-board")

PatientsOpt = Annotated[int, typer.Option("--patients", "-n", min=1, help="Cohort size.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")]
LakehouseOpt = Annotated[
    Path | None,
    typer.Option(
        "--lakehouse",
        help="Lakehouse root (Delta tables, DuckDB file, reports). "
        "Default: $LAKEHOUSE_ROOT, else ./lakehouse.",
    ),
]


def _parse_modalities(value: str) -> tuple[str, ...]:
    chosen = tuple(m.strip() for m in value.split(",") if m.strip())
    unknown = sorted(set(chosen) - set(MODALITIES))
    if unknown:
        raise typer.BadParameter(
            f"unknown modalities {unknown}; choose from {', '.join(MODALITIES)}"
        )
    return chosen


@app.command()
def generate(
    patients: PatientsOpt = 500,
    seed: SeedOpt = 42,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output folder. Default: $MMLAKE_RAW_DIR, else ./data/raw."
        ),
    ] = None,
    dirty_rate: Annotated[
        float, typer.Option(help="Share of records corrupted on purpose (listed in _truth).")
    ] = 0.01,
    genomics_rate: Annotated[
        float, typer.Option(help="Share sequenced (higher in stage IV).")
    ] = 0.60,
    imaging_rate: Annotated[float, typer.Option(help="Share with a staging CT/MR study.")] = 0.70,
    notes_rate: Annotated[float, typer.Option(help="Share with clinical notes.")] = 0.95,
    wearables_rate: Annotated[float, typer.Option(help="Share enrolled with a wearable.")] = 0.30,
    modalities: Annotated[
        str,
        typer.Option(help="Comma-separated modalities to write (EHR is always written)."),
    ] = ",".join(MODALITIES),
    image_size: Annotated[int, typer.Option(help="DICOM rows/columns per slice.")] = 64,
    vcf_batch_size: Annotated[int, typer.Option(help="Samples per sequencing-run VCF.")] = 48,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Generate a synthetic multimodal cohort in the formats real systems emit.

    Writes DIR/ehr (FHIR R4 bulk NDJSON), DIR/genomics (bgzipped, tabix-indexed VCF 4.2 per
    sequencing run + sample manifests), DIR/imaging (DICOM series), DIR/notes (text + manifest),
    DIR/wearables (JSON-lines landing folder) and DIR/_truth (ground truth for tests only).
    """
    from mmlake.generate.runner import GenerationConfig, generate_cohort, summarize_generation

    out_dir = paths.raw_root(out)
    chosen = _parse_modalities(modalities)
    try:
        config = GenerationConfig(
            patients=patients,
            seed=seed,
            rates=ModalityRates(genomics_rate, imaging_rate, notes_rate, wearables_rate),
            dirty_rate=dirty_rate,
            modalities=chosen if "ehr" in chosen else ("ehr", *chosen),
            image_size=image_size,
            vcf_batch_size=vcf_batch_size,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    started = time.perf_counter()
    try:
        with progress_bar("Generating patients", patients, enabled=not quiet) as advance:
            result = generate_cohort(config, out_dir, on_patient=advance)
    except FileExistsError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    summarize_generation(result, time.perf_counter() - started)


@app.command()
def ingest(
    source: Annotated[
        Path,
        typer.Option(
            "--source", "-s", exists=True, file_okay=False, help="Folder of raw files to land."
        ),
    ],
    modality: Annotated[
        str,
        typer.Option(
            help="ehr | genomics | imaging | notes | wearables | all (all: the generator's "
            "layout, one sub-folder per modality)."
        ),
    ] = "all",
    lakehouse: LakehouseOpt = None,
    watch: Annotated[
        bool,
        typer.Option(
            help="Keep polling the source for new files (streaming landing folders such as "
            "wearables) until interrupted."
        ),
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --watch.")] = 10.0,
    engine: Annotated[
        str,
        typer.Option(
            help="local | spark. local: the readers on this machine's cores, Delta written with "
            "deltalake. spark: the same readers on PySpark (the active session, else a local one "
            "from profiles.yml's spark target), written through Spark: Delta, or parquet when "
            "the session has no Delta Lake jars (said once)."
        ),
    ] = "local",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Land raw files as bronze Delta tables, exactly once, quarantining what is invalid.

    Files already landed with the same content are skipped, so re-running is safe and picks up
    only new or changed files. Every record lands or goes to `bronze/_quarantine` with a reason.

    Exit codes: 0 everything landed; 3 finished, but some records were quarantined;
    1 the job failed.
    """
    from python_ingest.runner import ingest_sources, summarize_ingest

    root = paths.lakehouse_root(lakehouse)
    quarantined = False
    try:
        while True:
            summaries = ingest_sources(
                source.resolve(), modality, root, progress=not quiet, engine=engine
            )
            quarantined |= any(s.records_quarantined for s in summaries)
            if not watch or any(s.files_landed for s in summaries):
                summarize_ingest(summaries, root)
            if not watch:
                break
            time.sleep(interval)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    except KeyboardInterrupt:
        console.print("stopped watching")
    except RuntimeError as error:
        # Ctrl-C while DuckDB scans the ledger surfaces as "Query interrupted" caused by it.
        if not isinstance(error.__cause__, KeyboardInterrupt):
            raise
        console.print("stopped watching")
    if quarantined:
        raise typer.Exit(3)


@app.command()
def demo(
    patients: PatientsOpt = 500,
    seed: SeedOpt = 42,
    lakehouse: LakehouseOpt = None,
    raw: Annotated[
        Path | None,
        typer.Option("--raw", help="Raw input folder. Default: $MMLAKE_RAW_DIR, else ./data/raw."),
    ] = None,
) -> None:
    """Run every stage end to end on the embedded default (DuckDB + Delta), then summarize."""
    from mmlake.demo import run_demo

    run_demo(
        patients=patients,
        seed=seed,
        lakehouse=paths.lakehouse_root(lakehouse),
        raw=paths.raw_root(raw),
    )


# `mmlake query --as PRINCIPAL "SQL"`: governed reads of the local warehouse (mmlake/governance).
app.command(name="query")(governance_query)

# `mmlake train | evaluate | score | drift`: fusion models on gold (ml/).
register_ml_commands(app)

if __name__ == "__main__":
    app()
