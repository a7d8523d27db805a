"""Parquet codec of the project's Delta writes: write time and size against delta-rs's default.

Each modality's bronze tables are built by its reader (lineage columns included, as the job
writes them), then written to fresh Delta tables with snappy (the delta-rs default), with the
project's setting (``mmlake.delta.WRITER_PROPERTIES``: zstd level 1) and with a few others.
Times are the best of ``--repeat`` runs and are reported as ratios against snappy in the same
run, with the bytes on disk.

    .venv/bin/python bench/bench_delta_codec.py --patients 300
    .venv/bin/python bench/bench_delta_codec.py --source DIR --modalities wearables,genomics
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from deltalake import WriterProperties, write_deltalake

from mmlake.delta import WRITER_PROPERTIES
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.job import split_pending
from python_ingest.job_tables import few_chunks, with_lineage_all
from python_ingest.registry import MODALITIES, reader_for

CODECS: dict[str, WriterProperties | None] = {
    "snappy (delta-rs default)": None,
    "project (zstd 1)": WRITER_PROPERTIES,
    "lz4": WriterProperties(compression="LZ4_RAW"),
    "zstd 3": WriterProperties(compression="ZSTD", compression_level=3),
    "uncompressed": WriterProperties(compression="UNCOMPRESSED"),
}


def _tables(modality: str, source: Path) -> dict[str, pa.Table]:
    """Each bronze table of ``modality`` over ``source``, as one commit would write it."""
    reader = reader_for(modality)
    todo, _, _ = split_pending(reader, source, {}, hash_new=False)
    parts: dict[str, list[tuple[str, pa.Table]]] = {}
    for f in todo:
        for name, table in reader.read(f.path).tables.items():
            if table.num_rows:
                parts.setdefault(name, []).append((f.key, table))
    at = dt.datetime.now(dt.UTC)
    return {name: few_chunks(with_lineage_all(p, "bench", at)) for name, p in parts.items()}


def _write(table: pa.Table, properties: WriterProperties | None, repeat: int) -> tuple[float, int]:
    """(best seconds, bytes on disk) of writing ``table`` as a new Delta table."""
    best, size = float("inf"), 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            write_deltalake(folder, table, writer_properties=properties)
            best = min(best, time.perf_counter() - started)
            size = sum(p.stat().st_size for p in Path(folder).glob("*.parquet"))
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", type=Path, help="DIR/<modality> instead of a generated cohort")
    args = parser.parse_args()
    report: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.source or Path(tmp) / "raw"
        if args.source is None:
            generate_cohort(GenerationConfig(patients=args.patients, seed=args.seed), raw)
        for modality in args.modalities.split(","):
            for name, table in _tables(modality, raw / modality).items():
                results = {codec: _write(table, p, args.repeat) for codec, p in CODECS.items()}
                base_s, base_bytes = next(iter(results.values()))
                report[name] = {
                    "rows": table.num_rows,
                    **{
                        codec: {
                            "s": round(seconds, 3),
                            "time_vs_snappy": round(seconds / base_s, 2),
                            "mb": round(size / 1e6, 1),
                            "size_vs_snappy": round(size / base_bytes, 2),
                        }
                        for codec, (seconds, size) in results.items()
                    },
                }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
