"""Imaging reader: one bronze row per DICOM instance (``imaging_instances``), pixels untouched.

What lands: every composite instance's header, whatever its transfer syntax (native little or
big endian, implicit or explicit VR, deflated, JPEG / JPEG-LS / JPEG 2000 / RLE encapsulated),
whether it has pixels at all (RT plan and structure set, SR, waveforms) and whether or not it
was written as a Part 10 file (a bare data set, without preamble and File Meta Information, is
read as ``dcmread(force=True)`` reads it, and must then carry SOP Class and SOP Instance UIDs
to count as DICOM). DICOMDIR files land as instances of Media Storage Directory Storage: their
identity comes from the File Meta Information, and their directory records stay in
``header_json`` for whoever wants to rebuild the patient/study/series tree.

The header is parsed by pydicom up to Pixel Data (as ``stop_before_pixels``), and Pixel Data is
then checked for completeness from its encoding alone (``python_ingest.imaging_parse``): a
native value must be as long as it declares and as Rows x Columns x Frames x Samples x Bits
require, an encapsulated one must end with its Sequence Delimitation Item and hold a fragment
per frame at least, the encoding must be the one the transfer syntax names (native or
encapsulated), an image header must be followed by Pixel Data at all. A file that fails is
quarantined with expected and actual byte counts (``SOPInstanceUID=<uid>`` as locator, a short
header summary as payload): a cut file would fail every pixel consumer downstream while its
header looks healthy.

Discovery takes every regular file under the source folder named ``*.dcm`` / ``*.dicom``, and
every other one that passes a 132-byte check (``DICM`` at byte 128, or a plausible first element
of a bare data set): PACS exports rarely use file extensions. Files that fail it (README.txt,
manifests, JSON sidecars, .DS_Store) are not DICOM and are skipped without a ledger entry; a file
named as DICOM is not skipped, so an empty or cut transfer, or a PNG renamed ``.dcm``, is
quarantined with what its first bytes are.

Not here, a later step: ``imaging_features`` (radiomics and image embeddings per series). It
will read the landed rows (``pixel_data_offset`` and the geometry columns let it seek to pixels
without re-parsing headers) and decode pixels, which bronze deliberately never does.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import UID_dictionary

from python_ingest import imaging_header as hdr
from python_ingest.discovery import visible_files
from python_ingest.imaging_parse import (
    HEAD_BYTES,
    NATIVE_SYNTAXES,
    PIXEL_TAGS,
    Malformed,
    PixelElement,
    Truncated,
    check_encoding,
    dataset_encoding,
    expected_native_bytes,
    has_dicm_prefix,
    looks_like_dicom,
    read_pixel_element,
)
from python_ingest.imaging_schema import (
    COLUMNS,
    ROW_COLUMNS,
    SCHEMA,
    TABLE,
    fields,
    one_row_table,
    row_tables,
)
from python_ingest.model import RECORD_HASH, SOURCE_LOCATOR, FileOutcome, Quarantined, record_hash
from python_ingest.source_bytes import read_source

__all__ = ["SCHEMA", "TABLE", "ImagingReader"]

_VARYING_CANDIDATES = set(COLUMNS) - ROW_COLUMNS
DICOM_SUFFIXES = (".dcm", ".dicom")
# Columns computed from the header (not read from one element) or from the pixel check.
_DERIVED = (
    "sop_class_uid", "sop_class_name", "transfer_syntax_uid", "transfer_syntax_name",
    "has_file_meta", "has_pixel_data", "number_of_frames", "pixel_data_bytes", "pixel_data_offset",
)  # fmt: skip
_SUMMARY = (
    "sop_class_uid", "modality", "study_instance_uid", "series_instance_uid", "accession_number",
    "transfer_syntax_uid", "rows", "columns", "number_of_frames", "bits_allocated",
)  # fmt: skip


class NotAnInstance(Exception):  # noqa: N818 - a finding about the file
    """The file parses (or not) but is no DICOM instance we could name."""


@dataclass
class _Header:
    """A parsed header and where its parse stopped."""

    meta: Dataset  # File Meta Information (empty for a bare data set)
    ds: Dataset
    buffer: bytes  # the bytes the data set was parsed from (inflated, for deflate)
    stop: int  # offset where the parse stopped (Pixel Data's tag, or the end)
    deflated: bool
    implicit_vr: bool
    little_endian: bool
    last: Any  # the last top-level element as read (before any value conversion)


class ImagingReader:
    """Lands DICOM instance headers; stateless across files (safe in a process pool)."""

    modality = "imaging"
    tables = (TABLE,)

    def __init__(self) -> None:
        # Set by ``discover`` so rows can name their file relative to the source folder.
        self._root: Path | None = None

    def discover(self, source: Path) -> list[Path]:
        root = source.resolve()
        self._root = root if root.is_dir() else root.parent
        if root.is_file():
            return [root] if _is_dicom_candidate(root) else []
        return visible_files(root, _is_dicom_candidate, skip_hidden=False)

    def read(self, path: Path) -> FileOutcome:
        found = self._read_row(path)
        if isinstance(found, FileOutcome):
            return found
        row, series_key = found
        table = one_row_table(row, series_key)
        return FileOutcome(tables={TABLE: table}, records_read=1, records_landed=1)

    def read_many(self, paths: list[Path]) -> list[FileOutcome]:
        """``read`` of each path, the instances' rows converted together (``row_tables``)."""
        found = [self._read_row(path) for path in paths]
        tables = iter(row_tables([f[0] for f in found if not isinstance(f, FileOutcome)]))
        return [
            f if isinstance(f, FileOutcome) else FileOutcome({TABLE: next(tables)}, [], 1, 1)
            for f in found
        ]

    def _read_row(self, path: Path) -> FileOutcome | tuple[dict[str, Any], tuple[Any, ...]]:
        """The instance's row and series key, or the outcome that quarantines the file."""
        data = read_source(path)
        row: dict[str, Any] = {"file_path": self._relative(path)}
        try:
            header = _parse(data)
            document, series = _identify(header, row)
        except NotAnInstance as exc:
            head = {"file_bytes": len(data), "first_bytes_hex": data[:16].hex()}
            head["dicm_prefix"] = has_dicm_prefix(data)
            return _quarantined("file", str(exc), orjson.dumps(head).decode())
        locator = f"SOPInstanceUID={row['sop_instance_uid']}"
        try:
            pixel = _check_pixels(header, document, row)
        except (Truncated, Malformed) as exc:
            kind = "truncated" if isinstance(exc, Truncated) else "malformed"
            summary = {k: row.get(k) for k in _SUMMARY} | {"file_bytes": len(data)}
            reason = f"{kind} DICOM file: {exc}"
            return _quarantined(locator, reason, orjson.dumps(summary, default=str).decode())
        if pixel is not None:
            row["pixel_data_bytes"] = pixel.length
            row["pixel_data_offset"] = None if header.deflated else pixel.value_offset
        row["header_json"] = document.text()
        row[SOURCE_LOCATOR] = locator
        row[RECORD_HASH] = record_hash(data)
        # With the series part, these determine every non-unique column of the row.
        return row, (*series, *(row.get(column) for column in _DERIVED))

    def _relative(self, path: Path) -> str:
        """The path below the source folder (string prefix: pathlib costs more than a parse)."""
        if self._root is None:
            return path.as_posix()
        prefix = str(self._root).rstrip(os.sep) + os.sep
        name = str(path)
        if not name.startswith(prefix):  # the job passes resolved paths; others may not
            name = str(path.resolve())
        if not name.startswith(prefix):
            return path.as_posix()
        return name[len(prefix) :].replace(os.sep, "/")


def _is_dicom_candidate(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True  # named as DICOM: if it is not (empty, cut, a renamed PNG), say so
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        return looks_like_dicom(head, path.stat().st_size)
    except OSError:
        return False


def _quarantined(locator: str, reason: str, payload: str | None) -> FileOutcome:
    return FileOutcome(quarantined=[Quarantined(locator, reason, payload)], records_read=1)


def _parse(data: bytes) -> _Header:
    """Read File Meta Information and data set up to Pixel Data, as ``dcmread`` would.

    This is pydicom's ``read_partial`` without what bronze does not need (the preamble, the
    command set, the ``FileDataset`` wrapper), which saves a fifth of the parse: the element
    parsing itself is pydicom's ``read_dataset``. A file without the ``DICM`` prefix is read as
    ``dcmread(force=True)`` reads it. Whatever cannot be read is ``NotAnInstance``.
    """
    stream = io.BytesIO(data)
    if has_dicm_prefix(data):
        stream.seek(HEAD_BYTES)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            # PS3.10 7.1: File Meta Information is always Explicit VR Little Endian.
            meta = read_dataset(stream, False, True, stop_when=_after_meta)
            syntax = _syntax(meta)
            implicit, little, deflated = dataset_encoding(syntax, data, stream.tell())
            if deflated:
                stream = io.BytesIO(zlib.decompress(stream.read(), -zlib.MAX_WBITS))
            ds = read_dataset(stream, implicit, little, stop_when=_at_pixels)
        except zlib.error as exc:  # Deflated Explicit VR Little Endian whose stream is cut
            raise NotAnInstance(
                f"truncated or corrupt deflated data set (zlib: {exc}); the header is unreadable"
            ) from exc
        except Exception as exc:
            raise NotAnInstance(
                f"not a readable DICOM file (pydicom: {type(exc).__name__}: {exc})"
            ) from exc
    for warning in caught:
        if "End of file" in str(warning.message):
            raise NotAnInstance(f"truncated DICOM header: {warning.message}")
    buffer = stream.getvalue() if deflated else data
    implicit, little = ds.original_encoding  # read_dataset corrects a mislabelled VR mode
    last = next(reversed(ds.values()), None)
    return _Header(meta, ds, buffer, stream.tell(), deflated, bool(implicit), bool(little), last)


def _syntax(meta: Dataset) -> str | None:
    """Transfer Syntax UID, read from the raw element: converting it costs more than this."""
    if 0x00020010 not in meta:
        return None
    element = meta.get_item(0x00020010)
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).rstrip("\x00 ") or None


def _after_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 0x0002


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def _identify(
    header: _Header, row: dict[str, Any]
) -> tuple[hdr.Header, tuple[object, tuple[str, ...]]]:
    """Fill the identity and typed columns of ``row``; returns the header as DICOM JSON and a
    key for everything the series part of the header determines.

    A file read with ``force`` could be any binary that happened to start like a data set, so
    it must carry the two identifiers every composite IOD has (SOP Common: SOP Class UID and
    SOP Instance UID, as UIDs). A Part 10 file may take them from its File Meta Information,
    which is how a DICOMDIR (whose data set has no SOP Common module) is identified.
    """
    ds = header.ds
    has_meta = bool(len(header.meta))
    parts = hdr.header_json((header.meta, ds) if has_meta else (ds,), fields)
    typed = parts.fields
    instance_uid = typed.get("_sop_instance_uid")
    class_uid = typed.get("_sop_class_uid")
    if not has_meta:
        if not (_is_uid(instance_uid) and _is_uid(class_uid)):
            raise NotAnInstance(
                "not a DICOM instance: the file has no File Meta Information and its data set "
                "has no valid SOP Class UID (0008,0016) and SOP Instance UID (0008,0018)"
            )
    else:
        instance_uid = instance_uid or typed.get("_media_sop_instance_uid")
        class_uid = class_uid or typed.get("_media_sop_class_uid")
        if not instance_uid:
            raise NotAnInstance(
                "not a DICOM instance: neither the data set (0008,0018) nor the File Meta "
                "Information (0002,0003) has a SOP Instance UID"
            )
    for column in COLUMNS:
        row[column] = typed.get(column)
    syntax = row["transfer_syntax_uid"]
    row.update(
        sop_class_uid=class_uid,
        sop_class_name=_uid_name(class_uid),
        sop_instance_uid=instance_uid,
        transfer_syntax_name=_uid_name(syntax),
        has_file_meta=has_meta,
        number_of_frames=typed.get("_number_of_frames"),
    )
    # Columns that per-instance elements feed (beyond the unique ones) vary within a series.
    varying = tuple(
        (c, repr(row[c])) for c in sorted(parts.instance_fields) if c in _VARYING_CANDIDATES
    )
    return parts, (parts.series, varying)


def _check_pixels(
    header: _Header, document: hdr.Header, row: dict[str, Any]
) -> PixelElement | None:
    """Check that the file holds all the bytes its header promises; set the pixel columns."""
    buf, stop = header.buffer, header.stop
    is_implicit, is_little = header.implicit_vr, header.little_endian
    tag = None
    if len(buf) - stop >= 4:
        group, element = struct.unpack_from("<HH" if is_little else ">HH", buf, stop)
        tag = group << 16 | element
    row["has_pixel_data"] = tag in PIXEL_TAGS
    if tag not in PIXEL_TAGS:
        _check_header_end(header)
        # The Image Pixel module (Rows, Columns) requires Pixel Data unless a JPIP Pixel Data
        # Provider URL stands in for it (PS3.3 C.7.6.3): without either, the file was most
        # likely cut exactly between two elements, which no length can reveal.
        if row["rows"] and row["columns"] and "00287FE0" not in document:
            needs = expected_native_bytes(
                row["rows"],
                row["columns"],
                row["number_of_frames"],
                row["samples_per_pixel"],
                row["bits_allocated"],
                row["photometric_interpretation"],
            )
            size = f" (uncompressed, its pixels need {needs} bytes)" if needs else ""
            raise Truncated(
                f"the header describes a {row['rows']} x {row['columns']} image{size} but the "
                f"file ends after {len(header.buffer)} bytes with no Pixel Data element; it was "
                "probably cut between two elements"
            )
        return None
    if row["number_of_frames"] is None:  # single-frame IODs have no Number of Frames
        row["number_of_frames"] = 1
    pixel = read_pixel_element(buf, stop, little_endian=is_little, implicit_vr=is_implicit)
    syntax = row["transfer_syntax_uid"]
    check_encoding(pixel, syntax, row["number_of_frames"])
    if not pixel.encapsulated and (syntax is None or syntax in NATIVE_SYNTAXES):
        geometry = (row["rows"], row["columns"], row["number_of_frames"])
        geometry += (row["samples_per_pixel"], row["bits_allocated"])
        expected = expected_native_bytes(*geometry, row["photometric_interpretation"])
        if expected is not None and pixel.length < expected:
            shape = " x ".join(str(v if v is not None else 1) for v in geometry)
            raise Truncated(
                f"{pixel.name} holds {pixel.length} bytes where Rows x Columns x Frames x "
                f"SamplesPerPixel x BitsAllocated/8 ({shape}) needs {expected}"
            )
    document.add({f"{pixel.tag:08X}": {"vr": pixel.vr, **hdr.bulk_note(pixel.tag, pixel.length)}})
    # The delimiter item (8 bytes) closes an encapsulated value.
    _read_tail(header, pixel.value_offset + pixel.length + 8 * pixel.encapsulated, document)
    return pixel


def _read_tail(header: _Header, start: int, document: hdr.Header) -> None:
    """Add the elements after Pixel Data (Data Set Trailing Padding, Digital Signatures) to the
    JSON, so ``header_json`` holds the whole data set. Junk that some writers append after the
    pixels is not worth losing a valid image for, so a tail that does not parse is left out."""
    if start >= len(header.buffer):
        return
    is_implicit, is_little = header.implicit_vr, header.little_endian
    stream = io.BytesIO(header.buffer)
    stream.seek(start)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tail = read_dataset(
                stream, is_implicit, is_little, parent_encoding=header.ds.original_character_set
            )
    except Exception:
        return
    tail_header = hdr.header_json((tail,), lambda _: {})
    document.add(tail_header.series_json | tail_header.instance_json)


def _check_header_end(header: _Header) -> None:
    """Without Pixel Data the header is the whole file: its last element must end with it."""
    buf, stop = header.buffer, header.stop
    if stop < len(buf):
        raise Malformed(f"the header could not be parsed past byte {stop} of {len(buf)}")
    last = header.last
    length = getattr(last, "length", None)
    value_tell = getattr(last, "value_tell", None)
    if last is None or value_tell is None or length is None or length == 0xFFFFFFFF:
        return
    end = value_tell + length
    if end > len(buf):
        raise Truncated(
            f"element ({last.tag >> 16:04X},{last.tag & 0xFFFF:04X}) declares {length} bytes but "
            f"the file ends after {len(buf) - value_tell} of them"
        )
    if 0 < len(buf) - end < 8:
        raise Truncated(
            f"the file ends inside an element header ({len(buf) - end} bytes after the last "
            "complete element, which needs at least 8)"
        )


def _is_uid(value: str | None) -> bool:
    return bool(value) and all(part.isdigit() for part in value.split("."))


def _uid_name(uid: str | None) -> str | None:
    return UID_dictionary[uid][0] if uid in UID_dictionary else None
