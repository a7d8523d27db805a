"""`dbt build` wall time at two cohort sizes on `local`, and the whole graph on `spark`.

For each size the cohort is generated and ingested once (not timed), then the whole dbt graph
is built on the local target (DuckDB + Delta) and timed. The same bronze, mirrored as parquet
(mmlake/bronze_mirror.py), is then built on a local Spark session for the smallest size, Python
models included through mmlake/spark_python_models.py (dbt-spark cannot run them in session
mode, the bridge runs them in dbt's SparkSession). Ratios are printed against the
smallest local build of the same run:

    .venv/bin/python bench/bench_dbt.py --sizes 1000,10000
    .venv/bin/python bench/bench_dbt.py --sizes 1000,10000 --modalities ehr,genomics,notes,wearables

Imaging generation and its radiomics pass dominate the set-up at 10,000 patients; `--modalities`
leaves it out (the imaging models then build over empty bronze tables).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmlake.bronze_mirror import mirror_bronze_as_parquet
from mmlake.dbt_runner import run_dbt
from mmlake.generate.runner import MODALITIES, GenerationConfig, generate_cohort
from python_ingest.runner import ingest_sources


def _spark_build(local: Path, work: Path) -> float:
    spark_lake = work / "spark-lakehouse"
    mirror_bronze_as_parquet(local, spark_lake)
    args = [sys.executable, "-m", "mmlake.spark_python_models", "build", "--target", "spark"]
    env = {**os.environ, "LAKEHOUSE_ROOT": str(spark_lake)}
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--no-spark", action="store_true", help="skip the Spark build")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    modalities = tuple(args.modalities.split(","))
    report: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            work = Path(tmp) / str(size)
            config = GenerationConfig(patients=size, seed=args.seed, modalities=modalities)
            generate_cohort(config, work / "raw")
            ingest_sources(work / "raw", "all", work / "lakehouse", progress=False)
            started = time.perf_counter()
            run_dbt(["build"], target="local", lakehouse=work / "lakehouse")
            report[f"local_{size}"] = {"seconds": round(time.perf_counter() - started, 1)}
        if not args.no_spark:
            smallest = Path(tmp) / str(sizes[0])
            seconds = _spark_build(smallest / "lakehouse", smallest)
            report[f"spark_{sizes[0]}_whole_graph"] = {"seconds": round(seconds, 1)}
    baseline = report[f"local_{sizes[0]}"]["seconds"]
    for entry in report.values():
        entry["ratio_vs_local_smallest"] = round(entry["seconds"] / baseline, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
