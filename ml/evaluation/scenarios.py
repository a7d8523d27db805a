"""Deployment scenarios: the held-out test set under different patterns of missing modalities.

A multimodal model is usually validated on patients who have everything and then deployed where
genomics is ordered for few patients and wearables for almost none. Each scenario is the test
set as a deployment would see it, so the same trained strategies can be compared on:

- ``complete``: the patients who have every modality (the optimistic, usual benchmark);
- ``realistic``: the test set as is, with the cohort's own missingness;
- ``without:<modality>``: that modality removed for everyone (e.g. a site without a scanner);
- ``shifted``: a deployment pattern unlike training (genomics much rarer, no wearables).

Only ``complete`` drops patients; the others keep every test patient and hide modalities, so
their labels are the test labels and differences between scenarios are due to missingness alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.features import ModalityData

# Shifted deployment: share of the patients with genomics who keep it (the rest lose it), and
# the modalities nobody has at all. Both describe a plausible community-hospital deployment.
SHIFT_KEEP = {"genomics": 0.25}
SHIFT_ABSENT = ("wearables",)


@dataclass(frozen=True)
class Scenario:
    """One evaluation condition: the data a model sees, which test rows they are, and why."""

    name: str
    description: str
    data: ModalityData
    rows: np.ndarray  # integer positions in the test set (index the labels with it)


def complete(test: ModalityData) -> Scenario:
    rows = np.flatnonzero(test.presence_matrix().all(axis=1)) if test.modalities else np.arange(0)
    return Scenario(
        "complete",
        "test patients who have every modality (" + ", ".join(test.modalities) + ")",
        test.subset(rows),
        rows,
    )


def realistic(test: ModalityData) -> Scenario:
    return Scenario(
        "realistic",
        "all test patients with the cohort's own modality missingness",
        test,
        np.arange(test.n),
    )


def without(test: ModalityData, modality: str) -> Scenario:
    return Scenario(
        f"without:{modality}",
        f"all test patients with {modality} removed for everyone",
        test.without(modality),
        np.arange(test.n),
    )


def shifted(test: ModalityData, seed: int) -> Scenario:
    """Keep each SHIFT_KEEP modality for exactly that share of its holders (seeded draw)."""
    rng = np.random.default_rng(seed)
    data = test
    parts = []
    for modality, share in SHIFT_KEEP.items():
        if modality not in data.present:
            continue
        holders = np.flatnonzero(data.present[modality])
        kept = rng.permutation(holders)[: round(share * len(holders))]
        keep = np.zeros(data.n, dtype=bool)
        keep[kept] = True
        data = data.mask(modality, keep)
        parts.append(f"{modality} kept for {share:.0%} of the patients who have it")
    for modality in SHIFT_ABSENT:
        if modality in data.present:
            data = data.without(modality)
            parts.append(f"{modality} absent for everyone")
    text = "; ".join(parts) or "no shifted modality in the data"
    return Scenario(
        "shifted",
        f"all test patients in a deployment unlike training: {text}",
        data,
        np.arange(test.n),
    )


def build_scenarios(test: ModalityData, seed: int = 0) -> dict[str, Scenario]:
    """Every scenario, in report order: complete, realistic, without:<m>..., shifted."""
    scenarios = [complete(test), realistic(test)]
    scenarios += [without(test, m) for m in test.modalities]
    scenarios.append(shifted(test, seed))
    return {s.name: s for s in scenarios}
