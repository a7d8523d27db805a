"""Ingestion throughput per modality, as a ratio against the raw parser in the same run.

For each modality the full ingest (discover, hash, parse, validate, Arrow, Delta commits,
ledger) is timed against the field's parser alone over the same files: orjson line parsing for
FHIR NDJSON and wearables events, cyvcf2 iteration for VCF, a header-only pydicom read for DICOM,
reading the text for notes. The target is a ratio of at least 0.7.

Both sides are also given in CPU seconds (the ingest's include its worker processes): on a
machine busy with other work the wall-clock ratio swings with the load, the CPU ratio much
less, and the two together show what the second core buys. ``--repeat N`` keeps the best of N
runs of each side (every ingest into a fresh lakehouse).

    .venv/bin/python bench/bench_ingest.py --patients 500 [--repeat 3]
    .venv/bin/python bench/bench_ingest.py --source DIR   # a folder laid out as DIR/<modality>
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import orjson

from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.job import IngestJob
from python_ingest.registry import MODALITIES, reader_for

T = TypeVar("T")


def _json_lines(files: list[Path]) -> int:
    n = 0
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                with contextlib.suppress(orjson.JSONDecodeError):
                    orjson.loads(line)
                n += 1
    return n


def _vcf(files: list[Path]) -> int:
    from cyvcf2 import VCF

    n = 0
    for path in files:
        if ".vcf" not in path.name:
            continue
        reader = VCF(str(path))
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except Exception:  # malformed line: htslib reports it and reading goes on
                n += 1
                continue
            _ = record.genotypes
            n += 1
        reader.close()
    return n


def _dicom(files: list[Path]) -> int:
    import pydicom

    for path in files:
        pydicom.dcmread(path, stop_before_pixels=True, force=True)
    return len(files)


def _text(files: list[Path]) -> int:
    for path in files:
        path.read_text(encoding="utf-8", errors="replace")
    return len(files)


def _warm(folder: Path) -> None:
    """Read every file once, so neither side pays for a cold page cache (the first would)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 24):
                    pass


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the job's pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(run: Callable[[], T]) -> tuple[float, float, T]:
    """(wall seconds, CPU seconds, result) of one call."""
    cpu, started = _cpu_seconds(), time.perf_counter()
    result = run()
    return time.perf_counter() - started, _cpu_seconds() - cpu, result


RAW_PARSERS: dict[str, Callable[[list[Path]], int]] = {
    "ehr": _json_lines,
    "genomics": _vcf,
    "imaging": _dicom,
    "notes": _text,
    "wearables": _json_lines,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each side")
    parser.add_argument(
        "--source",
        type=Path,
        help="time these files (DIR/<modality>) instead of a generated cohort",
    )
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.source or Path(tmp) / "raw"
        if args.source is None:
            generate_cohort(GenerationConfig(patients=args.patients, seed=args.seed), raw)
        for modality in args.modalities.split(","):
            reader = reader_for(modality)
            files = reader.discover(raw / modality)
            _warm(raw / modality)
            raws, ingests = [], []
            for attempt in range(args.repeat):
                raws.append(_timed(lambda files=files, m=modality: RAW_PARSERS[m](files)))
                job = IngestJob(reader, Path(tmp) / f"lakehouse-{modality}-{attempt}")
                ingests.append(_timed(lambda job=job, m=modality: job.run(raw / m)))
            raw_seconds, raw_cpu = min(r[0] for r in raws), min(r[1] for r in raws)
            ingest_seconds, ingest_cpu = min(r[0] for r in ingests), min(r[1] for r in ingests)
            summary = ingests[0][2]
            report[modality] = {
                "files": len(files),
                "records": summary.records_read,
                "raw_parser_s": round(raw_seconds, 2),
                "ingest_s": round(ingest_seconds, 2),
                "records_per_s": round(summary.records_read / ingest_seconds, 1),
                "ratio_vs_raw_parser": round(raw_seconds / ingest_seconds, 2),
                "raw_parser_cpu_s": round(raw_cpu, 2),
                "ingest_cpu_s": round(ingest_cpu, 2),
                "cpu_ratio_vs_raw_parser": round(raw_cpu / ingest_cpu, 2),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
