"""Discrimination and calibration metrics, with a bootstrap interval for AUROC.

A risk model for progression has to rank patients (AUROC, AUPRC) *and* give probabilities a
clinician can read at face value (Brier score, ECE): a model can rank well and still say "80 %"
to a group that progresses 40 % of the time. AUROC, AUPRC and Brier come from sklearn.metrics;
ECE, which sklearn does not provide, is computed here with 10 equal-width bins.

Undefined is reported as ``None`` (JSON null), never NaN: with fewer than ``MIN_N`` patients no
metric is reported (too few to mean anything), and with one class only the metrics that need
both classes (AUROC, its interval, AUPRC) are None while Brier and ECE stay defined.

The AUROC interval is a stratified percentile bootstrap: positives and negatives are resampled
separately, so every replicate keeps the observed prevalence and both classes (a plain bootstrap
of a small, imbalanced set can draw replicates with no positives, where AUROC does not exist).
Replicates are draw counts over the original patients, and the AUROC of all replicates is
computed at once from one sort (see ``bootstrap_auroc``), so ~11 strategies x ~8 scenarios x 200
replicates cost milliseconds. The same seed draws the same resamples for every strategy on a
scenario, which makes the intervals of competing strategies paired, not independent.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

MIN_N = 10  # fewer patients than this: every metric is reported as null
ECE_BINS = 10  # equal-width probability bins of the expected calibration error
CI_LEVEL = 0.95


def ece(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: |observed rate - mean prediction| per bin, weighted by size.

    Bins are equal-width on [0, 1]; a prediction of exactly 1.0 falls in the last bin.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    observed = np.bincount(index, weights=y, minlength=bins)
    predicted = np.bincount(index, weights=p, minlength=bins)
    # |sum(y_b) - sum(p_b)| / n  ==  (n_b / n) * |mean(y_b) - mean(p_b)|, empty bins add 0
    return float(np.abs(observed - predicted).sum() / max(len(p), 1))


def reliability(
    y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: mean prediction, observed rate, count (the reliability diagram)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    filled = counts > 0
    mean_p = np.bincount(index, weights=p, minlength=bins)[filled] / counts[filled]
    rate = np.bincount(index, weights=y, minlength=bins)[filled] / counts[filled]
    return mean_p, rate, counts[filled]


def bootstrap_auroc(
    y: np.ndarray, p: np.ndarray, weights_pos: np.ndarray, weights_neg: np.ndarray
) -> np.ndarray:
    """AUROC of many weighted resamples at once.

    ``weights_pos`` (B, n_pos) and ``weights_neg`` (B, n_neg) are how often each positive and
    negative patient is drawn in each replicate (all ones reproduces the plain AUROC). AUROC is
    the probability that a positive outscores a negative (ties count one half); per positive, the
    weight of negatives below it and tied with it is a difference of cumulative sums over the
    sorted negatives, found by ``searchsorted`` once for all replicates: O(B * n), no loops.
    """
    y = np.asarray(y).astype(bool)
    pos, neg = np.asarray(p, dtype=float)[y], np.asarray(p, dtype=float)[~y]
    order = np.argsort(neg, kind="stable")
    neg_sorted = neg[order]
    below = np.searchsorted(neg_sorted, pos, side="left")
    up_to = np.searchsorted(neg_sorted, pos, side="right")
    cumulative = np.zeros((weights_neg.shape[0], len(neg) + 1))
    np.cumsum(weights_neg[:, order], axis=1, out=cumulative[:, 1:])
    wins = cumulative[:, below] + 0.5 * (cumulative[:, up_to] - cumulative[:, below])
    pairs = weights_pos.sum(axis=1) * weights_neg.sum(axis=1)
    return (weights_pos * wins).sum(axis=1) / pairs


def _draw_counts(rng: np.random.Generator, m: int, replicates: int) -> np.ndarray:
    """(replicates, m) counts of m draws with replacement from m patients, one bincount."""
    draws = rng.integers(0, m, size=(replicates, m)) + m * np.arange(replicates)[:, None]
    return np.bincount(draws.ravel(), minlength=replicates * m).reshape(replicates, m)


def auroc_ci(
    y: np.ndarray, p: np.ndarray, n_bootstrap: int, seed: int, level: float = CI_LEVEL
) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of AUROC (both classes must be present)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    rng = np.random.default_rng(seed)
    weights_pos = _draw_counts(rng, n_pos, n_bootstrap)
    weights_neg = _draw_counts(rng, n_neg, n_bootstrap)
    replicates = bootstrap_auroc(y, p, weights_pos, weights_neg)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(replicates, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _clean(value: float | None) -> float | None:
    """Round for a readable JSON; anything non-finite becomes None (JSON has no NaN)."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 6)


def metric_row(
    y: np.ndarray, p: np.ndarray, n_bootstrap: int = 200, seed: int = 0
) -> dict[str, object]:
    """n, n_positive, auroc, auroc_ci, auprc, brier, ece of one set of predictions.

    Raises ValueError on non-finite predictions: a model emitting NaN is a bug to surface,
    not a metric to hide.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if len(y) != len(p):
        raise ValueError(f"{len(p)} predictions for {len(y)} labels")
    if not np.all(np.isfinite(p)):
        raise ValueError("predictions contain NaN or infinity")
    p = np.clip(p, 0.0, 1.0)
    n, n_positive = len(y), int(y.sum())
    row: dict[str, object] = {
        "n": n,
        "n_positive": n_positive,
        "auroc": None,
        "auroc_ci": None,
        "auprc": None,
        "brier": None,
        "ece": None,
    }
    if n < MIN_N:
        return row
    row["brier"] = _clean(brier_score_loss(y, p, labels=[0, 1]))
    row["ece"] = _clean(ece(y, p))
    if 0 < n_positive < n:
        row["auroc"] = _clean(roc_auc_score(y, p))
        row["auprc"] = _clean(average_precision_score(y, p))
        if n_bootstrap > 0:
            lo, hi = auroc_ci(y, p, n_bootstrap, seed)
            ci = [_clean(lo), _clean(hi)]
            row["auroc_ci"] = ci if None not in ci else None
    return row


def subgroup_auroc(y: np.ndarray, p: np.ndarray) -> float | None:
    """AUROC of one subgroup, None when it has fewer than MIN_N patients or one class."""
    y = np.asarray(y).astype(int)
    if len(y) < MIN_N or y.min() == y.max():
        return None
    return _clean(roc_auc_score(y, np.clip(np.asarray(p, dtype=float), 0.0, 1.0)))
