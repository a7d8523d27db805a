"""CSV records with their raw text, for readers that quarantine a CSV row as it was written."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

# A quoted field may be a whole clinical note; the csv module's default limit (131,072
# characters) would fail the file on the first long one.
csv.field_size_limit(64 * 1024 * 1024)


def csv_text(data: bytes) -> tuple[str | None, str | None]:
    """(the CSV's text, None), or (None, why it is not UTF-8): a byte-order mark is dropped."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        return None, f"the CSV is not UTF-8 text (byte 0x{byte:02X} at offset {exc.start})"


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
