"""Ingestion throughput per modality, as a ratio against the raw parser in the same run.

For each modality the full ingest (discover, hash, parse, validate, Arrow, Delta commits,
ledger) is timed against the field's parser alone over the same files: orjson line parsing for
FHIR NDJSON and wearables events, cyvcf2 iteration for VCF, a header-only pydicom read for DICOM,
reading the text for notes. The target is a ratio of at least 0.7.

    .venv/bin/python bench/bench_ingest.py --patients 500
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.job import IngestJob
from python_ingest.registry import MODALITIES, reader_for


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
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        generate_cohort(GenerationConfig(patients=args.patients, seed=args.seed), raw)
        for modality in args.modalities.split(","):
            reader = reader_for(modality)
            files = reader.discover(raw / modality)
            started = time.perf_counter()
            RAW_PARSERS[modality](files)
            raw_seconds = time.perf_counter() - started
            job = IngestJob(reader, Path(tmp) / f"lakehouse-{modality}")
            started = time.perf_counter()
            summary = job.run(raw / modality)
            ingest_seconds = time.perf_counter() - started
            report[modality] = {
                "files": len(files),
                "records": summary.records_read,
                "raw_parser_s": round(raw_seconds, 2),
                "ingest_s": round(ingest_seconds, 2),
                "records_per_s": round(summary.records_read / ingest_seconds, 1),
                "ratio_vs_raw_parser": round(raw_seconds / ingest_seconds, 2),
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
