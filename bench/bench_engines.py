"""Ingestion and `dbt build` on `local` vs `spark` at several cohort sizes, with scaling exponents.

For each size the cohort is generated once (not timed), then four stages are timed, each in its
own process so every engine pays its own start-up (the JVM for Spark) exactly as a user would:

- ``ingest/local``: ``mmlake ingest --engine local`` (Delta via ``deltalake``, both cores);
- ``ingest/spark``: ``mmlake ingest --engine spark`` into a second lakehouse (a local Spark
  session, ``local[2]`` from ``profiles.yml``; parquet where the Delta jars are absent);
- ``dbt/local``: the whole graph, ``dbt build`` on DuckDB + Delta;
- ``dbt/spark``: the whole graph on a local Spark session through
  ``python -m mmlake.spark_python_models build --target spark`` (dbt-spark, Python models in
  dbt's SparkSession). It reads the local build's bronze mirrored as parquet
  (mmlake/bronze_mirror.py, not timed), so both dbt builds start from identical rows.

Reported per stage and size: seconds, the spark/local ratio at that size, and the scaling
exponent ``b`` of ``t ~ n^b`` between consecutive sizes (1.0 is linear; below 1 means fixed
costs still dominate). Every figure comes from this one run; nothing is compared across runs.

    .venv/bin/python bench/bench_engines.py --sizes 1000,10000
    .venv/bin/python bench/bench_engines.py --sizes 1000,10000,100000 \
        --modalities ehr,genomics,notes,wearables

``--modalities`` leaves imaging out (its generation and radiomics pass dominate large cohorts;
the imaging models then build over empty bronze tables). ``--stages`` runs a subset.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmlake.bronze_mirror import mirror_bronze_as_parquet
from mmlake.generate.runner import MODALITIES, GenerationConfig, generate_cohort

STAGES = ("ingest/local", "ingest/spark", "dbt/local", "dbt/spark")
# `mmlake ingest` exits 3 when it finished but quarantined records (the generator plants dirty
# ones on purpose); anything else non-zero is a failure of the stage.
INGEST_OK = (0, 3)


def _run(args: list[str], lakehouse: Path, ok: tuple[int, ...] = (0,)) -> float:
    """Seconds one command took; a failed stage stops the benchmark with its output."""
    env = {**os.environ, "LAKEHOUSE_ROOT": str(lakehouse)}
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}:\n{tail}")
    return seconds


def _ingest(raw: Path, lakehouse: Path, engine: str) -> float:
    mmlake = [sys.executable, "-m", "mmlake.cli"]
    args = ["ingest", "--source", str(raw), "--lakehouse", str(lakehouse), "--engine", engine]
    return _run([*mmlake, *args], lakehouse, INGEST_OK)


def _dbt_local(lakehouse: Path) -> float:
    return _run([sys.executable, "-m", "mmlake.dbt_runner", "build"], lakehouse)


def _dbt_spark(local: Path, work: Path) -> float:
    spark_lake = work / "dbt-spark-lakehouse"
    mirror_bronze_as_parquet(local, spark_lake)
    args = [sys.executable, "-m", "mmlake.spark_python_models", "build", "--target", "spark"]
    return _run(args, spark_lake)


def _measure(
    size: int, work: Path, seed: int, modalities: tuple[str, ...], stages: set[str]
) -> dict[str, float]:
    """Seconds per stage for one cohort size."""
    raw = work / "raw"
    generate_cohort(GenerationConfig(patients=size, seed=seed, modalities=modalities), raw)
    local = work / "local-lakehouse"
    seconds: dict[str, float] = {}
    if "ingest/local" in stages or {"dbt/local", "dbt/spark"} & stages:
        # The dbt stages need a landed lakehouse, so local ingestion always runs with them.
        seconds["ingest/local"] = _progress(size, "ingest/local", _ingest(raw, local, "local"))
    if "ingest/spark" in stages:
        spark = _ingest(raw, work / "spark-lakehouse", "spark")
        seconds["ingest/spark"] = _progress(size, "ingest/spark", spark)
    if "dbt/local" in stages:
        seconds["dbt/local"] = _progress(size, "dbt/local", _dbt_local(local))
    if "dbt/spark" in stages:
        seconds["dbt/spark"] = _progress(size, "dbt/spark", _dbt_spark(local, work))
    return {stage: round(s, 1) for stage, s in seconds.items() if stage in stages}


def _progress(size: int, stage: str, seconds: float) -> float:
    """Say each stage as it ends: a long run shows what it has measured so far."""
    print(f"{size:,} patients, {stage}: {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def exponent(small: tuple[int, float], large: tuple[int, float]) -> float:
    """``b`` in ``t ~ n^b`` through two (patients, seconds) points."""
    (n1, t1), (n2, t2) = small, large
    return round(math.log(t2 / t1) / math.log(n2 / n1), 2)


def report(sizes: list[int], measured: dict[int, dict[str, float]]) -> dict[str, object]:
    """Seconds, spark/local ratios per size, and exponents between consecutive sizes."""
    out: dict[str, object] = {"seconds": {str(n): measured[n] for n in sizes}}
    ratios: dict[str, dict[str, float]] = {}
    for n in sizes:
        for step in ("ingest", "dbt"):
            spark, local = measured[n].get(f"{step}/spark"), measured[n].get(f"{step}/local")
            if spark and local:
                ratios.setdefault(str(n), {})[f"{step} spark/local"] = round(spark / local, 2)
    out["spark_over_local"] = ratios
    exponents: dict[str, dict[str, float]] = {}
    for small, large in itertools.pairwise(sizes):
        for stage in STAGES:
            t1, t2 = measured[small].get(stage), measured[large].get(stage)
            if t1 and t2:
                exponents.setdefault(f"{small}->{large}", {})[stage] = exponent(
                    (small, t1), (large, t2)
                )
    out["scaling_exponent"] = exponents
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--stages", default=",".join(STAGES), help="subset of " + ",".join(STAGES))
    parser.add_argument("--workdir", type=Path, help="keep the cohorts and lakehouses here")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    stages = set(args.stages.split(","))
    if unknown := stages - set(STAGES):
        parser.error(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {STAGES}")
    modalities = tuple(args.modalities.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        measured: dict[int, dict[str, float]] = {}
        for size in sizes:
            measured[size] = _measure(size, root / str(size), args.seed, modalities, stages)
            print(f"{size:,} patients: {json.dumps(measured[size])}", file=sys.stderr, flush=True)
    print(json.dumps(report(sizes, measured), indent=2))


if __name__ == "__main__":
    main()
