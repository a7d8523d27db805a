"""Generator throughput and memory, as ratios against a baseline measured in the same run.

Baseline: drawing the cohort from the latent model alone (no files). Each modality writer is then
timed on the same patients, so the ratio says what a modality's file format costs, whatever the
machine. A second pass at several cohort sizes without imaging checks that peak memory stays flat
(streaming), which is what makes 100,000 patients possible.

    .venv/bin/python bench/bench_generate.py --patients 1000
    .venv/bin/python bench/bench_generate.py --patients 1000 --scale 2000,8000,32000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmlake.generate.cohort import MODALITIES, iter_cohort
from mmlake.generate.runner import GenerationConfig, generate_cohort


def _baseline(patients: int, seed: int) -> float:
    started = time.perf_counter()
    for _ in iter_cohort(patients, seed):
        pass
    return time.perf_counter() - started


def _timed(patients: int, seed: int, modalities: tuple[str, ...], out: Path) -> float:
    config = GenerationConfig(patients=patients, seed=seed, modalities=modalities)
    started = time.perf_counter()
    generate_cohort(config, out)
    return time.perf_counter() - started


def _peak_rss_mb(patients: int, seed: int, out: Path) -> float:
    """Peak RSS of a fresh process generating without imaging (the 100k configuration)."""
    code = (
        "import resource, sys; from pathlib import Path;"
        "from mmlake.generate.runner import GenerationConfig, generate_cohort;"
        f"generate_cohort(GenerationConfig(patients={patients}, seed={seed}, "
        "modalities=('ehr','genomics','notes','wearables')), Path(sys.argv[1]));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    done.check_returncode()
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", default="", help="comma-separated sizes for the memory check")
    args = parser.parse_args()
    report: dict[str, object] = {"patients": args.patients}
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline(args.patients, args.seed)
        report["baseline_patients_per_s"] = round(args.patients / base, 1)
        per_modality = {}
        for modality in MODALITIES:
            chosen = ("ehr",) if modality == "ehr" else ("ehr", modality)
            seconds = _timed(args.patients, args.seed, chosen, Path(tmp) / modality)
            per_modality[modality] = {
                "seconds": round(seconds, 2),
                "x_baseline": round(seconds / base, 1),
            }
        whole = _timed(args.patients, args.seed, MODALITIES, Path(tmp) / "all")
        report["modalities"] = per_modality
        report["all_modalities"] = {
            "seconds": round(whole, 2),
            "patients_per_s": round(args.patients / whole, 1),
            "x_baseline": round(whole / base, 1),
        }
        if args.scale:
            sizes = [int(s) for s in args.scale.split(",")]
            peaks = {
                n: round(_peak_rss_mb(n, args.seed, Path(tmp) / f"scale{n}"), 1) for n in sizes
            }
            report["peak_rss_mb_without_imaging"] = peaks
            report["peak_rss_ratio_largest_vs_smallest"] = round(
                peaks[sizes[-1]] / peaks[sizes[0]], 2
            )
    report["self_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
