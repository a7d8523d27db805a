"""Multimodal similarity: per-modality cosine over the modalities both patients have.

Features are gold ``patient_multimodal`` standardised exactly as the prognostic models see
them (``ml.features.FeatureSpace``: medians, scales, category indicators), fitted on the whole
cohort because retrieval has no training split to protect and no label is among the features.
Each modality is compared on its own (cosine of the two standardised feature vectors) and the
similarities are averaged over the modalities *both* patients have: a missing modality neither
helps nor hurts, and every modality's contribution is reported so a clinician can see why two
cases were matched ("N-of-1" reasoning). An all-zero block (a patient exactly at the cohort
mean) has no direction and counts as similarity 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.features import FeatureSpace
from mmlake.similar.model import cohort_key

# Query rows per block: the similarity tensor is rows x patients x modalities doubles, kept
# near 160 MB whatever the cohort size.
_CELLS = 20_000_000


@dataclass(frozen=True)
class Match:
    """One candidate of one query: its row, the mean similarity and the per-modality parts."""

    row: int
    similarity: float
    contributions: dict[str, float]


class MultimodalSpace:
    """Unit-length per-modality feature blocks of every patient, ready for cosine products."""

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = frame.reset_index(drop=True)
        space = FeatureSpace.fit(frame)
        data = space.transform(frame)
        self.keys: np.ndarray = data.keys
        self.cancer_types: list[str | None] = [
            None if pd.isna(v) else str(v)
            for v in frame.get("cancer_type", pd.Series([None] * len(frame)))
        ]
        self.cohorts = np.array([cohort_key(t) or "" for t in self.cancer_types])
        self.modalities: tuple[str, ...] = data.modalities
        self.present = np.stack([data.present[m] for m in self.modalities], axis=1)
        self.units: list[np.ndarray] = []
        for modality in self.modalities:
            block = data.x[modality].astype(np.float64)
            norms = np.linalg.norm(block, axis=1, keepdims=True)
            self.units.append(np.divide(block, norms, out=np.zeros_like(block), where=norms > 0))
        self.row_of = {str(k): i for i, k in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)

    def _scores(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean similarity, per-modality similarity, shared mask) of ``rows`` x everyone."""
        per = np.stack(
            [self.units[m][rows] @ self.units[m].T for m in range(len(self.modalities))], axis=2
        )
        shared = self.present[rows][:, None, :] & self.present[None, :, :]
        count = shared.sum(axis=2)
        total = np.where(shared, per, 0.0).sum(axis=2)
        mean = np.divide(total, count, out=np.full(total.shape, -np.inf), where=count > 0)
        return mean, per, shared

    def shared_modalities(self, a: int, b: int) -> list[str]:
        both = self.present[a] & self.present[b]
        return [m for m, keep in zip(self.modalities, both, strict=True) if keep]

    def top_k(self, row: int, k: int, cohort: str | None = None) -> list[Match]:
        """The ``k`` most similar other patients of ``row`` (within ``cohort`` when given)."""
        return next(self._top_k(np.array([row]), k, cohort))

    def top_k_all(self, k: int) -> Iterator[tuple[int, list[Match]]]:
        """Every patient's top-k, computed in chunks so memory stays ``chunk x n``."""
        chunk = max(1, min(512, _CELLS // max(1, len(self) * len(self.modalities))))
        for start in range(0, len(self), chunk):
            rows = np.arange(start, min(start + chunk, len(self)))
            yield from zip(rows.tolist(), self._top_k(rows, k, None), strict=True)

    def _top_k(self, rows: np.ndarray, k: int, cohort: str | None) -> Iterator[list[Match]]:
        mean, per, shared = self._scores(rows)
        mean[np.arange(len(rows)), rows] = -np.inf  # never your own neighbour
        if cohort is not None:
            mean[:, self.cohorts != cohort] = -np.inf
        for i in range(len(rows)):
            scores = mean[i]
            valid = np.flatnonzero(np.isfinite(scores))
            # Highest similarity first; the patient key breaks exact ties reproducibly.
            order = valid[np.lexsort((self.keys[valid], -scores[valid]))][:k]
            yield [
                Match(
                    int(j),
                    float(scores[j]),
                    {
                        m: float(per[i, j, mi])
                        for mi, m in enumerate(self.modalities)
                        if shared[i, j, mi]
                    },
                )
                for j in order
            ]
