"""Read an uncompressed greyscale slice straight from its file, with what bronze already knows.

Most CT and MR slices are native (uncompressed) little-endian, one frame, one sample per
pixel. For those, ``imaging_instances`` holds everything a decoder needs: where Pixel Data's
value starts (``pixel_data_offset``), Rows, Columns, Bits Allocated / Stored, Pixel
Representation and the rescale. One ``numpy.fromfile`` then replaces pydicom's full parse and
decode, which is most of the feature pass's cost; the values are the same (the tests compare
both on every generated slice). Anything else (compressed, big-endian, deflated, colour,
multi-frame, a Modality LUT Sequence, RT Dose scaling, a half-present rescale) is left to
pydicom (``imaging_volume.decode_instance``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Implicit VR Little Endian and Explicit VR Little Endian: the native little-endian syntaxes.
NATIVE_LITTLE_ENDIAN = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})
_GREYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})


@dataclass(frozen=True)
class NativeLayout:
    """How one native greyscale slice lies in its file, and where it sits in the patient."""

    offset: int  # first byte of Pixel Data's value
    rows: int
    columns: int
    bits_allocated: int  # 8 or 16
    bits_stored: int
    signed: bool  # Pixel Representation 1: two's complement
    slope: float | None  # both None: no rescale (values as stored)
    intercept: float | None
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    slice_spacing: float | None  # SpacingBetweenSlices, else SliceThickness
    instance_number: int | None
    sop_instance_uid: str | None


def layout_from_row(row: dict[str, Any]) -> NativeLayout | None:
    """The layout of a bronze ``imaging_instances`` row, or None when pydicom must decode it.

    ``has_modality_lut`` (a Modality LUT Sequence, which replaces the rescale) is computed by
    the caller from ``header_json``.
    """
    bits, stored = row.get("bits_allocated"), row.get("bits_stored")
    slope, intercept = row.get("rescale_slope"), row.get("rescale_intercept")
    eligible = (
        row.get("transfer_syntax_uid") in NATIVE_LITTLE_ENDIAN
        and row.get("pixel_data_offset") is not None
        and (row.get("number_of_frames") or 1) == 1
        and (row.get("samples_per_pixel") or 1) == 1
        and row.get("photometric_interpretation") in _GREYSCALE
        and bits in (8, 16)
        and stored is not None
        and 1 <= stored <= bits
        and row.get("pixel_representation") in (0, 1)
        and (row.get("rows") or 0) > 0
        and (row.get("columns") or 0) > 0
        and row.get("modality") != "RTDOSE"
        and not row.get("has_modality_lut")
        and (slope is None) == (intercept is None)
    )
    if not eligible:
        return None
    between, thickness = row.get("spacing_between_slices"), row.get("slice_thickness")
    return NativeLayout(
        offset=int(row["pixel_data_offset"]),
        rows=int(row["rows"]),
        columns=int(row["columns"]),
        bits_allocated=int(bits),
        bits_stored=int(stored),
        signed=row["pixel_representation"] == 1,
        slope=slope,
        intercept=intercept,
        orientation=_tuple(row.get("image_orientation_patient")),
        position=_tuple(row.get("image_position_patient")),
        pixel_spacing=_tuple(row.get("pixel_spacing")),
        slice_spacing=between if between and between > 0 else _positive(thickness),
        instance_number=row.get("instance_number"),
        sop_instance_uid=row.get("sop_instance_uid"),
    )


def _positive(value: float | None) -> float | None:
    return value if value is not None and value > 0 else None


def _tuple(values: Any) -> tuple[float, ...] | None:
    return tuple(float(v) for v in values) if values else None


def read_native(path: Path, layout: NativeLayout) -> np.ndarray:
    """Real-world values (float32, rows x columns) of the slice, as pydicom would give them."""
    count = layout.rows * layout.columns
    kind = "i" if layout.signed else "u"
    dtype = np.dtype(f"<{kind}{layout.bits_allocated // 8}")
    raw = np.fromfile(path, dtype=dtype, count=count, offset=layout.offset)
    if raw.size != count:
        raise ValueError(f"Pixel Data holds {raw.size} of {count} pixels (the file changed?)")
    unused = layout.bits_allocated - layout.bits_stored
    if unused:
        # PS3.5 8.1.1: bits above Bits Stored carry nothing (overlays, once); a signed value
        # is two's complement within Bits Stored, so its sign bit is extended.
        raw = (raw << unused) >> unused if layout.signed else raw & ((1 << layout.bits_stored) - 1)
    values = raw.reshape(layout.rows, layout.columns)
    if layout.slope is None:
        return values.astype(np.float32)
    assert layout.intercept is not None
    return (values.astype(np.float64) * layout.slope + layout.intercept).astype(np.float32)
