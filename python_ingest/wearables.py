"""Wearables: device-cloud JSON-lines events, the enrollment register, Fitabase CSV exports.

What lands where (see ``python_ingest.wearables_columns`` for the column contract):

* ``*.jsonl`` / ``*.ndjson`` (optionally ``.gz``): one event per line -> ``wearables_events``.
  The unit of accounting is the non-blank line; its locator is ``line N`` (1-based, blank lines
  counted), its ``_record_hash`` the sha256 of the line's bytes. ``*.json`` holding one array
  (or one object) of events is read the same way, an element per record (``item N``, hashed
  over its canonical JSON). Any other ``*.json`` is read as JSON lines.
* ``enrollment*.csv`` (any CSV whose header has ``device_id``) -> ``wearables_enrollment``; a
  Fitabase export (header ``Id, <time>, ...``) -> ``wearables_events``, one event per value
  cell (``python_ingest.wearables_csv``). Other CSVs are quarantined whole, with the header.

Re-sent events (same ``event_id``, byte-identical line, in a later drop) are not errors: bronze
keeps every line it received, so a re-send is two rows with the same ``_record_hash``;
de-duplication is silver's job. A line is quarantined when it is not JSON (truncated, non-UTF-8
garbage, NUL-filled), not an object, has no ``event_id``, has a time that is not ISO 8601, a
heart rate / step count / SpO2 that is negative or not a number, or a ``battery_pct`` that is not
a number. The locator of an unparseable line also names the ``event_id`` when the damaged bytes
still show it. Streaming needs nothing special: the ingest log is the checkpoint, so a run after
new drops arrived lands only those files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from python_ingest.model import FileOutcome, Quarantined, record_hash
from python_ingest.wearables_columns import (
    EVENT_SCHEMA,
    TIME_FIELDS,
    UTC_TS,
    extra_column_names,
    finish,
    json_text,
    number_from_text,
    numeric_array,
    parse_iso_times,
    string_array,
)
from python_ingest.wearables_csv import read_csv

EVENTS, ENROLLMENT = "wearables_events", "wearables_enrollment"

# Metrics whose value is a count or a physiological level, never below zero.
NON_NEGATIVE_SET = frozenset(("heart_rate", "steps", "spo2"))
_STRING_FIELDS = ("event_id", "device_id", "device_model", "user_id", "metric", "unit")
_FIRMWARE = "firmware_version"
PAYLOAD_FIELDS = frozenset((*_STRING_FIELDS, "value", *TIME_FIELDS, _FIRMWARE, "battery_pct"))
_LINES_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
_JSON_SUFFIXES = (".json", ".json.gz")
_CSV_SUFFIXES = (".csv", ".csv.gz")
# The drop's closing instant in its name: 20240501T140000Z.jsonl, ...T140000Z-b00012.jsonl,
# 2024-05-01T14-00-00Z.jsonl. Anything else leaves arrival_time null.
_ARRIVAL = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})T(\d{2})[-:]?(\d{2})[-:]?(\d{2})(?:\.\d+)?Z", re.IGNORECASE
)
_SHOWN_ID = re.compile(rb'"event_id"\s*:\s*"([\x21\x23-\x5b\x5d-\x7e]{1,128})"')


def file_kind(path: Path) -> str | None:
    """``lines``, ``json``, ``csv`` or None (not a wearables file) from the file name."""
    name = path.name.lower()
    if name.endswith(_LINES_SUFFIXES):
        return "lines"
    if name.endswith(_JSON_SUFFIXES):
        return "json"
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    return None


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz`` (device exports often are)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data


def arrival_time(path: Path) -> dt.datetime | None:
    match = _ARRIVAL.search(path.name)
    if match is None:
        return None
    try:
        return dt.datetime(*(int(g) for g in match.groups()), tzinfo=dt.UTC)
    except ValueError:  # 20241340T990000Z: looks like a stamp, is not one
        return None


class WearablesReader:
    """Lands a wearables folder: landing drops (any depth), enrollment register, CSV exports."""

    modality = "wearables"
    tables = (EVENTS, ENROLLMENT)

    def discover(self, source: Path) -> list[Path]:
        """Every JSON(-lines) and CSV file under ``source``, skipping hidden folders."""
        return sorted(
            p
            for p in source.rglob("*")
            if file_kind(p) is not None
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(source).parts)
        )

    def read(self, path: Path) -> FileOutcome:
        kind = file_kind(path)
        data = read_bytes(path)
        if kind == "csv":
            return read_csv(path, data)
        if kind == "json":
            outcome = _read_json_document(path, data)
            if outcome is not None:
                return outcome
        return read_json_lines(path, data)


def read_json_lines(path: Path, data: bytes) -> FileOutcome:
    """One event per non-blank line; a bad line is quarantined and the rest still land."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    events: list[dict] = []
    raws: list[bytes] = []
    numbers: list[int] = []
    bad: list[Quarantined] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line or line.isspace():
            continue
        try:
            event = loads(line)
        except decode_error as exc:
            bad.append(_unparseable(number, line, exc))
            continue
        if type(event) is not dict:
            reason = f"the line is valid JSON but a {_json_kind(event)}, not an event object"
            bad.append(Quarantined(f"line {number}", reason, line))
            continue
        events.append(event)
        raws.append(line)
        numbers.append(number)
    sha = hashlib.sha256
    hashes = [sha(raw).hexdigest() for raw in raws]
    locators = [f"line {n}" for n in numbers]
    return events_outcome(path, events, raws, locators, hashes, bad, "jsonl")


def _read_json_document(path: Path, data: bytes) -> FileOutcome | None:
    """A ``.json`` file holding one array or object of events; None if it is JSON lines."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    items = document if isinstance(document, list) else [document]
    events, raws, locators, bad = [], [], [], []
    for i, item in enumerate(items, 1):
        raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if type(item) is not dict:
            reason = f"the item is a {_json_kind(item)}, not an event object"
            bad.append(Quarantined(f"item {i}", reason, raw))
            continue
        events.append(item)
        raws.append(raw)
        locators.append(f"item {i}" if isinstance(document, list) else "document")
    hashes = [record_hash(raw) for raw in raws]
    return events_outcome(path, events, raws, locators, hashes, bad, "json")


def events_outcome(
    path: Path,
    events: list[dict],
    raws: Sequence[bytes],
    locators: list[str],
    hashes: list[str],
    bad: list[Quarantined],
    source_format: str,
) -> FileOutcome:
    """Columns from the parsed events, validated; failing rows go to quarantine.

    Files are often small (an hourly drop holds a few dozen events), so the per-file cost of
    Arrow calls matters as much as the per-event cost: one call per column, the three time
    fields parsed together, and the checks done on the Python lists already at hand.
    """
    n = len(events)
    # Every string column in one list, converted by one Arrow call and sliced (zero-copy).
    texts: list[object] = []
    for name in _STRING_FIELDS:
        texts += [e.get(name) for e in events]
    values = [e.get("value") for e in events]
    value_text, numbers = _value_columns(values)
    texts += value_text
    texts += [e.get(_FIRMWARE) for e in events]
    times_at = len(texts)
    for name in TIME_FIELDS:
        texts += [e.get(name) for e in events]
    texts += locators
    texts += hashes
    strings = string_array(texts)
    names = [*_STRING_FIELDS, "value", _FIRMWARE]
    columns = {name: strings.slice(k * n, n) for k, name in enumerate(names)}
    columns["_source_locator"] = strings.slice(times_at + 3 * n, n)
    columns["_record_hash"] = strings.slice(times_at + 4 * n, n)
    times = parse_iso_times(texts[times_at : times_at + 3 * n], strings.slice(times_at, 3 * n))
    for k, name in enumerate(TIME_FIELDS):
        columns[name] = times.utc.slice(k * n, n)
        columns[f"{name}_local"] = times.local.slice(k * n, n)
        columns[f"{name}_raw"] = times.raw.slice(k * n, n)
    battery, _, battery_bad = numeric_array(numbers + [e.get("battery_pct") for e in events])
    columns["value_num"], columns["battery_pct"] = battery.slice(0, n), battery.slice(n, n)
    battery_bad = [i - n for i in battery_bad if i >= n]
    columns["arrival_time"] = pa.repeat(pa.scalar(arrival_time(path), UTC_TS), n)
    columns["source_format"] = pa.repeat(pa.scalar(source_format, pa.string()), n)
    fields = set().union(*events) - PAYLOAD_FIELDS if events else set()
    extras = extra_column_names(fields, EVENT_SCHEMA.names)
    for field, column in extras.items():
        columns[column] = pa.array([json_text(e.get(field)) for e in events], pa.string())
    table = finish(columns, EVENT_SCHEMA, list(extras.values()))

    found: dict[int, list[str]] = {}
    for i, event in enumerate(events):
        event_id = event.get("event_id")
        if event_id is None or (type(event_id) is str and not event_id.strip()):
            found[i] = ["event_id is missing"]
        metric = event.get("metric")
        if metric in NON_NEGATIVE_SET and (numbers[i] is None or numbers[i] < 0):
            found.setdefault(i, []).append(_value_problem(metric, values[i], numbers[i]))
    for i in np.flatnonzero(times.bad):
        name, row = TIME_FIELDS[i // n], int(i % n)
        shown = events[row].get(name)
        found.setdefault(row, []).append(f"{name} {shown!r} is not an ISO 8601 date-time")
    for row in battery_bad:
        shown = events[row].get("battery_pct")
        found.setdefault(row, []).append(f"battery_pct {shown!r} is not a number")
    if found:
        keep = np.ones(n, dtype=bool)
        for i, problems in sorted(found.items()):
            event_id = json_text(events[i].get("event_id"))
            suffix = f" (event_id {event_id})" if event_id and event_id.strip() else ""
            bad.append(Quarantined(locators[i], "; ".join(problems) + suffix, raws[i]))
            keep[i] = False
        table = table.filter(pa.array(keep))
        bad.sort(key=lambda q: _locator_order(q.locator))
    return FileOutcome(
        tables={EVENTS: table} if table.num_rows else {},
        quarantined=bad,
        records_read=table.num_rows + len(bad),
        records_landed=table.num_rows,
    )


def _value_columns(values: list[object]) -> tuple[list[str | None], list[float | None]]:
    """(``value`` as text, ``value_num``): JSON numbers and numeric strings are numbers."""
    text: list[str | None] = []
    numbers: list[float | None] = []
    for v in values:
        kind = type(v)
        if kind is str:
            text.append(v)
            numbers.append(number_from_text(v))
        elif kind is int or kind is float:
            text.append(json_text(v))
            numbers.append(float(v))
        else:  # null, boolean, list or object: text only
            text.append(json_text(v))
            numbers.append(None)
    return text, numbers


def _value_problem(metric: str, value: object, number: float | None) -> str:
    if value is None:
        return f"{metric} event has no value"
    if number is None:
        return f"{metric} value {json_text(value)!r} is not a number"
    return f"negative {metric} value {json_text(value)}"


def _unparseable(number: int, line: bytes, exc: Exception) -> Quarantined:
    """A line that is not JSON, with what is wrong with it and its event_id if still shown."""
    if line.count(0) == len(line):
        reason = f"the line is {len(line)} NUL bytes: space a writer allocated but never filled"
    else:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            byte = line[bad.start]
            reason = f"the line is not valid UTF-8 (byte 0x{byte:02X} at offset {bad.start})"
        else:
            reason = f"the line is not valid JSON ({exc}); it may have been cut off"
    shown = _SHOWN_ID.search(line)
    locator = f"line {number}"
    if shown is not None:
        locator += f" event_id={shown.group(1).decode('ascii')}"
    return Quarantined(locator, reason, line)


def _json_kind(value: object) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _locator_order(locator: str) -> tuple[int, str]:
    """Quarantine rows in file order ("line 9" before "line 10")."""
    _, _, rest = locator.partition(" ")
    number = rest.split(" ", 1)[0]
    return (int(number), locator) if number.isdigit() else (0, locator)
