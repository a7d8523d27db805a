"""Training and scoring time per fusion strategy at two cohort sizes, on this machine's cores.

Reads gold ``patient_multimodal`` of a built lakehouse (``mmlake demo`` output) and, for each
size, draws that many patients from it with replacement (fresh keys), so the feature schema,
the missingness patterns and the label balance are the real ones while the size is chosen.
This measures cost, not accuracy: duplicated patients make any metric meaningless, and none is
reported. For each strategy: fit seconds (train split = 60 %), scoring seconds for every
patient, and both as ratios to the logistic early-fusion baseline of the same run; then the
scaling exponent between the two sizes (1.0 = linear):

    .venv/bin/python bench/bench_ml.py --lakehouse lakehouse --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data import load_gold
from ml.features import FeatureSpace
from ml.strategies.base import FitContext
from ml.train import FUSION, make_strategies

BASELINE = "early:logistic"


def resample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    drawn = frame.iloc[rng.integers(0, len(frame), size)].reset_index(drop=True)
    return drawn.assign(patient_key=[f"bench-{i:07d}" for i in range(size)])


def time_size(frame: pd.DataFrame, size: int, seed: int) -> dict[str, dict[str, float]]:
    cohort = resample(frame, size, seed)
    n_train, n_valid = int(size * 0.6), int(size * 0.2)
    train, valid = cohort.iloc[:n_train], cohort.iloc[n_train : n_train + n_valid]
    started = time.perf_counter()
    space = FeatureSpace.fit(train)
    everyone = space.transform(cohort)
    prep = time.perf_counter() - started
    y = cohort["label"].astype(int).to_numpy()
    ctx = FitContext(
        everyone.subset(np.arange(n_train)),
        y[:n_train],
        everyone.subset(np.arange(n_train, n_train + n_valid)),
        y[n_train : n_train + n_valid],
        seed=seed,
    )
    timings: dict[str, dict[str, float]] = {"feature_space": {"fit_s": prep, "score_s": 0.0}}
    for strategy in make_strategies(FUSION, space.modalities):
        started = time.perf_counter()
        strategy.fit(ctx)
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        strategy.predict_proba(everyone)
        timings[strategy.name] = {"fit_s": fit_s, "score_s": time.perf_counter() - started}
    del train, valid
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", type=Path, required=True)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    frame = load_gold(args.lakehouse).labelled()
    results = {size: time_size(frame, size, args.seed) for size in sizes}
    small, large = min(sizes), max(sizes)
    print(f"gold: {len(frame)} labelled patients resampled to {sizes}")
    header = f"{'strategy':18s}" + "".join(
        f"{f'fit {s}':>11s}{'x base':>8s}{f'score {s}':>12s}" for s in sizes
    )
    print(header + (f"{'fit exp':>9s}" if len(sizes) > 1 else ""))
    for name in results[small]:
        row = f"{name:18s}"
        for size in sizes:
            t = results[size][name]
            base = results[size][BASELINE]["fit_s"]
            row += f"{t['fit_s']:10.2f}s{t['fit_s'] / base:7.1f}x{t['score_s']:11.3f}s"
        if len(sizes) > 1:
            lo, hi = results[small][name]["fit_s"], results[large][name]["fit_s"]
            exponent = math.log(hi / lo) / math.log(large / small) if lo > 0 and hi > 0 else 0
            row += f"{exponent:9.2f}"
        print(row)
    if args.out:
        args.out.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
