"""The header of a DICOM instance as DICOM JSON (PS3.18 Annex F), fast enough for bronze.

``header_json`` is what pydicom's ``DataElement.to_json_dict`` makes of every element, File Meta
Information (group 0002) included. Converting elements is most of the cost of landing an
instance (more than the header parse itself), yet the slices of a series repeat nearly every
element byte for byte. Two memos exploit that without changing a byte of the output:

* the *series part*: every public element except those that differ per instance (SOP Instance
  UID, Instance Number, Image Position...) is keyed together on its raw encoding; a hit gives
  their JSON and the typed columns read from them at once;
* the *element memo*, for the rest (and for files whose series part missed): one element's JSON
  keyed on its tag, VR, value bytes, byte order, VR mode and character set.

Elements whose conversion depends on *other* elements are memoized with that context or not
at all: implicit private elements take their VR from the private dictionary through their
private creator (which joins their key); implicit VR elements with an ambiguous dictionary VR
("US or SS" follows PixelRepresentation) and Implicit VR sequences (their items inherit it) are
converted afresh. Values no memo serves (per-instance UIDs, numbers, times; ASCII text) are
decoded by a fast path that accepts only what it decodes exactly as pydicom would and leaves
the rest to pydicom; sequence items go through the same machinery element by element. The
memos are pure, bounded function caches, so the reader stays stateless in every way that
matters: the tests compare every row's JSON with ``Dataset.to_json_dict``.

Bulk data is never copied into the JSON: Pixel Data is not read at all (the header parse stops
before it) and other binary values longer than ``BULK_THRESHOLD`` are replaced, as PS3.18 F.2.6
allows, by a ``BulkDataURI`` note naming the element and its length instead of the bytes.
"""

from __future__ import annotations

import base64
import re
import struct
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from pydicom.datadict import DicomDictionary, private_dictionary_VR
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
_ELEMENT_MEMO_LIMIT = 20_000
_MEMO_VALUE_BYTES = 4096  # longer values are converted each time, to bound the memo's memory
_SERIES_MEMO_LIMIT = 2_000
_element_memo: dict[tuple[Any, ...], dict[str, Any]] = {}
_series_memo: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any], object, bytes]] = {}
_implicit_vr: dict[int, str | None] = {}  # tag -> dictionary VR when memoizable, else None
_private_vrs: dict[tuple[int, str], str] = {}  # (tag with block 00, creator) -> VR


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
    """Whether an element's JSON depends on its own encoding only (not on other elements).

    An Explicit VR sequence of defined length qualifies: its items are in its bytes, and only
    Implicit VR items can hold the ambiguous VRs that would look at the parent data set.
    """
    if type(raw) is RawDataElement:
        vr = raw.VR
        if raw.value is None:
            return False
        if vr == "SQ":
            return not raw.is_implicit_VR
        return vr not in _NOT_MEMOIZED_VRS if vr else bool(_dictionary_vr(tag))
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
            # Sequences stay out: references to other instances differ from slice to slice.
            if tag not in PER_INSTANCE
            and not tag >> 16 & 1
            and _VR(raw) != "SQ"
            and _memoizable(tag, raw)
        ]
        self.shared = tuple(shared)
        in_shared = set(shared)
        self.own = tuple(i for i in range(len(tags)) if i not in in_shared)
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


def _convert(ds: Dataset, tag: int, raw: Any, vr: str | None = None) -> dict[str, Any]:
    """One element as DICOM JSON; a value pydicom cannot convert is kept losslessly as UN bytes.

    ``vr`` is the VR of an implicit VR element when the caller knows it (private elements).
    """
    fast = _fast_json(raw, vr)
    if fast is not None:
        return fast
    try:
        with warnings.catch_warnings():
            # Odd values are kept as they are; pydicom's warnings about them would drown the log.
            warnings.simplefilter("ignore")
            element = ds[tag]
            if element.VR == "SQ":  # items element by element, through the memos as well
                return {"vr": "SQ", "Value": [_item_json(item) for item in element.value]}
            return element.to_json_dict(_bulk_handler, BULK_THRESHOLD)
    except Exception:
        value = getattr(raw, "value", None)
        if isinstance(value, bytes) and value:
            if len(value) * 4 // 3 > BULK_THRESHOLD:
                return {"vr": "UN", **bulk_note(tag, len(value))}
            return {"vr": "UN", "InlineBinary": base64.b64encode(value).decode("ascii")}
        return {"vr": "UN"}


def _item_json(item: Dataset) -> dict[str, Any]:
    """A sequence item as pydicom's ``Dataset.to_json_dict`` makes it, element by element."""
    charset = _charset(item)
    return {f"{tag:08X}": _element_json(item, int(tag), raw, charset) for tag, raw in item.items()}


_STRING_VRS = {"AS", "CS", "DA", "TM"}  # ASCII-only VRs that pydicom keeps as strings
_BINARY_VRS = {"US": "H", "UL": "L", "SS": "h", "SL": "l", "FL": "f", "FD": "d"}
_SIZES = {code: struct.calcsize("<" + code) for code in _BINARY_VRS.values()}
# Text in the data set's character set; pure ASCII (no ISO 2022 escape) decodes alike in all.
_TEXT_VRS = {"SH", "LO", "UC"}
_SINGLE_TEXT_VRS = {"ST", "LT", "UT"}
_FAST_VRS = {"UI", "IS", "DS", *_STRING_VRS, *_BINARY_VRS, *_TEXT_VRS, *_SINGLE_TEXT_VRS}
_UI = re.compile(r"[0-9.]+(?:\\[0-9.]+)*")
_IS_ITEM = re.compile(r" *[+-]?[0-9]+ *")
_DS_ITEM = re.compile(r" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *")


def _fast_json(raw: Any, vr: str | None = None) -> dict[str, Any] | None:
    """Per-instance values decoded exactly as pydicom decodes them, when plainly well formed.

    These are the elements no memo can serve (UIDs, instance number, position, times, the
    File Meta group length). Anything unusual (blank items, "5.0" as IS, non-ASCII text) returns
    None, and pydicom converts it.
    """
    if type(raw) is not RawDataElement:
        if raw.VR in ("UL", "US") and type(raw.value) is int:
            return {"vr": raw.VR, "Value": [raw.value]}
        return None
    vr = raw.VR or vr or _dictionary_vr(raw.tag)
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
    value = raw.value
    if not value.isascii() or b"\x1b" in value:  # escape sequences switch ISO 2022 sets
        return None
    if vr in _TEXT_VRS:  # pydicom's convert_text: split, then strip each value's padding
        items = [item.rstrip("\x00 ") for item in value.decode("ascii").split("\\")]
        return {"vr": vr, "Value": items} if len(items) > 1 or items[0] else {"vr": vr}
    if vr in _SINGLE_TEXT_VRS:  # pydicom's convert_single_string: no split
        text = value.decode("ascii").rstrip("\x00 ")
        return {"vr": vr, "Value": [text]} if text else {"vr": vr}
    decoded = value.decode("ascii").rstrip(" \x00")
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
    value = raw.value
    if tag in PER_INSTANCE or (isinstance(value, bytes) and len(value) > _MEMO_VALUE_BYTES):
        return _convert(ds, tag, raw)
    if tag >> 16 & 1 and type(raw) is RawDataElement and raw.VR in (None, "UN"):
        # A private element whose VR the private dictionary gives, by its private creator.
        vr, creator = _private_vr(ds, tag)
        if (vr in _NOT_MEMOIZED_VRS and vr != "UN") or value is None:
            return _convert(ds, tag, raw, vr if raw.VR is None else None)
        key: tuple[Any, ...] = (*_memo_part(tag, raw), creator, charset)
    elif _memoizable(tag, raw):
        vr, key = None, (*_memo_part(tag, raw), charset)
    else:
        return _convert(ds, tag, raw)
    hit = _element_memo.get(key)
    if hit is None:
        if len(_element_memo) >= _ELEMENT_MEMO_LIMIT:
            _element_memo.clear()
        hit = _element_memo[key] = _convert(ds, tag, raw, vr if raw.VR is None else None)
    return hit


def _private_vr(ds: Dataset, tag: int) -> tuple[str, object]:
    """(VR, private creator) of a private element without explicit VR, as pydicom finds them
    (PS3.5 7.8.1: the creator (gggg,00xx) reserves the block (gggg,xx00-xxFF))."""
    element = tag & 0xFFFF
    if element < 0x0100:  # private creators are LO; (gggg,0000-000F) are unknown
        return ("LO" if element >= 0x0010 else "UN"), None
    creator_element = ds.get(tag & 0xFFFF0000 | element >> 8)
    creator = creator_element.value if creator_element is not None else None
    if not creator or not isinstance(creator, str):
        return "UN", creator if isinstance(creator, str) else None
    key = (tag & 0xFFFF00FF, creator)
    vr = _private_vrs.get(key)
    if vr is None:
        try:
            vr = private_dictionary_VR(tag, creator)
        except KeyError:
            vr = "UN"
        if len(_private_vrs) >= _ELEMENT_MEMO_LIMIT:
            _private_vrs.clear()
        _private_vrs[key] = vr
    return vr, creator


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
