"""Population drift between two gold snapshots: PSI per feature, availability and label drift.

A model trained on one version of ``patient_multimodal`` is only as good as the resemblance of
the patients it now scores to the ones it learned from. Three things can move independently:

- *feature distributions* within a modality (a new lab assay shifts albumin, a scanner upgrade
  shifts radiomics), measured by the Population Stability Index of each raw gold column among
  the patients who have that modality;
- *availability* of a modality (a site stops sequencing, a wearables programme ends), which
  the fusion strategies treat as a first-class signal and which is kept apart from the feature
  PSI so an emptier modality is not misread as a shifted one;
- the *label* (progression rate), when both snapshots have labelled patients.

PSI = sum_i (c_i - r_i) * ln(c_i / r_i) over bins with reference share r_i and current share
c_i. It is symmetric, zero for identical distributions and has conventional bands (below).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

import numpy as np
import pandas as pd

from ml.data import LABEL
from ml.features import MODALITIES, feature_columns, presence_column

# Conventional PSI bands (credit-risk practice, used across model monitoring):
# < 0.10 no meaningful shift, 0.10-0.25 worth a look, >= 0.25 the population has changed.
PSI_MODERATE = 0.10
PSI_MAJOR = 0.25
# A modality whose availability rate moves by 10 percentage points changes which fusion path
# most patients take, even when the binary PSI is still small (0.60 -> 0.50 is PSI 0.04).
AVAILABILITY_DIFF_FLAG = 0.10
# The same reasoning for the progression rate: a 10-point move changes calibration.
LABEL_DIFF_FLAG = 0.10
N_BINS = 10  # quantile bins of the reference (deciles) for numeric features
# Share given to a bin that is empty on one side, so ln(c / r) stays finite; small enough not
# to hide a category that appears or disappears (it then contributes ~ share * ln(share / eps)).
EPSILON = 1e-4
MISSING = "<missing>"
_Z_99 = 2.3263  # standard normal 99th percentile

STABLE, MODERATE, MAJOR, NOT_COMPUTED = "stable", "moderate", "major", "n/a"
_SEVERITY = {STABLE: 0, MODERATE: 1, MAJOR: 2}


def thresholds() -> dict[str, float]:
    """The constants a report was judged with (written into every report)."""
    return {
        "psi_moderate": PSI_MODERATE,
        "psi_major": PSI_MAJOR,
        "availability_diff_flag": AVAILABILITY_DIFF_FLAG,
        "label_diff_flag": LABEL_DIFF_FLAG,
        "numeric_bins": N_BINS,
        "epsilon": EPSILON,
    }


def psi(reference_counts: Iterable[float], current_counts: Iterable[float]) -> float | None:
    """PSI of two histograms over the same bins (None when either side is empty)."""
    ref = np.asarray(list(reference_counts), dtype=float)
    cur = np.asarray(list(current_counts), dtype=float)
    if ref.sum() <= 0 or cur.sum() <= 0:
        return None
    r = _smoothed(ref)
    c = _smoothed(cur)
    return float(np.sum((c - r) * np.log(c / r)))


def _smoothed(counts: np.ndarray) -> np.ndarray:
    shares = np.maximum(counts / counts.sum(), EPSILON)
    return shares / shares.sum()


def psi_status(value: float | None) -> str:
    if value is None:
        return NOT_COMPUTED
    if value >= PSI_MAJOR:
        return MAJOR
    if value >= PSI_MODERATE:
        return MODERATE
    return STABLE


def worst(statuses: Iterable[str]) -> str:
    """The most severe status ('n/a' items do not count; nothing comparable -> stable)."""
    ranked = [s for s in statuses if s in _SEVERITY]
    return max(ranked, key=_SEVERITY.__getitem__, default=STABLE)


def noise_psi(n_bins: int, n_reference: int, n_current: int) -> float | None:
    """PSI that sampling alone exceeds only 1% of the time when nothing drifted.

    PSI is a symmetrised KL divergence, so for two independent samples of one distribution
    PSI / (1/n_r + 1/n_c) is approximately chi-square with k - 1 degrees of freedom. Small
    modalities (wearables on a few hundred patients) reach the moderate band by chance; the
    report shows this floor next to each PSI so nobody chases noise. Snapshots that share most
    patients (successive builds) vary less than independent samples, so the floor is cautious.
    The 99th chi-square percentile uses the Wilson-Hilferty approximation (no SciPy needed).
    """
    if n_reference == 0 or n_current == 0 or n_bins < 2:
        return None
    df = n_bins - 1
    spread = 2.0 / (9.0 * df)
    chi2_99 = df * (1.0 - spread + _Z_99 * np.sqrt(spread)) ** 3
    return float(chi2_99 * (1.0 / n_reference + 1.0 / n_current))


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def numeric_histograms(
    reference: pd.Series, current: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts in the reference's decile bins, open at both ends, plus a missing bin.

    Open ends keep current values beyond the reference range in the outer bins instead of
    dropping them. Ties (discrete scores such as ECOG) collapse duplicate edges, so each level
    becomes its own bin. Values missing within a present modality (a lab not drawn) get their
    own bin: a change in how often something is measured is drift too.
    """
    ref = pd.to_numeric(reference.astype("float64"), errors="coerce").to_numpy()
    cur = pd.to_numeric(current.astype("float64"), errors="coerce").to_numpy()
    observed = ref[~np.isnan(ref)]
    quantiles = np.linspace(0, 1, N_BINS + 1)[1:-1]
    edges = np.array([])
    if observed.size:
        # Edges are observed values ("lower" deciles), and none at the maximum: a top bin
        # nobody in the reference can fall into would turn any value above it into drift.
        edges = np.unique(np.quantile(observed, quantiles, method="lower"))
        # A constant reference keeps its one value as edge, so anything above it still shows.
        edges = edges[edges < observed.max()] if edges.size > 1 else edges
    labels = _interval_labels(edges)

    def counts(values: np.ndarray) -> np.ndarray:
        present = values[~np.isnan(values)]
        # side="left": bin i is (edges[i-1], edges[i]], right-closed like pandas.qcut.
        index = np.searchsorted(edges, present, side="left")
        binned = np.bincount(index, minlength=len(edges) + 1).astype(float)
        return np.append(binned, float(np.isnan(values).sum()))

    ref_counts, cur_counts = counts(ref), counts(cur)
    labels.append(MISSING)
    if ref_counts[-1] == 0 and cur_counts[-1] == 0:
        return labels[:-1], ref_counts[:-1], cur_counts[:-1]
    return labels, ref_counts, cur_counts


def _interval_labels(edges: np.ndarray) -> list[str]:
    if not edges.size:
        return ["all values"]
    labels = [f"<= {_fmt(edges[0])}"]
    labels += [f"({_fmt(lo)}, {_fmt(hi)}]" for lo, hi in pairwise(edges)]
    labels.append(f"> {_fmt(edges[-1])}")
    return labels


def categorical_histograms(
    reference: pd.Series, current: pd.Series
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts over the union of categories seen on either side (missing is a category)."""
    ref = reference.astype("string").fillna(MISSING)
    cur = current.astype("string").fillna(MISSING)
    categories = sorted(set(ref.unique()) | set(cur.unique()))
    ref_counts = ref.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    cur_counts = cur.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    return [str(c) for c in categories], ref_counts, cur_counts


def feature_drift(
    column: str, modality: str, reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, object]:
    """PSI of one gold column among the patients who have ``modality`` on each side."""
    ref_rows = reference.loc[_present(reference, modality), column]
    cur_rows = current.loc[_present(current, modality), column]
    numeric = _is_numeric(reference[column]) and _is_numeric(current[column])
    if numeric:
        labels, ref_counts, cur_counts = numeric_histograms(ref_rows, cur_rows)
    else:
        labels, ref_counts, cur_counts = categorical_histograms(ref_rows, cur_rows)
    value = psi(ref_counts, cur_counts)
    noise = noise_psi(len(labels), len(ref_rows), len(cur_rows))
    item: dict[str, object] = {
        "feature": column,
        "modality": modality,
        "kind": "numeric" if numeric else "categorical",
        "psi": value,
        "status": psi_status(value),
        "n_reference": len(ref_rows),
        "n_current": len(cur_rows),
        "noise_psi": noise,
        "within_noise": value is not None and noise is not None and value <= noise,
        "bins": labels,
        "reference_share": _shares(ref_counts),
        "current_share": _shares(cur_counts),
    }
    if value is None:
        side = "reference" if not len(ref_rows) else "current"
        item["note"] = f"no patients with {modality} in the {side} snapshot"
    else:
        shift = np.abs(np.array(item["current_share"]) - np.array(item["reference_share"]))
        top = int(np.argmax(shift))
        item["largest_shift"] = {
            "bin": labels[top],
            "reference": item["reference_share"][top],
            "current": item["current_share"][top],
        }
    return item


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return [float(c / total) if total else 0.0 for c in counts]


def _present(frame: pd.DataFrame, modality: str) -> np.ndarray:
    column = presence_column(modality)
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[column].fillna(False).astype(bool).to_numpy()


def rate_drift(
    reference: np.ndarray, current: np.ndarray, flag_at: float
) -> dict[str, object] | None:
    """Drift of a binary indicator: rates, signed and absolute difference, PSI, status."""
    if not len(reference) or not len(current):
        return None
    ref_rate = float(np.mean(reference))
    cur_rate = float(np.mean(current))
    value = psi(
        [reference.sum(), len(reference) - reference.sum()],
        [current.sum(), len(current) - current.sum()],
    )
    difference = cur_rate - ref_rate
    flagged = abs(difference) >= flag_at
    # A flagged rate is at least moderate; the binary PSI can make it major.
    status = worst([psi_status(value), MODERATE if flagged else STABLE])
    return {
        "reference_rate": ref_rate,
        "current_rate": cur_rate,
        "difference": difference,
        "abs_difference": abs(difference),
        "psi": value,
        "flagged": flagged,
        "status": status,
        "n_reference": len(reference),
        "n_current": len(current),
    }


def availability_drift(reference: pd.DataFrame, current: pd.DataFrame) -> list[dict[str, object]]:
    """Availability rate of each modality over all patients of each snapshot."""
    items = []
    for modality in MODALITIES:
        drift = rate_drift(
            _present(reference, modality).astype(float),
            _present(current, modality).astype(float),
            AVAILABILITY_DIFF_FLAG,
        )
        if drift is not None:
            items.append({"modality": modality, **drift})
    return items


def label_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, object]:
    """Positive (progression) rate among labelled patients, when both sides have labels."""
    ref = _labels(reference)
    cur = _labels(current)
    drift = rate_drift(ref, cur, LABEL_DIFF_FLAG)
    if drift is None:
        missing = "reference" if not len(ref) else "current"
        return {"status": NOT_COMPUTED, "note": f"no labelled patients in the {missing} snapshot"}
    return drift


def _labels(frame: pd.DataFrame) -> np.ndarray:
    if LABEL not in frame.columns:
        return np.array([], dtype=float)
    values = pd.to_numeric(frame[LABEL], errors="coerce").dropna()
    return (values.to_numpy(float) > 0).astype(float)


def compute_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, object]:
    """Every drift measure between two ``patient_multimodal`` frames, with statuses.

    Columns present on one side only (a schema change between builds) are listed under
    ``schema`` rather than given a PSI: there is nothing to compare them with.
    """
    features: list[dict[str, object]] = []
    only_reference: list[str] = []
    only_current: list[str] = []
    for modality in MODALITIES:
        ref_columns = feature_columns(reference, modality)
        cur_columns = feature_columns(current, modality)
        only_reference += [c for c in ref_columns if c not in cur_columns]
        only_current += [c for c in cur_columns if c not in ref_columns]
        for column in (c for c in ref_columns if c in cur_columns):
            features.append(feature_drift(column, modality, reference, current))
    # Largest PSI first; uncomputable ones (no patients with the modality) last.
    features.sort(key=lambda f: (f["psi"] is None, -(f["psi"] or 0.0), f["feature"]))

    availability = availability_drift(reference, current)
    label = label_drift(reference, current)
    values = [f["psi"] for f in features if f["psi"] is not None]
    summary = {
        "n_features": len(features),
        "n_features_computed": len(values),
        "n_features_moderate": sum(f["status"] == MODERATE for f in features),
        "n_features_major": sum(f["status"] == MAJOR for f in features),
        # Moderate/major features whose PSI sampling alone could explain (see noise_psi).
        "n_features_flagged_within_noise": sum(
            f["status"] in (MODERATE, MAJOR) and bool(f["within_noise"]) for f in features
        ),
        "psi_max": max(values) if values else None,
        "psi_mean": float(np.mean(values)) if values else None,
        "availability_flagged": [a["modality"] for a in availability if a["flagged"]],
    }
    overall = worst(
        [f["status"] for f in features]
        + [a["status"] for a in availability]
        + [str(label["status"])]
    )
    return {
        "overall": overall,
        "thresholds": thresholds(),
        "summary": summary,
        "features": features,
        "availability": availability,
        "label": label,
        "schema": {"only_reference": only_reference, "only_current": only_current},
    }
