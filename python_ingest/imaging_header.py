"""The header of a DICOM instance as DICOM JSON (PS3.18 Annex F), and typed values read from it.

``header_json`` is what pydicom's ``DataElement.to_json_dict`` makes of every element, File Meta
Information (group 0002) included. Converting elements is most of the cost of landing an
instance (more than the header parse itself), yet the slices of a series repeat nearly every
element byte for byte. Two memos exploit that without changing a byte of the output:

* the *series part*: every public element except those that differ per instance (SOP Instance
  UID, Instance Number, Image Position...) is keyed together on its raw encoding; a hit gives
  their JSON and the typed columns read from them at once;
* the *element memo*, for the rest (and for files whose series part missed): one element's JSON
  keyed on its tag, VR, value bytes, byte order, VR mode and character set.

Elements whose conversion depends on *other* elements are never memoized: implicit VR elements
with an ambiguous dictionary VR ("US or SS" follows PixelRepresentation), implicit private
elements (their VR follows the private creator), UN, and sequences (items inherit
PixelRepresentation). Per-instance UI, IS and DS values, which miss every memo, are decoded by
a fast path that only accepts what it can decode exactly as pydicom would, and otherwise defers
to pydicom. The memos are pure function caches, bounded, so the reader stays stateless in every
way that matters (the tests compare the output with ``Dataset.to_json_dict``).

Bulk data is never copied into the JSON: Pixel Data is not read at all (the header parse stops
before it) and other binary values longer than ``BULK_THRESHOLD`` are replaced, as PS3.18 F.2.6
allows, by a ``BulkDataURI`` note naming the element and its length instead of the bytes.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import struct
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.valuerep import AMBIGUOUS_VR

# Binary values above this many base64 characters (3 KiB raw) become a BulkDataURI note,
# as DICOMweb servers do: small private blobs stay inline; waveforms, icons and LUTs do not.
BULK_THRESHOLD = 4096
# UN is re-typed from the dictionary; SQ items inherit PixelRepresentation from their parent.
_NOT_MEMOIZED_VRS = {"UN", "SQ", *AMBIGUOUS_VR}
# Elements that usually differ between the instances of a series: kept out of the series part.
PER_INSTANCE = {
    0x00020000,  # File Meta Information Group Length (follows the UID lengths)
    0x00020003,  # Media Storage SOP Instance UID
    0x00080018,  # SOP Instance UID
    0x0008002A,  # Acquisition DateTime
    0x00080032,  # Acquisition Time
    0x00080033,  # Content Time
    0x00180060,  # KVP (tube voltage modulation)
    0x00181060,  # Trigger Time
    0x00181150,  # Exposure Time
    0x00181151,  # X-Ray Tube Current
    0x00181152,  # Exposure
    0x00200012,  # Acquisition Number
    0x00200013,  # Instance Number
    0x00200032,  # Image Position (Patient)
    0x00201041,  # Slice Location
    0x00280106,  # Smallest Image Pixel Value
    0x00280107,  # Largest Image Pixel Value
    0x00281050,  # Window Center
    0x00281051,  # Window Width
}
_ELEMENT_MEMO_LIMIT = 50_000
_SERIES_MEMO_LIMIT = 2_000
_element_memo: dict[tuple[Any, ...], dict[str, Any]] = {}
_series_memo: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any], object, bytes]] = {}
_implicit_vr: dict[int, str | None] = {}  # tag -> dictionary VR when memoizable, else None


def bulk_note(tag: int, length: int) -> dict[str, str]:
    """The value that stands for an omitted binary value (a URN, as BulkDataURI requires a URI)."""
    return {"BulkDataURI": f"urn:mmlake:bulkdata-omitted?tag={tag:08X}&bytes={length}"}


def _bulk_handler(element: DataElement) -> str:
    value = element.value
    length = len(value) if isinstance(value, bytes | bytearray) else element.length or 0
    return bulk_note(int(element.tag), length)["BulkDataURI"]


def _dictionary_vr(tag: int) -> str | None:
    """The VR an implicit VR element of ``tag`` gets, when it depends on nothing else."""
    if tag not in _implicit_vr:
        entry = DicomDictionary.get(tag)
        vr = entry[0] if entry and not tag >> 16 & 1 else None
        _implicit_vr[tag] = None if vr is None or vr in _NOT_MEMOIZED_VRS else vr
    return _implicit_vr[tag]


def _memoizable(tag: int, raw: Any) -> bool:
    """Whether an element's JSON depends on its own encoding only (not on other elements)."""
    if type(raw) is RawDataElement:
        vr = raw.VR
        return raw.value is not None and (
            vr not in _NOT_MEMOIZED_VRS if vr else bool(_dictionary_vr(tag))
        )
    # An element pydicom already converted (File Meta, Specific Character Set): by its value.
    return raw.VR not in _NOT_MEMOIZED_VRS and isinstance(raw.value, str | int | float | bytes)


def _memo_part(tag: int, raw: Any) -> tuple[Any, ...]:
    if type(raw) is RawDataElement:
        return (tag, raw.VR, raw.value, raw.is_little_endian, raw.is_implicit_VR)
    return (tag, raw.VR, type(raw.value), raw.value)


class _Plan:
    """Which elements of a data set layout form the series part; found once per layout.

    A layout is the data set's tags, VRs, element kinds and value types, read with C-level
    ``map`` calls, so that splitting a familiar data set costs a few dictionary lookups instead
    of a Python test per element. Hashed by identity: it stands for its layout in memo keys.
    """

    __slots__ = ("own", "pick", "shared")

    def __init__(self, tags: tuple[int, ...], raws: tuple[Any, ...]) -> None:
        shared = [
            i
            for i, (tag, raw) in enumerate(zip(tags, raws, strict=True))
            if tag not in PER_INSTANCE and not tag >> 16 & 1 and _memoizable(tag, raw)
        ]
        self.shared = tuple(shared)
        self.own = tuple(i for i in range(len(tags)) if i not in set(shared))
        self.pick: Callable[[tuple[Any, ...]], tuple[Any, ...]] = (
            itemgetter(*shared)
            if len(shared) > 1
            else lambda values: tuple(values[i] for i in shared)
        )


_VR = attrgetter("VR")
_VALUE = attrgetter("value")
_PLAN_LIMIT = 1_000
_plans: dict[tuple[Any, ...], _Plan] = {}


def _layout(ds: Dataset) -> tuple[_Plan, tuple[Any, ...], tuple[Any, ...], tuple[int, ...]]:
    """(plan, raw elements, their values, tags) of ``ds``."""
    tags = tuple(map(int, ds.keys()))  # plain ints: BaseTag compares in Python
    raws = tuple(ds.values())
    values = tuple(map(_VALUE, raws))
    first = raws[0] if raws else None
    encoding = (
        (first.is_implicit_VR, first.is_little_endian) if type(first) is RawDataElement else None
    )
    layout = (
        tags,
        tuple(map(_VR, raws)),
        tuple(map(type, raws)),
        tuple(map(type, values)),
        encoding,
    )
    plan = _plans.get(layout)
    if plan is None:
        if len(_plans) >= _PLAN_LIMIT:
            _plans.clear()
        plan = _plans[layout] = _Plan(tags, raws)
    return plan, raws, values, tags


def _convert(ds: Dataset, tag: int, raw: Any) -> dict[str, Any]:
    """One element as DICOM JSON; a value pydicom cannot convert is kept losslessly as UN bytes."""
    fast = _fast_json(raw)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            # Odd values are kept as they are; pydicom's warnings about them would drown the log.
            warnings.simplefilter("ignore")
            return ds[tag].to_json_dict(_bulk_handler, BULK_THRESHOLD)
    except Exception:
        value = getattr(raw, "value", None)
        if isinstance(value, bytes) and value:
            if len(value) * 4 // 3 > BULK_THRESHOLD:
                return {"vr": "UN", **bulk_note(tag, len(value))}
            return {"vr": "UN", "InlineBinary": base64.b64encode(value).decode("ascii")}
        return {"vr": "UN"}


_STRING_VRS = {"CS", "DA", "TM"}  # ASCII-only VRs that pydicom keeps as strings
_BINARY_VRS = {"US": "H", "UL": "L", "SS": "h", "SL": "l", "FL": "f", "FD": "d"}
_SIZES = {code: struct.calcsize("<" + code) for code in _BINARY_VRS.values()}
_FAST_VRS = {"UI", "IS", "DS", *_STRING_VRS, *_BINARY_VRS}
_UI = re.compile(r"[0-9.]+(?:\\[0-9.]+)*")
_IS_ITEM = re.compile(r" *[+-]?[0-9]+ *")
_DS_ITEM = re.compile(r" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *")


def _fast_json(raw: Any) -> dict[str, Any] | None:
    """Per-instance values decoded exactly as pydicom decodes them, when plainly well formed.

    These are the elements no memo can serve (UIDs, instance number, position, times, the
    File Meta group length). Anything unusual (blank items, "5.0" as IS, non-ASCII text) returns
    None, and pydicom converts it.
    """
    if type(raw) is not RawDataElement:
        if raw.VR in ("UL", "US") and type(raw.value) is int:
            return {"vr": raw.VR, "Value": [raw.value]}
        return None
    vr = raw.VR or _dictionary_vr(raw.tag)
    if vr not in _FAST_VRS or raw.value is None:
        return None
    code = _BINARY_VRS.get(vr)
    if code is not None:  # binary numbers: as pydicom's convert_numbers unpacks them
        count, rest = divmod(len(raw.value), _SIZES[code])
        if rest:
            return None
        if not count:
            return {"vr": vr}
        order = "<" if raw.is_little_endian else ">"
        return {"vr": vr, "Value": list(struct.unpack(f"{order}{count}{code}", raw.value))}
    try:
        decoded = raw.value.decode("ascii").rstrip(" \x00")
    except UnicodeDecodeError:
        return None
    if not decoded:
        return {"vr": vr}
    items = decoded.split("\\")
    if vr in _STRING_VRS:  # pydicom's multi_string: strip trailing padding, split on "\\"
        return {"vr": vr, "Value": items}
    if vr == "UI":
        return {"vr": vr, "Value": items} if _UI.fullmatch(decoded) else None
    if vr == "IS":
        if all(_IS_ITEM.fullmatch(item) for item in items):
            return {"vr": vr, "Value": [int(item) for item in items]}
        return None
    if all(_DS_ITEM.fullmatch(item) for item in items):
        return {"vr": vr, "Value": [float(item) for item in items]}
    return None


def _element_json(ds: Dataset, tag: int, raw: Any, charset: object) -> dict[str, Any]:
    if tag in PER_INSTANCE or not _memoizable(tag, raw):
        return _convert(ds, tag, raw)
    key = (*_memo_part(tag, raw), charset)
    hit = _element_memo.get(key)
    if hit is None:
        if len(_element_memo) >= _ELEMENT_MEMO_LIMIT:
            _element_memo.clear()
        hit = _element_memo[key] = _convert(ds, tag, raw)
    return hit


def _charset(ds: Dataset) -> object:
    charset = ds.original_character_set
    return charset if isinstance(charset, str) else tuple(charset)


@dataclass(slots=True)
class Header:
    """A header as DICOM JSON in two parts: the series part (shared, memoized: never mutate
    it) and the instance's own elements, to which the reader may add (Pixel Data's note)."""

    series_json: dict[str, Any]
    series_text: bytes  # series_json serialized once, when first seen
    instance_json: dict[str, Any]
    fields: dict[str, Any]  # typed values read from both
    series: object  # stands for the series part: equal tokens, equal series parts
    instance_fields: frozenset[str]  # the fields read from per-instance elements

    def __contains__(self, key: str) -> bool:
        return key in self.series_json or key in self.instance_json

    def add(self, elements: dict[str, Any]) -> None:
        """Add elements to the instance part (never replacing one already there)."""
        for key, value in elements.items():
            if key not in self:
                self.instance_json[key] = value

    def text(self) -> str:
        """The whole header as one JSON object: the series part's elements, then the
        instance's, each in tag order (JSON objects are unordered; this order is fixed by the
        file alone, so equal files give equal text)."""
        own = orjson.dumps(self.instance_json, option=orjson.OPT_SORT_KEYS)
        if len(self.series_text) <= 2:
            return own.decode()
        if len(own) <= 2:
            return self.series_text.decode()
        return (self.series_text[:-1] + b"," + own[1:]).decode()


def header_json(
    datasets: Iterable[Dataset], fields: Callable[[dict[str, Any]], dict[str, Any]]
) -> Header:
    """DICOM JSON of every element of ``datasets`` and the ``fields`` read from it.

    ``fields`` maps a JSON document to typed values for the keys it holds; it must be a pure
    function, as its result for the series part is memoized with the JSON.
    """
    layouts = [(ds, _charset(ds), *_layout(ds)) for ds in datasets]
    series_key = tuple(
        (plan, charset, plan.pick(values)) for _, charset, plan, _, values, _ in layouts
    )
    hit = _series_memo.get(series_key)
    if hit is None:
        series_json = {
            f"{tags[i]:08X}": _element_json(ds, tags[i], raws[i], charset)
            for ds, charset, plan, raws, _, tags in layouts
            for i in plan.shared
        }
        text = orjson.dumps(series_json, option=orjson.OPT_SORT_KEYS)
        hit = (series_json, fields(series_json), object(), text)
        if len(_series_memo) >= _SERIES_MEMO_LIMIT:
            _series_memo.clear()
        _series_memo[series_key] = hit
    instance_json = {
        f"{tags[i]:08X}": _element_json(ds, tags[i], raws[i], charset)
        for ds, charset, plan, raws, _, tags in layouts
        for i in plan.own
    }
    instance_fields = fields(instance_json)
    return Header(
        hit[0],
        hit[3],
        instance_json,
        {**hit[1], **instance_fields},
        hit[2],
        frozenset(instance_fields),
    )


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


_DA = re.compile(r"(\d{4})\.?(\d{2})\.?(\d{2})")
_TM = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?)?")


def date(header: dict[str, Any], key: str) -> dt.date | None:
    """DA: ``YYYYMMDD``, or ``YYYY.MM.DD`` as ACR-NEMA 2.0 wrote it (PS3.5 6.2, retired form)."""
    raw = text(header, key)
    match = _DA.fullmatch(raw) if raw else None
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
    match = _TM.fullmatch(raw) if raw else None
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes or 0) > 59 or int(seconds or 0) > 60:
        return None
    iso = f"{hours}:{minutes or '00'}:{seconds or '00'}"
    return f"{iso}.{fraction}" if fraction else iso
