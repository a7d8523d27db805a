"""Helpers shared by the bronze ingestion tests: reading the Delta tables a job wrote, the
generator's truth about the records it damaged, a generated cohort, a landing and its re-runs."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.job import IngestJob, ModalitySummary
from python_ingest.model import Reader

Landed = tuple[Path, ModalitySummary]  # a landing: (its bronze folder, the job's summary)


class Duck:
    """A DuckDB connection (``mmlake.duckdb_ext.connect``: Delta extension loaded) to query with."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Every row of ``sql`` run with the positional ``params``."""
        return self.conn.execute(sql, list(params)).fetchall()

    def records(self, sql: str) -> list[dict[str, Any]]:
        """Every row of ``sql`` as a dict by column name, in column order."""
        cursor = self.conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def scan(bronze: Path, table: str) -> str:
    """The DuckDB table expression reading one bronze Delta table."""
    return f"delta_scan('{bronze / table}')"


def bronze_state(bronze: Path, tables: tuple[str, ...]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` but its batch id and time, and the ledger's landed counts, in a
    fixed order: what two landings of the same files must agree on."""
    duck = Duck(connect())
    state = {
        table: duck.query(
            f"select * exclude (_ingest_batch_id, _ingested_at) from {scan(bronze, table)} "
            "order by _source_file, _source_locator"
        )
        for table in tables
    }
    state["log"] = duck.query(
        "select path, sha256, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed' order by path"
    )
    return state


def dirty_records(cohort: Path, modality: str, kind: str | None = None) -> list[dict[str, str]]:
    """The generator's ``_truth/dirty_records.csv`` rows of one modality (and ``kind``)."""
    with (cohort / "_truth" / "dirty_records.csv").open(encoding="utf-8") as handle:
        return [
            r
            for r in csv.DictReader(handle)
            if r["modality"] == modality and (kind is None or r["kind"] == kind)
        ]


def generate(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    seed: int,
    modalities: tuple[str, ...],
    patients: int = 60,
    dirty_rate: float = 0.05,
    image_size: int = 32,
    **options: Any,
) -> Path:
    """A cohort generated into a fresh temporary folder (not resolved), which it returns."""
    out = tmp_path_factory.mktemp("cohort")
    config = GenerationConfig(
        patients=patients,
        seed=seed,
        dirty_rate=dirty_rate,
        image_size=image_size,
        modalities=modalities,
        **options,
    )
    generate_cohort(config, out)
    return out


def fixtures_for(reader: type[Reader], **cohort: Any) -> tuple[Any, Any]:
    """A test module's ``cohort`` and ``landed`` fixtures (module scope): a cohort generated with
    the ``cohort`` keywords of ``generate`` (resolved), and its modality folder landed by
    ``reader``. Use: ``cohort, landed = fixtures_for(NotesReader, seed=5, modalities=(...))``."""

    @pytest.fixture(scope="module", name="cohort")
    def cohort_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return generate(tmp_path_factory, **cohort).resolve()

    @pytest.fixture(scope="module", name="landed")
    def landed_fixture(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Landed:
        job_reader = reader()
        folder = cohort / job_reader.modality
        return land(job_reader, folder, tmp_path_factory.mktemp("lakehouse"))

    return cohort_fixture, landed_fixture


def land(reader: Reader, source: Path, lakehouse: Path) -> Landed:
    """Run the ingest job over ``source`` into ``lakehouse``: (its bronze folder, the summary)."""
    summary = IngestJob(reader, lakehouse).run(source)
    return lakehouse / "bronze", summary


def land_copy(reader: Reader, folder: Path, tmp_path: Path) -> tuple[Path, Path, ModalitySummary]:
    """Copy ``folder`` into ``tmp_path`` and land the copy into ``tmp_path / "lakehouse"``, for a
    test that then changes files: (the copy, its bronze folder, the summary)."""
    source = tmp_path / folder.name
    shutil.copytree(folder, source)
    bronze, summary = land(reader, source, tmp_path / "lakehouse")
    return source, bronze, summary


def rerun(reader: Reader, source: Path, bronze: Path, times: int = 3) -> Iterator[ModalitySummary]:
    """Run the job over ``source`` into ``bronze``'s lakehouse again, ``times`` times: the summary
    of each run, as it happens (a test checks the tables between runs)."""
    for _ in range(times):
        yield IngestJob(reader, bronze.parent).run(source)


def check_reruns(
    reader: Reader, source: Path, landed: Landed, snapshot: Callable[[Path], object]
) -> None:
    """Re-running the job over the unchanged ``source`` of ``landed`` skips every file, lands
    none, and leaves ``snapshot(bronze)`` as it was after each run."""
    bronze, first = landed
    before = snapshot(bronze)
    for again in rerun(reader, source, bronze):
        assert again.files_skipped == again.files_seen == first.files_seen
        assert again.files_landed == 0
        assert snapshot(bronze) == before


def file_accounts(duck: Duck, bronze: Path) -> dict[str, tuple[int, int, int]]:
    """File name -> (records read, landed, quarantined) of every file the ledger has landed."""
    return {
        Path(path).name: (read, landed, quarantined)
        for path, read, landed, quarantined in duck.query(
            "select path, records_read, records_landed, records_quarantined "
            f"from {scan(bronze, '_ingest_log')} where status = 'landed'"
        )
    }


def write_clashing_vcfs(folder: Path) -> None:
    """Three valid VCFs whose headers cannot share one table: ``INFO/src`` beside another
    file's ``INFO/SRC`` (Delta names are case-insensitive), ``INFO/DP`` declared a list."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, key, number in (("a", "SRC", "1"), ("b", "src", "1"), ("c", "DP", "A")):
        body = "".join(f"1\t{100 + i}\t.\tA\tG\t.\t.\t{key}={i}\tGT\t0/1\n" for i in range(3))
        if name == "c":
            body += "1\t200\t.\tA\tG\t.\t.\t.\tGT\t0/2\n"  # bad in its own right
        depth = "" if key == "DP" else '##INFO=<ID=DP,Number=1,Type=Integer,Description="d">\n'
        (folder / f"{name}.vcf").write_text(
            f"##fileformat=VCFv4.2\n{depth}"
            f'##INFO=<ID={key},Number={number},Type=String,Description="d">\n'
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
            f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n{body}",
            encoding="utf-8",
        )
