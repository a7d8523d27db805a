"""Byte-level DICOM checks that need no pixel decoding: is this DICOM at all, is it complete.

Two questions decide whether an instance may land, and both are answered from the encoding
alone (PS3.5 sections 7 and A.4), never by decoding pixels:

* *Is the file DICOM?* A Part 10 file has ``DICM`` at byte 128 (PS3.10 7.1). Older or
  non-conformant writers (ACR-NEMA style exports, some RT planning systems) store the bare data
  set, which then starts with an element of group 0008 (or 0002 when only the preamble is
  missing): tag, then either a two-letter VR (explicit VR) or a four-byte length (implicit VR).
* *Is the file whole?* A native (uncompressed) Pixel Data value has a declared length, which the
  bytes left in the file must cover, and which must in turn cover Rows x Columns x Frames x
  Samples x BitsAllocated. An encapsulated (JPEG, JPEG 2000, JPEG-LS, RLE...) value has an
  undefined length: a Basic Offset Table item, fragment items, and a Sequence Delimitation Item,
  whose absence means the file was cut. An interrupted transfer cuts the *end* of the file,
  which is where Pixel Data lives, so these checks catch what the header parse cannot.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydicom.uid import UID, UID_dictionary

# The three pixel-carrying elements of the Image Pixel and Floating Point Image Pixel modules.
PIXEL_TAGS = {
    0x7FE00010: "Pixel Data",
    0x7FE00008: "Float Pixel Data",
    0x7FE00009: "Double Float Pixel Data",
}
ITEM_TAG = 0xFFFEE000
SEQUENCE_DELIMITER_TAG = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
# Explicit VR elements whose length is 32 bits, after two reserved bytes (PS3.5 7.1.2).
_LONG_VRS = {
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
}  # fmt: skip
EXPLICIT_VRS = _LONG_VRS | {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN",
    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
}  # fmt: skip
# Groups a bare data set may start with: File Meta (0002) without its preamble, or the
# Identifying group (0008), where SOP Common's SOP Class UID, mandatory in every IOD, lives.
_FIRST_GROUPS = {0x0002, 0x0008}
HEAD_BYTES = 132
# Syntaxes whose Pixel Data is native (its length is fixed by the image geometry).
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired)
}
# Syntaxes whose data set is deflated (PS3.5 A.5): the deflated one and JPIP Referenced Deflate.
DEFLATED_SYNTAXES = {"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.95"}


class Truncated(Exception):  # noqa: N818 - a finding, not a programming error
    """The file ends before its encoding says it should; the message says by how much."""


class Malformed(Exception):  # noqa: N818
    """The encoding is inconsistent (an unexpected element where the structure needs another)."""


def has_dicm_prefix(head: bytes) -> bool:
    return head[128:132] == b"DICM"


def looks_like_dicom(head: bytes, size: int) -> bool:
    """Cheap discovery test on the first 132 bytes: Part 10 prefix or a plausible first element.

    PACS exports often have no file extension, so the name cannot tell; reading 132 bytes can.
    A README or JSON file starts with text, whose first two bytes as a group number are far from
    0002/0008, so it is never mistaken for a bare data set.
    """
    if has_dicm_prefix(head):
        return True
    if len(head) < 8:
        return False
    for order in "<>":
        group, _element = struct.unpack(order + "HH", head[:4])
        if group not in _FIRST_GROUPS:
            continue
        if head[4:6] in EXPLICIT_VRS:  # explicit VR
            return True
        (length,) = struct.unpack(order + "L", head[4:8])  # implicit VR: a 4-byte length
        if order == "<" and length < size:
            return True
    return False


@dataclass(frozen=True)
class PixelElement:
    """Where the pixel-carrying element is and how many bytes its value holds."""

    tag: int
    vr: str
    value_offset: int  # offset of the value in the buffer that holds the data set
    length: int  # bytes of the value (encapsulated: everything before the delimiter item)
    encapsulated: bool
    fragments: int  # encapsulated only: items after the Basic Offset Table

    @property
    def name(self) -> str:
        return PIXEL_TAGS.get(self.tag, f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})")


def read_pixel_element(
    buf: bytes, pos: int, *, little_endian: bool, implicit_vr: bool
) -> PixelElement:
    """Parse the element header at ``pos`` (where the header parse stopped) and check its value.

    Raises ``Truncated`` when the buffer ends before the value does, naming expected and actual
    byte counts, and ``Malformed`` when the encapsulated structure is broken in other ways.
    """
    order = "<" if little_endian else ">"
    header = 8 if implicit_vr else 12
    if len(buf) - pos < header:
        raise Truncated(
            f"the file ends inside the Pixel Data element header ({len(buf) - pos} of its "
            f"{header} bytes present)"
        )
    group, element = struct.unpack_from(order + "HH", buf, pos)
    tag = group << 16 | element
    if implicit_vr:
        vr = "OW"  # PS3.5 A.1: Pixel Data in Implicit VR Little Endian is OW
        (length,) = struct.unpack_from(order + "L", buf, pos + 4)
    else:
        raw_vr = buf[pos + 4 : pos + 6]
        vr = raw_vr.decode("ascii", errors="replace")
        if raw_vr in _LONG_VRS:
            (length,) = struct.unpack_from(order + "L", buf, pos + 8)
        else:  # a non-conformant short VR: 2-byte length right after the VR
            (length,) = struct.unpack_from(order + "H", buf, pos + 6)
            header = 8
    start = pos + header
    available = len(buf) - start
    name = PIXEL_TAGS.get(tag, "Pixel Data")
    if length != UNDEFINED_LENGTH:
        if available < length:
            raise Truncated(
                f"{name} declares {length} bytes but the file ends after {available} of them "
                f"({length - available} bytes missing)"
            )
        return PixelElement(tag, vr, start, length, encapsulated=False, fragments=0)
    end, items = _walk_fragments(buf, start, order, name)
    return PixelElement(tag, vr, start, end - start, encapsulated=True, fragments=max(items - 1, 0))


def _walk_fragments(buf: bytes, start: int, order: str, name: str) -> tuple[int, int]:
    """Follow the items of encapsulated pixel data to the Sequence Delimitation Item (PS3.5 A.4).

    Returns (offset of the delimiter, number of items). Only item headers are read, so this is
    a handful of ``unpack`` calls per frame whatever the image size.
    """
    pos, items, size = start, 0, len(buf)
    unpack = struct.Struct(order + "HHL").unpack_from
    while True:
        if size - pos < 8:
            raise Truncated(
                f"encapsulated {name} ends after {pos - start} bytes and {items} items without "
                "its Sequence Delimitation Item (expected 8 more bytes of an item header, "
                f"found {size - pos})"
            )
        group, element, length = unpack(buf, pos)
        tag = group << 16 | element
        if tag == SEQUENCE_DELIMITER_TAG:
            return pos, items
        if tag != ITEM_TAG:
            raise Malformed(
                f"encapsulated {name} has element ({group:04X},{element:04X}) at byte {pos} "
                "where a fragment item or the Sequence Delimitation Item should be"
            )
        if length == UNDEFINED_LENGTH:
            raise Malformed(f"fragment {items} of encapsulated {name} has an undefined length")
        remaining = size - pos - 8
        if remaining < length:
            raise Truncated(
                f"encapsulated {name} is cut inside fragment item {items}: the item declares "
                f"{length} bytes but the file ends after {remaining} of them ({length - remaining}"
                " bytes and the Sequence Delimitation Item missing)"
            )
        pos += 8 + length
        items += 1


def expected_native_bytes(
    rows: int | None,
    columns: int | None,
    frames: int | None,
    samples: int | None,
    bits_allocated: int | None,
    photometric: str | None,
) -> int | None:
    """Bytes a native Pixel Data value needs (PS3.5 8.1.1, PS3.3 C.7.6.3.1.2), None if unknown.

    YBR_FULL_422 stores two luminance samples and one pair of chroma samples per two pixels, so
    it needs two samples per pixel however many SamplesPerPixel says (3). Bit-packed data
    (BitsAllocated 1, segmentations) rounds the last byte up.
    """
    if not rows or not columns or not bits_allocated:
        return None
    samples = samples or 1
    if photometric == "YBR_FULL_422":
        samples = 2
    bits = rows * columns * (frames or 1) * samples * bits_allocated
    return (bits + 7) // 8


def dataset_encoding(syntax: str | None, data: bytes, start: int) -> tuple[bool, bool, bool]:
    """(implicit VR, little endian, deflated) of the data set, as ``read_partial`` decides it.

    Without a Transfer Syntax UID the first element tells: a valid two-letter VR means
    explicit VR, and a group number that reads as 1024 or more means big endian (0x0008
    byte-swapped is 0x0800). Any other syntax (JPEG, RLE...) is Explicit VR Little Endian.
    """
    if syntax is None:
        head = data[start : start + 6]
        if len(head) == 6 and head[4:6] in EXPLICIT_VRS:
            return False, struct.unpack("<H", head[:2])[0] < 1024, False
        return True, True, False
    if syntax == "1.2.840.10008.1.2":  # Implicit VR Little Endian
        return True, True, False
    if syntax == "1.2.840.10008.1.2.2":  # Explicit VR Big Endian
        return False, False, False
    return False, True, syntax in DEFLATED_SYNTAXES


def check_encoding(pixel: PixelElement, syntax: str | None, frames: int | None) -> None:
    """Pixel Data must be encoded as its transfer syntax says (PS3.5 A.4): native under a native
    syntax, encapsulated under a compressed one, and then in at least one fragment per frame.
    A file that breaks this looks healthy by its header and fails every pixel consumer."""
    if pixel.tag != 0x7FE00010 or syntax is None or syntax not in UID_dictionary:
        return  # float pixel data is always native; a private syntax is not ours to judge
    uid = UID(syntax)
    if not uid.is_transfer_syntax:
        return
    name = UID_dictionary[syntax][0]
    if uid.is_encapsulated and not pixel.encapsulated:
        raise Malformed(
            f"Pixel Data has a defined length ({pixel.length} bytes) under {name}, which "
            "requires encapsulated fragments"
        )
    if not uid.is_encapsulated and pixel.encapsulated:
        raise Malformed(f"Pixel Data is encapsulated under {name}, a native transfer syntax")
    if pixel.encapsulated and frames and pixel.fragments < frames:
        raise Malformed(
            f"NumberOfFrames is {frames} but the encapsulated Pixel Data holds "
            f"{pixel.fragments} fragment(s); every frame takes at least one"
        )
