"""The evaluation figures (PNG rendered by matplotlib's Agg canvas: no display, no pyplot).

- ``roc_realistic.png``: ROC curve of every strategy on the realistic test set;
- ``calibration.png``: reliability diagram of the fusion strategies and the best single
  modality - whether "30 %" means 30 % for the patients a model says it about;
- ``missingness_robustness.png``: AUROC per scenario per strategy - which strategy survives
  missing modalities (left: fusion strategies and the best single modality with 95 % intervals;
  right: every strategy as a heatmap);
- ``modality_availability.png``: UpSet-style view of the cohort's availability patterns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ml.evaluation.metrics import reliability
from ml.features import MODALITIES

DPI = 110


def _colors(names: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Distinct colours: tab20's saturated half first, its paler twins only past ten names."""
    cmap = colormaps["tab20"]
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return {name: cmap(order[i % 20]) for i, name in enumerate(names)}


def _figure(**kwargs: object) -> Figure:
    """A figure on the Agg canvas, outside pyplot's global state (nothing to close, no GUI)."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    return path


def roc_plot(
    y: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    aurocs: Mapping[str, float | None],
    path: Path,
) -> Path:
    """ROC curve per strategy; strategies with an undefined AUROC are left out."""
    fig = _figure(figsize=(7, 6))
    ax = fig.subplots()
    colors = _colors(list(predictions))
    for name, p in predictions.items():
        if aurocs.get(name) is None:
            continue
        fpr, tpr, _ = roc_curve(y, p)
        style = "--" if name.startswith("single:") else "-"
        ax.plot(fpr, tpr, style, color=colors[name], label=f"{name} ({aurocs[name]:.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"ROC, realistic missingness (n={len(y)})")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def calibration_plot(y: np.ndarray, predictions: Mapping[str, np.ndarray], path: Path) -> Path:
    """Reliability diagram (10 equal-width bins) over a histogram of the predictions."""
    fig = _figure(figsize=(7, 7))
    ax, hist = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    colors = _colors(list(predictions))
    for name, p in predictions.items():
        if len(p) == 0:
            continue
        mean_p, rate, _ = reliability(y, np.clip(p, 0.0, 1.0))
        ax.plot(mean_p, rate, "o-", color=colors[name], label=name, markersize=4)
        hist.hist(p, bins=10, range=(0, 1), histtype="step", color=colors[name])
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    ax.set(ylabel="Observed progression rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"Calibration, realistic missingness (n={len(y)})")
    ax.legend(fontsize=8, loc="upper left")
    hist.set(xlabel="Predicted probability", ylabel="Patients")
    return _save(fig, path)


def robustness_plot(
    results: Sequence[Mapping[str, object]],
    strategies: Sequence[str],
    scenarios: Sequence[str],
    highlighted: Sequence[str],
    path: Path,
) -> Path:
    """AUROC per scenario: highlighted strategies as lines with intervals, all as a heatmap."""
    table = {(r["strategy"], r["scenario"]): r for r in results}
    grid = np.full((len(strategies), len(scenarios)), np.nan)
    for i, strategy in enumerate(strategies):
        for j, scenario in enumerate(scenarios):
            value = table.get((strategy, scenario), {}).get("auroc")
            grid[i, j] = np.nan if value is None else float(value)
    fig = _figure(figsize=(max(12, 1.6 * len(scenarios) + 6), max(5, 0.45 * len(strategies) + 2)))
    ax, heat = fig.subplots(1, 2)
    colors = _colors(list(strategies))
    x = np.arange(len(scenarios))
    for k, strategy in enumerate(highlighted):
        i = list(strategies).index(strategy)
        offset = (k - (len(highlighted) - 1) / 2) * 0.06  # keep the intervals apart
        lo, hi = [], []
        for j, scenario in enumerate(scenarios):
            ci = table.get((strategy, scenario), {}).get("auroc_ci")
            lo.append(grid[i, j] - ci[0] if ci else 0.0)
            hi.append(ci[1] - grid[i, j] if ci else 0.0)
        ax.errorbar(
            x + offset,
            grid[i],
            yerr=[lo, hi],
            fmt="o-",
            capsize=3,
            label=strategy,
            color=colors[strategy],
            markersize=4,
        )
    ax.axhline(0.5, linestyle=":", color="grey")
    ax.set_xticks(x, scenarios, rotation=35, ha="right", fontsize=8)
    ax.set(ylabel="AUROC (95 % bootstrap CI)", title="Which strategy survives missing modalities")
    ax.legend(fontsize=8)
    image = heat.imshow(
        np.ma.masked_invalid(grid), cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto"
    )
    heat.set_xticks(x, scenarios, rotation=35, ha="right", fontsize=8)
    heat.set_yticks(np.arange(len(strategies)), strategies, fontsize=8)
    for i in range(len(strategies)):
        for j in range(len(scenarios)):
            text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.2f}"
            heat.text(j, i, text, ha="center", va="center", fontsize=7, color="white")
    heat.set_title("AUROC, every strategy and scenario")
    fig.colorbar(image, ax=heat, fraction=0.04)
    return _save(fig, path)


def availability_plot(cohort_patterns: pd.Series, path: Path) -> Path:
    """UpSet-style: patients per availability pattern above a dot matrix of its modalities."""
    counts = cohort_patterns.fillna("none").astype(str).value_counts()
    if counts.empty:
        fig = _figure(figsize=(6, 3))
        fig.text(0.5, 0.5, "no patients in the cohort", ha="center", va="center")
        return _save(fig, path)
    members = {p: set(p.split("+")) - {"none", ""} for p in counts.index}
    found = set().union(*members.values()) if members else set()
    modalities = [m for m in MODALITIES if m in found] + sorted(found - set(MODALITIES))
    fig = _figure(figsize=(max(8, 0.45 * len(counts) + 4), 6))
    axes = fig.subplots(2, 2, gridspec_kw={"height_ratios": [3, 2], "width_ratios": [1, 4]})
    axes[0, 0].axis("off")
    bars, dots, sizes = axes[0, 1], axes[1, 1], axes[1, 0]
    x = np.arange(len(counts))
    bars.bar(x, counts.to_numpy(), color="#3a6ea5")
    for xi, count in zip(x, counts.to_numpy(), strict=True):
        bars.text(xi, count, str(count), ha="center", va="bottom", fontsize=7)
    bars.set_xticks([])
    bars.set(ylabel="Patients", xlim=(-0.6, len(counts) - 0.4))
    bars.set_title(f"Modality availability patterns (n={int(counts.sum())} patients)")
    for xi, pattern in zip(x, counts.index, strict=True):
        rows = [i for i, m in enumerate(modalities) if m in members[pattern]]
        dots.scatter([xi] * len(modalities), range(len(modalities)), color="#dddddd", s=40)
        if rows:
            dots.scatter([xi] * len(rows), rows, color="#222222", s=40, zorder=3)
            dots.plot([xi, xi], [min(rows), max(rows)], color="#222222", zorder=2)
    dots.set_yticks(range(len(modalities)), modalities)
    dots.set(xlim=(-0.6, len(counts) - 0.4), ylim=(max(len(modalities), 1) - 0.5, -0.5))
    dots.set_xticks([])
    # Left of the matrix: how many patients have each modality at all (the set sizes).
    totals = [int(counts[[m in members[p] for p in counts.index]].sum()) for m in modalities]
    sizes.barh(range(len(modalities)), totals, color="#8c8c8c")
    sizes.set(ylim=(max(len(modalities), 1) - 0.5, -0.5), xlabel="Patients with modality")
    sizes.set_yticks([])
    sizes.invert_xaxis()
    return _save(fig, path)
