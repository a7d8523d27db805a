"""`mmlake demo`: every stage that exists, in order, on the embedded default.

The demo is the system's smoke test as much as its showcase: each new stage (ingest, dbt build,
training, reports) is appended to ``STEPS`` so that one command always exercises everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmlake.console import console, summary_table
from mmlake.delta import delta_version


@dataclass(frozen=True)
class DemoRun:
    patients: int
    seed: int
    lakehouse: Path
    raw: Path
    progress: bool = True


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[DemoRun], str]  # returns where its output went


def _generate(run: DemoRun) -> str:
    from mmlake.console import progress_bar
    from mmlake.generate.runner import GenerationConfig, generate_cohort, summarize_generation

    config = GenerationConfig(patients=run.patients, seed=run.seed)
    started = time.perf_counter()
    with progress_bar("Generating patients", run.patients, enabled=run.progress) as advance:
        result = generate_cohort(config, run.raw, on_patient=advance)
    summarize_generation(result, time.perf_counter() - started)
    return f"{result.out_dir} ({result.patients:,} patients)"


def _ingest(run: DemoRun) -> str:
    from python_ingest.runner import ingest_sources, summarize_ingest

    summaries = ingest_sources(run.raw, "all", run.lakehouse, progress=run.progress)
    summarize_ingest(summaries, run.lakehouse)
    landed = sum(s.records_landed for s in summaries)
    quarantined = sum(s.records_quarantined for s in summaries)
    return f"{run.lakehouse / 'bronze'} ({landed:,} landed, {quarantined:,} quarantined)"


def _dbt_build(run: DemoRun) -> str:
    from mmlake.dbt_runner import run_dbt

    run_dbt(["build"], target="local", lakehouse=run.lakehouse)
    return str(run.lakehouse)


def _train(run: DemoRun) -> str:
    from ml.cli import quiet_mlflow
    from ml.train import TrainConfig, train

    with quiet_mlflow():
        result = train(run.lakehouse, TrainConfig())
    best = result.valid_auroc.get(str(result.champion), float("nan"))
    return (
        f"MLflow run {result.run_id[:8]}; champion {result.champion} "
        f"(validation AUROC {best:.3f}) = model version {result.model_version}"
    )


def _evaluate(run: DemoRun) -> str:
    from ml.cli import quiet_mlflow
    from ml.evaluate import evaluate

    with quiet_mlflow():
        result = evaluate(run.lakehouse)
    return f"{result.json_path} (+ {len(result.plots)} plots, {result.model_card.name})"


def _score(run: DemoRun) -> str:
    from ml.cli import quiet_mlflow
    from ml.score import score

    with quiet_mlflow():
        result = score(run.lakehouse)
    return f"{result.path} ({result.rows:,} patients, model version {result.model_version})"


def _similar(run: DemoRun) -> str:
    from mmlake.similar import build

    result = build(run.lakehouse, k=10)
    rows = ", ".join(f"{mode} {n:,}" for mode, n in result.rows.items())
    return f"{result.path} ({rows} neighbour rows)"


# The demo renders pages for a sample, as the oncologist a tumor board would seat.
BOARD_PRINCIPAL = "oncologist@mmlake.local"
BOARD_SAMPLE = 12


def _board_sample(lakehouse: Path) -> list[str]:
    """Highest-risk patients plus those with the fewest modalities (absent-modality pages),
    among the patients the board's principal may see (consent and study row filters)."""
    from mmlake.duckdb_ext import connect
    from mmlake.governance.query import governed_read

    visible = (
        governed_read(
            BOARD_PRINCIPAL,
            "select patient_key from patient_multimodal",
            lakehouse,
            via="mmlake demo",
        )
        .table.column("patient_key")
        .to_pylist()
    )
    scores = lakehouse / "gold" / "risk_scores"
    with connect() as con:
        ranked = con.sql(
            "select patient_key, score, n_modalities from delta_scan(?) "
            "qualify row_number() over (partition by patient_key order by scored_at desc) = 1",
            params=[str(scores)],
        ).fetchall()
    ranked = [row for row in ranked if row[0] in set(visible)]
    by_risk = [k for k, _, _ in sorted(ranked, key=lambda r: -r[1])]
    by_sparsity = [k for k, _, _ in sorted(ranked, key=lambda r: (r[2], r[0]))]
    sample = list(dict.fromkeys(by_risk[: BOARD_SAMPLE - 2] + by_sparsity[:2]))
    return sample[:BOARD_SAMPLE]


def _tumor_board(run: DemoRun) -> str:
    from mmlake.tumor_board import default_output, render_pages

    pages = render_pages(
        run.lakehouse, BOARD_PRINCIPAL, _board_sample(run.lakehouse), default_output(run.lakehouse)
    )
    return f"{pages.index} ({len(pages)} pages as {BOARD_PRINCIPAL})"


STEPS: tuple[Step, ...] = (
    Step("generate synthetic cohort", _generate),
    Step("ingest raw files into bronze Delta", _ingest),
    Step("dbt build (local: DuckDB + Delta)", _dbt_build),
    Step("train fusion strategies (MLflow)", _train),
    Step("evaluate under missingness scenarios", _evaluate),
    Step("score patients into gold risk_scores", _score),
    Step("similar-case index and gold similar_cases", _similar),
    Step("tumor-board evidence pages", _tumor_board),
)


def delta_tables(lakehouse: Path) -> list[tuple[str, int]]:
    """(layer/table, latest Delta version) for every Delta table under the lakehouse."""
    found = []
    for log in sorted(lakehouse.glob("*/*/_delta_log")):
        version = delta_version(log.parent)
        if version is not None:
            found.append((f"{log.parent.parent.name}/{log.parent.name}", version))
    return found


def run_demo(patients: int, seed: int, lakehouse: Path, raw: Path) -> None:
    run = DemoRun(patients, seed, lakehouse, raw)
    lakehouse.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, step in enumerate(STEPS, start=1):
        console.rule(f"[bold]{number}/{len(STEPS)} {step.name}")
        started = time.perf_counter()
        output = step.run(run)
        rows.append((step.name, time.perf_counter() - started, output))
    summary_table("Demo: what ran", ("step", "seconds", "output"), rows)
    tables = delta_tables(lakehouse)
    if tables:
        summary_table(
            f"Delta tables under {lakehouse}", ("table", "version"), [(t, v) for t, v in tables]
        )
    console.print(f"Raw inputs: {raw}\nLakehouse:  {lakehouse}")
