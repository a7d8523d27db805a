"""Decode the pixels of one DICOM series into a 3-D volume of real-world values with its spacing.

Bronze ``imaging_instances`` never decodes pixels; the feature pass does, here. A series is
whatever shares a Series Instance UID, which on real archives is not always one clean stack:
the same instance can be stored twice (pydicom's test files hold one MR slice in seven transfer
syntaxes under one SOP Instance UID), a localizer series mixes three orientations, a slice may
be missing (quarantined as truncated), a frame may not decode (no JPEG 2000 plugin). So:

* every instance is decoded independently; one that fails is counted and named, never fatal;
* the first decodable copy of a SOP Instance UID is kept (files in path order);
* the volume is the largest set of frames sharing Rows x Columns and orientation, sorted along
  the slice normal (ImagePositionPatient . (row x column direction), PS3.3 C.7.6.2.1.1), or by
  InstanceNumber where positions are absent; frames at an already-taken position are dropped;
* a gap of 2-8 slice spacings (a missing slice) is filled with NaN slices, so physical extents
  stay right; those voxels are excluded from every feature;
* values are real-world: Modality LUT / RescaleSlope x stored + RescaleIntercept (HU on CT),
  DoseGridScaling on RT Dose (Gy); colour frames become luminance (ITU-R BT.601 weights).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from python_ingest.imaging_native import NativeLayout, read_native

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)
_NO_PLUGIN = re.compile(r"Unable to decompress '(.+?)' pixel data because all plugins are missing")
_MAX_GAP_SLICES = 8  # a larger jump is a separate block of the series, not a missing slice


@dataclass
class Frame:
    """One decoded 2-D frame and where it sits."""

    pixels: np.ndarray  # float32 (rows, columns), real-world values
    orientation: tuple[float, ...] | None  # ImageOrientationPatient, rounded
    position: float | None  # mm along the slice normal
    instance_number: int | None
    pixel_spacing: tuple[float, float] | None  # (between rows, between columns) in mm
    slice_spacing: float | None  # SpacingBetweenSlices, else SliceThickness


@dataclass
class Volume:
    """A series as one array: ``values[z, y, x]``, NaN where no slice was decoded."""

    values: np.ndarray
    spacing: tuple[float, float, float]  # (z, y, x) mm
    n_decoded: int  # instances whose pixels decoded
    notes: list[str] = field(default_factory=list)  # what was assumed, dropped or not decoded

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.values)


@dataclass
class _Decoded:
    frames: list[Frame]
    sop_uid: str | None


def _floats(value: Any) -> list[float] | None:
    try:
        return [float(v) for v in value] if value is not None else None
    except (TypeError, ValueError):
        return None


def _functional(ds: pydicom.Dataset, frame: int, sequence: str, keyword: str) -> Any:
    """An attribute of an enhanced multi-frame image: per-frame group, else shared group."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), (None, 0)):
        name = groups or "SharedFunctionalGroupsSequence"
        items = ds.get(name)
        if not items or len(items) <= index:
            continue
        inner = items[index].get(sequence)
        if inner and keyword in inner[0]:
            return inner[0].get(keyword)
    return None


def _real_world(ds: pydicom.Dataset, raw: np.ndarray) -> np.ndarray:
    """Stored values to real-world values, per frame array ``(frames, rows, cols[, samples])``."""
    if raw.ndim == 4 or (raw.ndim == 3 and int(ds.get("SamplesPerPixel", 1) or 1) == 3):
        # Colour (RGB, or YBR that pydicom already converted to RGB): luminance.
        return (raw[..., :3].astype(np.float64) @ _LUMA).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = apply_modality_lut(raw, ds)
    scaling = ds.get("DoseGridScaling")  # RT Dose: stored integers x scaling = dose in Gy
    if scaling is not None and ds.get("Modality") == "RTDOSE":
        values = values * float(scaling)
    return np.asarray(values, dtype=np.float32)


_TOP_LEVEL = (
    "ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "ImagerPixelSpacing",
    "SpacingBetweenSlices", "SliceThickness", "InstanceNumber", "SOPInstanceUID",
    "GridFrameOffsetVector", "NumberOfFrames", "SamplesPerPixel",
)  # fmt: skip
# Where an enhanced multi-frame image keeps what a single-frame image has at the top level.
_GROUPS = {
    "ImageOrientationPatient": "PlaneOrientationSequence",
    "ImagePositionPatient": "PlanePositionSequence",
    "PixelSpacing": "PixelMeasuresSequence",
    "SpacingBetweenSlices": "PixelMeasuresSequence",
    "SliceThickness": "PixelMeasuresSequence",
}


def decode_instance(path: Path) -> _Decoded:
    """Every frame of one instance. Raises whatever pydicom raises when pixels don't decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        raw = ds.pixel_array
    top = {keyword: ds.get(keyword) for keyword in _TOP_LEVEL}  # pydicom lookups are slow
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    n_frames = _int(top["NumberOfFrames"]) or 1
    if n_frames == 1 and raw.ndim == (3 if (_int(top["SamplesPerPixel"]) or 1) > 1 else 2):
        raw = raw[None]
    values = _real_world(ds, raw)
    offsets = _floats(top["GridFrameOffsetVector"])  # RT Dose: frame z offsets
    if offsets is not None and len(offsets) != values.shape[0]:
        offsets = None

    def attr(k: int, keyword: str) -> Any:
        value = top[keyword]
        if keyword == "ImagePositionPatient" and n_frames > 1 and offsets is None:
            value = None  # a multi-frame image's own position is that of no frame but the first
        if value in (None, "") and enhanced and keyword in _GROUPS:
            value = _functional(ds, k, _GROUPS[keyword], keyword)
        return value

    frames = []
    per_frame = enhanced or offsets is not None
    for k in range(values.shape[0]):
        if k == 0 or per_frame:
            orientation = _floats(attr(k, "ImageOrientationPatient"))
            origin = _floats(attr(k, "ImagePositionPatient"))
            spacing = _floats(attr(k, "PixelSpacing") or top["ImagerPixelSpacing"])
            between = _positive(attr(k, "SpacingBetweenSlices"))
            slice_spacing = between or _positive(attr(k, "SliceThickness"))
            position = _position(orientation, origin)
            if position is not None and offsets:
                position += offsets[k]
        frames.append(
            Frame(
                pixels=values[k],
                orientation=_rounded(orientation),
                position=position,
                instance_number=_int(top["InstanceNumber"]),
                pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 else None,
                slice_spacing=slice_spacing,
            )
        )
    return _Decoded(frames, str(top["SOPInstanceUID"] or "") or None)


def _decode(path: Path, layout: NativeLayout | None) -> _Decoded:
    """One instance: straight from the file when bronze knows its layout, else by pydicom."""
    if layout is not None:
        try:
            pixels = read_native(path, layout)
        except (OSError, ValueError):
            return decode_instance(path)  # pydicom says what is wrong, or reads what changed
        position = _position(layout.orientation, layout.position)
        spacing = layout.pixel_spacing
        frame = Frame(
            pixels=pixels,
            orientation=_rounded(layout.orientation),
            position=position,
            instance_number=layout.instance_number,
            pixel_spacing=(spacing[0], spacing[1]) if spacing and len(spacing) == 2 else None,
            slice_spacing=layout.slice_spacing,
        )
        return _Decoded([frame], layout.sop_instance_uid)
    return decode_instance(path)


def _position(orientation: Sequence[float] | None, origin: Sequence[float] | None) -> float | None:
    """Distance along the slice normal (row direction x column direction), PS3.3 C.7.6.2.1.1."""
    if not orientation or len(orientation) != 6 or not origin or len(origin) != 3:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.dot(origin, normal))


def _rounded(orientation: Sequence[float] | None) -> tuple[float, ...] | None:
    return tuple(round(v, 3) for v in orientation) if orientation else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _positive(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def why_not_decoded(exc: BaseException) -> str:
    """pydicom's reason in one line (its list of missing plugins runs over several)."""
    text = str(exc).strip()
    missing = _NO_PLUGIN.search(text)
    if missing:
        return f"no pixel decoder installed for {missing[1]}"
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def load_volume(
    paths: Sequence[Path], layouts: Sequence[NativeLayout | None] | None = None
) -> Volume:
    """The series' volume; an empty one (``values.size == 0``) when no frame decoded, with
    the reasons in ``notes``. ``layouts`` (aligned with ``paths``) lets native slices be read
    without pydicom (``imaging_native``)."""
    frames: list[Frame] = []
    seen_uids: set[str] = set()
    failures: Counter[str] = Counter()
    n_decoded = duplicates = 0
    known = list(layouts) if layouts is not None else [None] * len(paths)
    for path, layout in sorted(zip(paths, known, strict=True), key=lambda pair: pair[0]):
        try:
            decoded = _decode(path, layout)
        except Exception as exc:  # a corrupt or undecodable instance never stops the series
            failures[why_not_decoded(exc)] += 1
            continue
        n_decoded += 1
        if decoded.sop_uid is not None:
            if decoded.sop_uid in seen_uids:
                duplicates += 1
                continue
            seen_uids.add(decoded.sop_uid)
        frames.extend(decoded.frames)
    notes = [f"{n} instance(s) not decoded ({reason})" for reason, n in sorted(failures.items())]
    if duplicates:
        notes.append(f"{duplicates} decoded copies of an instance already used were skipped")
    if not frames:
        return Volume(np.empty((0, 0, 0), np.float32), (1.0, 1.0, 1.0), n_decoded, notes)
    return _stack(frames, n_decoded, notes)


def _stack(frames: list[Frame], n_decoded: int, notes: list[str]) -> Volume:
    groups: dict[tuple[Any, ...], list[Frame]] = {}
    for frame in frames:
        groups.setdefault((frame.pixels.shape, frame.orientation), []).append(frame)
    chosen = max(groups.values(), key=len)  # max keeps the first of equal sizes
    if len(chosen) < len(frames):
        notes.append(
            f"{len(frames) - len(chosen)} of {len(frames)} frames have another size or "
            "orientation than the largest stack and were left out"
        )
    if all(f.position is not None for f in chosen):
        chosen.sort(key=lambda f: f.position)  # type: ignore[arg-type, return-value]
        kept = [chosen[0]]
        for frame in chosen[1:]:
            if abs(frame.position - kept[-1].position) > 1e-3:  # type: ignore[operator]
                kept.append(frame)
        if len(kept) < len(chosen):
            notes.append(f"{len(chosen) - len(kept)} frames at an already taken position dropped")
        chosen = kept
    else:
        chosen.sort(key=lambda f: f.instance_number if f.instance_number is not None else 0)
    first = chosen[0]
    pixel = first.pixel_spacing
    if pixel is None:
        notes.append("no PixelSpacing: 1 mm pixels assumed")
        pixel = (1.0, 1.0)
    slices, dz = _fill_gaps(chosen, notes)
    values = np.stack(slices).astype(np.float32, copy=False)
    return Volume(values, (dz, pixel[0], pixel[1]), n_decoded, notes)


def _fill_gaps(frames: list[Frame], notes: list[str]) -> tuple[list[np.ndarray], float]:
    """Slices in order, NaN slices where one is missing from a regular grid; slice spacing."""
    positions = [f.position for f in frames]
    declared = frames[0].slice_spacing
    if len(frames) < 2 or any(p is None for p in positions):
        if declared is None:
            notes.append("no slice spacing: 1 mm assumed")
        return [f.pixels for f in frames], declared or 1.0
    steps = np.diff(np.asarray(positions, dtype=np.float64))
    dz = float(np.median(steps))
    slices = [frames[0].pixels]
    missing = irregular = 0
    for step, frame in zip(steps, frames[1:], strict=True):
        k = round(step / dz)
        on_grid = abs(step - k * dz) < 0.1 * dz
        if on_grid and 2 <= k <= _MAX_GAP_SLICES:
            slices.extend(np.full_like(frame.pixels, np.nan) for _ in range(k - 1))
            missing += k - 1
        elif not (on_grid and k == 1):
            irregular += 1  # stacked as it is: a jump the grid cannot explain
        slices.append(frame.pixels)
    if missing:
        notes.append(f"{missing} missing slice(s) left empty")
    if irregular:
        notes.append(f"{irregular} irregular slice step(s): median spacing {dz:g} mm used")
    return slices, dz
