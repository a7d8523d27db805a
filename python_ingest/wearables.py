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
# The payload fields converted in one call: strings (times too, parsed after), then battery.
_PAYLOAD_STRUCT = pa.struct(
    [
        *((name, pa.string()) for name in (*_STRING_FIELDS, _FIRMWARE, *TIME_FIELDS)),
        ("battery_pct", pa.float64()),
    ]
)
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
    lines = data.split(b"\n")
    if b"\r" in data:  # CRLF line ends: the record is the line without its terminator
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    events: list[dict] = []
    raws: list[bytes] = []
    numbers: list[int] = []
    bad: list[Quarantined] = []
    for number, line in enumerate(lines, 1):
        try:
            event = loads(line)
        except decode_error as exc:
            if line and not line.isspace():  # a blank line is no record
                bad.append(_unparseable(number, line, exc))
            continue
        if type(event) is dict:
            events.append(event)
            raws.append(line)
            numbers.append(number)
        else:
            reason = f"the line is valid JSON but a {_json_kind(event)}, not an event object"
            bad.append(Quarantined(f"line {number}", reason, line))
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
    """Validate the parsed events, build the file's table, quarantine what may not land.

    Files are often small (an hourly drop holds a few dozen events), so the per-file count of
    Arrow calls matters as much as the per-event cost: the checks that need no parsing run on
    the Python objects first (a failing event never reaches Arrow), every string column is one
    Arrow conversion, the three time fields are parsed together, and a filter is only needed in
    the rare file with a malformed time or battery level.
    """
    found = {i: p for i, e in enumerate(events) if (p := _event_problems(e))}
    if found:
        _quarantine(found, events, raws, locators, bad)
        keep = [i for i in range(len(events)) if i not in found]
        events = [events[i] for i in keep]
        raws = [raws[i] for i in keep]
        locators = [locators[i] for i in keep]
        hashes = [hashes[i] for i in keep]
    table, late = _events_table(path, events, locators, hashes, source_format)
    if late:
        _quarantine(late, events, raws, locators, bad)
        keep_mask = np.ones(len(events), dtype=bool)
        keep_mask[list(late)] = False
        table = table.filter(pa.array(keep_mask))
    if found or late:
        bad.sort(key=lambda q: _locator_order(q.locator))
    return FileOutcome(
        tables={EVENTS: table} if table.num_rows else {},
        quarantined=bad,
        records_read=table.num_rows + len(bad),
        records_landed=table.num_rows,
    )


def _event_problems(event: dict) -> list[str]:
    """What makes an event invalid before any parsing: no id, an impossible measurement."""
    problems = []
    event_id = event.get("event_id")
    if event_id is None or (type(event_id) is str and not event_id.strip()):
        problems.append("event_id is missing")
    metric = event.get("metric")
    if metric in NON_NEGATIVE_SET:
        value = event.get("value")
        kind = type(value)
        number = (
            float(value)
            if kind is int or kind is float
            else number_from_text(value)
            if kind is str
            else None
        )
        if number is None or number < 0:
            problems.append(_value_problem(metric, value, number))
    return problems


def _quarantine(
    found: dict[int, list[str]],
    events: list[dict],
    raws: Sequence[bytes],
    locators: list[str],
    bad: list[Quarantined],
) -> None:
    for i, problems in sorted(found.items()):
        event_id = json_text(events[i].get("event_id"))
        suffix = f" (event_id {event_id})" if event_id and event_id.strip() else ""
        bad.append(Quarantined(locators[i], "; ".join(problems) + suffix, raws[i]))


def _events_table(
    path: Path,
    events: list[dict],
    locators: list[str],
    hashes: list[str],
    source_format: str,
) -> tuple[pa.Table, dict[int, list[str]]]:
    """The events as a table, and the rows whose time or battery level did not parse.

    The fast path converts the known fields of every event in one Arrow call (a struct array
    built from the dicts in C++); a field of an unexpected JSON type (a numeric ``event_id``, a
    ``battery_pct`` of ``"High"``) makes it fail, and the per-column path converts such values
    to their JSON text instead, or flags them.
    """
    n = len(events)
    columns: dict[str, pa.Array] = {}
    try:
        known = pa.array(events, _PAYLOAD_STRUCT)
        columns.update(zip(_PAYLOAD_STRUCT.names, known.flatten(), strict=True))
        sent = None
        not_numbers: list[int] = []
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        for name in _PAYLOAD_STRUCT.names[:-1]:
            columns[name] = string_array([e.get(name) for e in events])
        batteries = [e.get("battery_pct") for e in events]
        columns["battery_pct"], _, not_numbers = numeric_array(batteries)
        sent = [e.get(name) for name in TIME_FIELDS for e in events]
    value_text, numbers = _value_columns([e.get("value") for e in events])
    columns["value"] = pa.array(value_text, pa.string())
    columns["value_num"] = pa.array(numbers, pa.float64())
    raw_times = pa.concat_arrays([columns.pop(name) for name in TIME_FIELDS])
    times = parse_iso_times(raw_times, sent)
    for k, name in enumerate(TIME_FIELDS):
        columns[name] = times.utc.slice(k * n, n)
        columns[f"{name}_local"] = times.local.slice(k * n, n)
        columns[f"{name}_raw"] = times.raw.slice(k * n, n)
    columns["arrival_time"] = pa.repeat(pa.scalar(arrival_time(path), UTC_TS), n)
    columns["source_format"] = pa.repeat(pa.scalar(source_format, pa.string()), n)
    fields = set().union(*events) - PAYLOAD_FIELDS if events else set()
    extras = extra_column_names(fields, EVENT_SCHEMA.names)
    for field, column in extras.items():
        columns[column] = pa.array([json_text(e.get(field)) for e in events], pa.string())
    lineage = pa.array(locators + hashes, pa.string())
    columns["_source_locator"], columns["_record_hash"] = lineage.slice(0, n), lineage.slice(n)
    table = finish(columns, EVENT_SCHEMA, list(extras.values()))

    late: dict[int, list[str]] = {}
    for i in np.flatnonzero(times.bad):
        name, row = TIME_FIELDS[i // n], int(i % n)
        shown = events[row].get(name)
        late.setdefault(row, []).append(f"{name} {shown!r} is not an ISO 8601 date-time")
    for row in not_numbers:
        shown = events[row].get("battery_pct")
        late.setdefault(row, []).append(f"battery_pct {shown!r} is not a number")
    return table, late


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
