"""Typed values read from DICOM JSON (PS3.18 F): the converters behind the typed columns.

They read what ``to_json_dict`` made of an element (numbers already numbers, strings already
stripped of padding) and return null rather than guess when a value does not fit its column:
the raw value is always in ``header_json``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any


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
