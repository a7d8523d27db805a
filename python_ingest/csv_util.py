"""CSV records with their raw text, for readers that quarantine a CSV row as it was written."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator

# A quoted field may be a whole clinical note; the csv module's default limit (131,072
# characters) would fail the file on the first long one.
csv.field_size_limit(64 * 1024 * 1024)


# Byte-order marks, longest first (UTF-32LE's begins with UTF-16LE's).
_MARKS = (
    (codecs.BOM_UTF32_LE, "UTF-32LE"),
    (codecs.BOM_UTF32_BE, "UTF-32BE"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "UTF-16BE"),
)


def unicode_text(data: bytes, what: str) -> tuple[str | None, str | None]:
    """(text, None), or (None, why ``what`` cannot be read): UTF-8, or the Unicode encoding a
    byte-order mark names, the mark dropped.

    Windows writes "Unicode" text (Notepad, Excel's "Unicode Text", many EHR extract tools) as
    UTF-16LE behind a byte-order mark; the mark makes that certain, not a guess. Text without a
    mark must be UTF-8: a legacy code page (cp1252, Latin-1) cannot be told from the bytes.
    """
    encoding, start = "UTF-8", 0
    for mark, name in _MARKS:
        if data.startswith(mark):
            encoding, start = name, len(mark)
            break
    try:
        return data[start:].decode(encoding), None
    except UnicodeDecodeError as exc:
        at = start + exc.start
        return None, f"{what} is not {encoding} text (byte 0x{data[at]:02X} at offset {at})"


def csv_text(data: bytes) -> tuple[str | None, str | None]:
    """(the CSV's text, None), or (None, why it cannot be read): see ``unicode_text``."""
    return unicode_text(data, "the CSV")


def csv_records(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """(first line number, raw text, fields) per CSV record, blank lines skipped.

    ``csv.reader`` pulls one physical line at a time, so the lines it consumed for a record (a
    quoted field may span several) are exactly that record's raw text.
    """
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed.append(line)
            yield line

    reader = csv.reader(lines())
    first = 1
    for row in reader:
        raw = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        start, first = first, reader.line_num + 1
        if row and any(field.strip() for field in row):
            yield start, raw, row
