"""The header of a DICOM instance as DICOM JSON (PS3.18 Annex F), and typed values read from it.

``header_json`` is what pydicom's ``DataElement.to_json_dict`` makes of every element, File Meta
Information (group 0002) first. Converting raw elements to JSON is most of the cost of landing
an instance (about three times the header parse itself), yet the slices of a series repeat
nearly every element byte for byte. So each element's JSON is memoized on the element's raw
encoding: tag, VR, value bytes, byte order, VR mode and character set, which is everything its
JSON depends on. Elements whose conversion also depends on *other* elements are never
memoized: implicit VR elements with an ambiguous dictionary VR ("US or SS" follows
PixelRepresentation), implicit private elements (their VR follows the private creator), UN and
undefined-length sequences. The memo is a pure function cache: the output is byte-identical to
converting every element afresh, so the reader stays stateless in every way that matters.

Bulk data is never copied into the JSON: Pixel Data is not read at all (the header parse stops
before it) and other binary values longer than ``BULK_THRESHOLD`` are replaced, as PS3.18 F.2.6
allows, by a ``BulkDataURI`` note naming the element and its length instead of the bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import warnings
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import _dictionary_vr_fast
from pydicom.valuerep import AMBIGUOUS_VR

# Binary values above this many base64 characters (3 KiB raw) become a BulkDataURI note,
# as DICOMweb servers do: small private blobs stay inline; waveforms, icons and LUTs do not.
BULK_THRESHOLD = 4096
_MEMO_LIMIT = 50_000
# UN is re-typed from the dictionary; SQ items inherit PixelRepresentation from their parent.
_NOT_MEMOIZED_VRS = {"UN", "SQ", *AMBIGUOUS_VR}
# Elements unique to each instance: memoizing them only churns the memo.
_PER_INSTANCE = {0x00020003, 0x00080018, 0x00200013, 0x00200032, 0x00201041, 0x00080033}
_memo: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}


def bulk_note(tag: int, length: int) -> dict[str, str]:
    """The value that stands for an omitted binary value (a URN, as BulkDataURI requires a URI)."""
    return {"BulkDataURI": f"urn:mmlake:bulkdata-omitted?tag={tag:08X}&bytes={length}"}


def _bulk_handler(element: DataElement) -> str:
    value = element.value
    length = len(value) if isinstance(value, bytes | bytearray) else element.length or 0
    return bulk_note(int(element.tag), length)["BulkDataURI"]


def _memo_key(raw: RawDataElement, charset: object) -> tuple[Any, ...] | None:
    """The memo key of a raw element, or None when its JSON depends on other elements."""
    tag, vr = raw.tag, raw.VR
    if tag in _PER_INSTANCE or raw.value is None:
        return None
    if vr is None:  # implicit VR: the VR comes from the dictionary
        if tag >> 16 & 1:
            return None
        try:
            vr = _dictionary_vr_fast(tag)
        except KeyError:
            return None
    if vr in _NOT_MEMOIZED_VRS:
        return None
    return (tag, raw.VR, raw.value, raw.is_little_endian, raw.is_implicit_VR, charset)


def _convert(ds: Dataset, tag: int, raw: Any) -> dict[str, Any]:
    """One element as DICOM JSON; a value pydicom cannot convert is kept losslessly as UN bytes."""
    try:
        return ds[tag].to_json_dict(_bulk_handler, BULK_THRESHOLD)
    except Exception:
        value = getattr(raw, "value", None)
        if isinstance(value, bytes) and value:
            if len(value) * 4 // 3 > BULK_THRESHOLD:
                return {"vr": "UN", **bulk_note(tag, len(value))}
            return {"vr": "UN", "InlineBinary": base64.b64encode(value).decode("ascii")}
        return {"vr": "UN"}


def dataset_json(ds: Dataset, out: dict[str, Any]) -> dict[str, Any]:
    """Add every element of ``ds`` to ``out`` as ``"GGGGEEEE": {...}`` (DICOM JSON)."""
    charset = ds.original_character_set
    if not isinstance(charset, str):  # several character sets (ISO 2022 code extensions)
        charset = tuple(charset)
    memo = _memo
    with warnings.catch_warnings():
        # Odd values are kept as they are; pydicom's per-element warnings would drown the log.
        warnings.simplefilter("ignore")
        for tag, raw in ds.items():
            key = _memo_key(raw, charset) if type(raw) is RawDataElement else None
            if key is not None:
                hit = memo.get(key)
                if hit is not None:
                    out[hit[0]] = hit[1]
                    continue
            name = f"{tag:08X}"
            value = _convert(ds, tag, raw)
            out[name] = value
            if key is not None:
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[key] = (name, value)
    return out


# -- typed values from the JSON --------------------------------------------------------------


def values(header: dict[str, Any], key: str) -> list[Any]:
    element = header.get(key)
    return (element.get("Value") or []) if element else []


def text(header: dict[str, Any], key: str) -> str | None:
    """A string element; multiple values joined with the DICOM separator, blanks as null."""
    found = [str(v) for v in values(header, key) if v is not None and not isinstance(v, dict)]
    joined = "\\".join(found).strip()
    return joined or None


def integer(header: dict[str, Any], key: str) -> int | None:
    """The first value as an int within int32 (US, UL, IS); anything else becomes null."""
    found = values(header, key)
    try:
        number = int(found[0]) if found else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and -(2**31) <= number < 2**31 else None


def number(header: dict[str, Any], key: str) -> float | None:
    numbers = doubles(header, key)
    return numbers[0] if numbers else None


def doubles(header: dict[str, Any], key: str) -> list[float] | None:
    """All values as floats (DS, FD); null when absent or when any value is not a number."""
    found = values(header, key)
    try:
        return [float(v) for v in found] if found else None
    except (TypeError, ValueError):
        return None


_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")
_TM = re.compile(r"^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?$")


def date(header: dict[str, Any], key: str) -> dt.date | None:
    """DA: ``YYYYMMDD``, or ``YYYY.MM.DD`` as ACR-NEMA 2.0 wrote it (PS3.5 6.2, retired form)."""
    raw = text(header, key)
    match = _DA.match(raw.strip()) if raw else None
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def time_of_day(header: dict[str, Any], key: str) -> str | None:
    """TM as ISO ``HH:MM:SS[.ffffff]``; DICOM allows ``HH``, ``HHMM``, ``HHMMSS.F...``.

    Kept as a string: Spark has no time-of-day type, and DICOM times are local (the offset is
    in Timezone Offset From UTC, when a modality sets it at all).
    """
    raw = text(header, key)
    match = _TM.match(raw.strip()) if raw else None
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        return None
    iso = f"{hours}:{minutes or '00'}:{seconds or '00'}"
    return f"{iso}.{fraction}" if fraction else iso
