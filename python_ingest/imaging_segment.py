"""Find the lesion in a series by a documented, modality- and body-part-aware rule.

These are classical intensity rules, not a trained model: the bronze feature pass has to be
deterministic, explainable and runnable without weights. Each rule finds *the one region of a
lesion's intensity enclosed by its host tissue*, which is how the radiologist's eye separates a
solid nodule from aerated lung or a hypo-attenuating metastasis from enhancing liver:

``ct_chest_lung_hole`` (CT, CHEST / LUNG / THORAX)
    Lung = air below -400 HU (between aerated lung at about -850 HU and soft tissue at 0 HU)
    that does not touch the image border (outside air does), slice by slice. A nodule is a
    hole in it: filled lung minus lung. The lesion is the largest 3-D connected hole.
``ct_abdomen_liver_hole`` (CT, ABDOMEN / LIVER)
    Liver = the largest connected region of 75-140 HU on each slice (portal-venous liver
    enhances to about 100-120 HU; hypo-attenuating metastases stay below 75 HU). The lesion
    is the largest 3-D connected hole in it.
``mr_brain_enhancing`` (MR, BRAIN / HEAD, post-contrast T1)
    Enhancing tissue = signal above 1.2 x the median of the head (voxels above 20 % of the
    99th percentile: mostly white and grey matter). MR values have no absolute unit, so the
    threshold is relative: on T1, white matter is the brightest large tissue, scalp fat is
    about 1.1 x white matter and an enhancing mass 1.6-1.9 x (about 820 on the 12-bit scale of
    the synthetic series, whose white matter is about 680; a fixed 900 there loses the darkest
    voxels of very heterogeneous masses). The lesion is the largest 3-D region above it,
    holes filled per slice (a necrotic core belongs to the mass).

Anything else, or no region of at least ``MIN_LESION_VOXELS`` voxels, gets no lesion: the
caller then describes the whole volume (``segmentation='none'``). Slices that were not
decoded (NaN) read as soft tissue (0) and never belong to a lesion.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

NONE = "none"
MIN_LESION_VOXELS = 1  # at 5 mm voxels a 10 mm nodule (the RECIST minimum) is one voxel
LUNG_AIR_HU = -400.0
LIVER_HU = (75.0, 140.0)
ENHANCEMENT_RATIO = 1.2
# Recorded with every row: a change of rule recomputes the series it applies to.
RULE_SETTINGS = {
    "lung_air_hu": LUNG_AIR_HU,
    "liver_hu": list(LIVER_HU),
    "enhancement_ratio": ENHANCEMENT_RATIO,
}
_CHEST = {"CHEST", "LUNG", "THORAX", "CHESTABDOMEN", "CHEST_ABDOMEN"}
_ABDOMEN = {"ABDOMEN", "LIVER", "ABDOMENPELVIS", "ABDOMEN_PELVIS"}
_BRAIN = {"BRAIN", "HEAD"}


def rule_for(modality: str | None, body_part: str | None) -> str:
    """The segmentation rule that applies to a series (``none`` when none does)."""
    part = (body_part or "").strip().upper().replace(" ", "")
    if modality == "CT" and part in _CHEST:
        return "ct_chest_lung_hole"
    if modality == "CT" and part in _ABDOMEN:
        return "ct_abdomen_liver_hole"
    if modality == "MR" and part in _BRAIN:
        return "mr_brain_enhancing"
    return NONE


def segment(values: np.ndarray, rule: str) -> np.ndarray | None:
    """The lesion mask (bool, same shape as ``values``), or None when the rule finds none."""
    if rule == NONE or values.size == 0:
        return None
    valid = ~np.isnan(values)
    volume = np.where(valid, values, 0.0)
    mask = _RULES[rule](volume) & valid
    return mask if int(mask.sum()) >= MIN_LESION_VOXELS else None


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest connected component (face connectivity) of ``mask``."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == 1 + int(np.argmax(sizes))


def _holes(organ: np.ndarray) -> np.ndarray:
    """The largest 3-D region enclosed by ``organ`` on its slices but not part of it."""
    filled = np.stack([ndimage.binary_fill_holes(plane) for plane in organ])
    return _largest(filled & ~organ)


def _chest(volume: np.ndarray) -> np.ndarray:
    lungs = np.zeros(volume.shape, dtype=bool)
    for k, plane in enumerate(volume < LUNG_AIR_HU):
        labels, _ = ndimage.label(plane)
        border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        lungs[k] = (labels > 0) & ~np.isin(labels, np.unique(border))
    return _holes(lungs)


def _abdomen(volume: np.ndarray) -> np.ndarray:
    low, high = LIVER_HU
    liver = np.stack([_largest(plane) for plane in (volume >= low) & (volume <= high)])
    return _holes(liver)


def _brain(volume: np.ndarray) -> np.ndarray:
    top = float(np.percentile(volume, 99))
    if top <= 0:
        return np.zeros(volume.shape, dtype=bool)
    head = volume[volume > 0.2 * top]
    threshold = ENHANCEMENT_RATIO * float(np.median(head))
    bright = _largest(volume > threshold)
    return np.stack([ndimage.binary_fill_holes(plane) for plane in bright])


_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ct_chest_lung_hole": _chest,
    "ct_abdomen_liver_hole": _abdomen,
    "mr_brain_enhancing": _brain,
}


def longest_axial_diameter(mask: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """RECIST-style longest in-plane diameter (mm): the largest distance between two voxel
    centres of the lesion on one axial slice, plus one pixel (a voxel's own extent), as the
    generator's ground truth measures it. Only boundary voxels can be the farthest pair."""
    _, dy, dx = spacing
    best = 0.0
    for plane in mask:
        if not plane.any():
            continue
        edge = plane & ~ndimage.binary_erosion(plane)
        points = np.argwhere(edge) * np.array([dy, dx])
        diff = points[:, None, :] - points[None, :, :]
        best = max(best, float(np.sqrt((diff**2).sum(-1)).max()) + min(dy, dx))
    return best
