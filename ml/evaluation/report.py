"""Evaluate trained strategies on every scenario and write ``reports/evaluation.json`` + plots.

``evaluation.json`` is a stable interface for dashboards and checks. Its keys:

- ``results``: one row per (strategy, scenario): ``strategy``, ``scenario``, ``n``,
  ``n_positive``, ``auroc``, ``auroc_ci`` ([lo, hi], stratified percentile bootstrap 95 %),
  ``auprc`` (average precision), ``brier``, ``ece`` (10 equal-width bins, weighted by size);
- ``subgroups``: one row per (strategy, group, value) on the ``realistic`` scenario:
  ``strategy``, ``scenario``, ``group``, ``value``, ``n``, ``auroc`` (+ extra ``n_positive``);
- ``largest_gaps``: per (strategy, group) with at least two evaluable values: ``gap``,
  ``lowest``/``highest`` ({value, n, auroc}) and ``flagged`` (gap >= GAP_FLAG_THRESHOLD);
- ``gold_versions``: {gold table: Delta version} the evaluated data came from;
- ``scenarios``: {scenario name: what it simulates};
- ``generated_at``: ISO 8601 UTC time of writing.

Extra keys (additive; consumers may ignore them): ``settings`` (seed, n_bootstrap, ci_level,
min_n, ece_bins, gap_flag_threshold, subgroup_scenario: how the numbers were made) and ``plots``
({plot name: file name next to the JSON}).

A metric that is undefined (fewer than MIN_N patients, or one class for AUROC/AUPRC) is JSON
null; the file is written with ``allow_nan=False``, so a NaN can never reach a consumer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml.evaluation import plots
from ml.evaluation.metrics import CI_LEVEL, ECE_BINS, MIN_N, metric_row
from ml.evaluation.scenarios import build_scenarios
from ml.evaluation.subgroups import (
    GAP_FLAG_THRESHOLD,
    largest_gaps,
    subgroup_rows,
    subgroup_values,
)
from ml.features import ModalityData
from ml.strategies.base import FusionStrategy

JSON_NAME = "evaluation.json"
SUBGROUP_SCENARIO = "realistic"
FUSION_STRATEGIES = ("early", "intermediate", "late", "attention")
PLOT_FILES = {
    "roc_realistic": "roc_realistic.png",
    "calibration": "calibration.png",
    "missingness_robustness": "missingness_robustness.png",
    "modality_availability": "modality_availability.png",
}


@dataclass(frozen=True)
class EvaluationReport:
    """What ``mmlake evaluate`` wrote: the JSON (as a dict), its path and the plot files."""

    json: dict[str, object]
    json_path: Path
    plots: dict[str, Path] = field(default_factory=dict)

    def result(self, strategy: str, scenario: str) -> dict[str, object] | None:
        """The results row of one strategy in one scenario (None when not evaluated)."""
        for row in self.json["results"]:
            if row["strategy"] == strategy and row["scenario"] == scenario:
                return row
        return None


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.shape != (n,):
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {n} test patients")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0/1")
    return labels.astype(int)


def _predict(model: FusionStrategy, data: ModalityData, name: str, scenario: str) -> np.ndarray:
    """(n,) float predictions; an empty scenario is not sent to the model at all."""
    if data.n == 0:
        return np.zeros(0)
    p = np.asarray(model.predict_proba(data), dtype=float).reshape(-1)
    if p.shape != (data.n,):
        raise ValueError(f"{name} returned {p.shape[0]} predictions for {data.n} ({scenario})")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} returned NaN or infinite predictions ({scenario})")
    return p


def _highlighted(strategies: list[str], realistic: Mapping[str, object]) -> list[str]:
    """The four fusion strategies (those trained) and the best single modality on realistic."""
    chosen = [s for s in FUSION_STRATEGIES if s in strategies]
    singles = [s for s in strategies if s.startswith("single:") and realistic[s] is not None]
    if singles:
        chosen.append(max(singles, key=lambda s: realistic[s]))
    return chosen or strategies[:5]


def _write_json(payload: dict[str, object], path: Path) -> None:
    """Write atomically (readers never see half a file); NaN is an error, not 'NaN'."""
    text = json.dumps(payload, indent=2, allow_nan=False)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)


def evaluate_models(
    models: dict[str, FusionStrategy],
    test: ModalityData,
    y: np.ndarray,
    subgroups: pd.DataFrame,
    cohort_patterns: pd.Series,
    out_dir: Path,
    gold_versions: dict[str, int],
    seed: int = 0,
    n_bootstrap: int = 200,
) -> EvaluationReport:
    """Score every strategy in every scenario, write evaluation.json and the plots to out_dir."""
    if not models:
        raise ValueError("no models to evaluate")
    labels = _labels(y, test.n)
    scenarios = build_scenarios(test, seed=seed)
    strategies = list(models)

    results: list[dict[str, object]] = []
    realistic_p: dict[str, np.ndarray] = {}
    for name, model in models.items():
        for scenario in scenarios.values():
            p = _predict(model, scenario.data, name, scenario.name)
            if scenario.name == SUBGROUP_SCENARIO:
                realistic_p[name] = p
            # One seed for every strategy: paired resamples, comparable intervals.
            row = metric_row(labels[scenario.rows], p, n_bootstrap=n_bootstrap, seed=seed)
            results.append({"strategy": name, "scenario": scenario.name, **row})

    values = subgroup_values(test.keys, subgroups)
    group_rows: list[dict[str, object]] = []
    for name in strategies:
        group_rows += subgroup_rows(name, SUBGROUP_SCENARIO, labels, realistic_p[name], values)

    out_dir.mkdir(parents=True, exist_ok=True)
    realistic_auroc = {
        r["strategy"]: r["auroc"] for r in results if r["scenario"] == SUBGROUP_SCENARIO
    }
    highlighted = _highlighted(strategies, realistic_auroc)
    written = {
        "roc_realistic": plots.roc_plot(
            labels, realistic_p, realistic_auroc, out_dir / PLOT_FILES["roc_realistic"]
        ),
        "calibration": plots.calibration_plot(
            labels, {s: realistic_p[s] for s in highlighted}, out_dir / PLOT_FILES["calibration"]
        ),
        "missingness_robustness": plots.robustness_plot(
            results,
            strategies,
            list(scenarios),
            highlighted,
            out_dir / PLOT_FILES["missingness_robustness"],
        ),
        "modality_availability": plots.availability_plot(
            cohort_patterns, out_dir / PLOT_FILES["modality_availability"]
        ),
    }

    payload: dict[str, object] = {
        "results": results,
        "subgroups": group_rows,
        "largest_gaps": largest_gaps(group_rows),
        "gold_versions": {str(k): int(v) for k, v in gold_versions.items()},
        "scenarios": {s.name: s.description for s in scenarios.values()},
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "seed": int(seed),
            "n_bootstrap": int(n_bootstrap),
            "ci_level": CI_LEVEL,
            "min_n": MIN_N,
            "ece_bins": ECE_BINS,
            "gap_flag_threshold": GAP_FLAG_THRESHOLD,
            "subgroup_scenario": SUBGROUP_SCENARIO,
        },
        "plots": {name: path.name for name, path in written.items()},
    }
    json_path = out_dir / JSON_NAME
    _write_json(payload, json_path)
    return EvaluationReport(json=payload, json_path=json_path, plots=written)
