"""Wearables: device-cloud JSON-lines events, the enrollment register, Fitabase CSV exports.

What lands where (``python_ingest.wearables_columns`` holds the column contract and
``python_ingest.wearables_events`` the validation; the ``value``/``value_num`` split, the three
forms of every time and the string-typed unknown fields are explained there):

* ``*.jsonl`` / ``*.ndjson`` (optionally ``.gz``): one event per line -> ``wearables_events``.
  The unit of accounting is the non-blank line; its locator is ``line N`` (1-based, blank lines
  counted), its ``_record_hash`` the sha256 of the line's bytes. ``*.json`` holding one array
  (or one object) of events is read the same way, an element per record (``item N``, hashed
  over its canonical JSON). A Fitbit account archive's time series (an array of
  ``{"dateTime": ..., "value": ...}`` readings, ``heart_rate-2020-04-01.json``) lands one event
  per value field (``python_ingest.wearables_fitbit``), its sleep and exercise logs one event
  per field of the log and of each sleep stage (``python_ingest.wearables_fitbit_logs``). A saved
  Fitbit Web API response (an object of series, logs and intraday sets) lands each of them
  the same way (``python_ingest.wearables_fitbit_api``). Any other ``*.json`` is read as JSON
  lines.
* ``enrollment*.csv`` (any CSV whose header has ``device_id``) -> ``wearables_enrollment``; a
  Fitabase export (header ``Id, <time>, ...``) or a person's time series (header
  ``timestamp, ...``) -> ``wearables_events``, one event per value cell
  (``python_ingest.wearables_csv``). Other CSVs are quarantined whole, with the header.

Re-sent events (same ``event_id``, byte-identical line, in a later drop) are not errors: bronze
keeps every line it received, so a re-send is two rows with the same ``_record_hash``;
de-duplication is silver's job. A line is quarantined when it is not JSON (truncated, non-UTF-8
garbage, NUL-filled), not an object, has no ``event_id``, has a time that is not ISO 8601, a
heart rate / step count / SpO2 that is negative or not a number, or a ``battery_pct`` that is not
a number. The locator of an unparseable line also names the ``event_id`` when the damaged bytes
still show it (the generator's ``_truth`` convention); a parsed but invalid event is located by
``line N`` alone, its event_id being in the reason and the payload. ``arrival_time`` is the
drop's closing instant when the file name carries one (``20240501T140000Z.jsonl``), else null.
Streaming needs nothing special: the ingest log is the checkpoint, so a run after new drops
arrived lands only those files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import re
import zlib
from pathlib import Path

import orjson

from python_ingest.discovery import visible_files
from python_ingest.model import FileOutcome, Quarantined, record_hash
from python_ingest.source_bytes import read_source
from python_ingest.wearables_columns import json_kind
from python_ingest.wearables_csv import read_csv
from python_ingest.wearables_events import EventBatches
from python_ingest.wearables_fitbit import is_time_series, read_time_series
from python_ingest.wearables_fitbit_api import is_api_response, read_api_response
from python_ingest.wearables_fitbit_logs import is_log_array, read_logs

EVENTS, ENROLLMENT = "wearables_events", "wearables_enrollment"

BATCH_LINES = 4096  # lines parsed before their dicts are converted and dropped
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
    data = read_source(path)
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
        return visible_files(source, lambda p: file_kind(p) is not None)

    def read(self, path: Path) -> FileOutcome:
        kind = file_kind(path)
        try:
            data = read_bytes(path)
        except (OSError, EOFError, zlib.error) as exc:  # a .gz cut short or not gzip at all
            reason = f"the file could not be read (or gunzipped): {type(exc).__name__}: {exc}"
            return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)
        if kind == "csv":
            return read_csv(path, data)
        if kind == "json":
            outcome = _read_json_document(path, data)
            if outcome is not None:
                return outcome
        return read_json_lines(path, data)

    def read_many(self, paths: list[Path]) -> list[FileOutcome]:
        """``read`` of each path, the JSON-lines drops built into one table and sliced.

        An hourly drop holds a few dozen events, so building its table costs more in Arrow
        calls than parsing it; a pool task's drops share those calls instead. Every other
        file, and a drop with fields outside the known schema (whose extra columns are named
        per file), is read on its own: each outcome is exactly what ``read`` returns.
        """
        out: list[FileOutcome | None] = [None] * len(paths)
        batches, grouped = EventBatches(), []
        for i, path in enumerate(paths):
            data = None
            if file_kind(path) == "lines":
                with contextlib.suppress(OSError, EOFError, zlib.error):
                    data = read_bytes(path)
            if data is None:  # not a drop, or unreadable: ``read`` says why
                out[i] = self.read(path)
                continue
            add_json_lines(batches, data, len(grouped))
            grouped.append((i, path, data))
        arrivals = [arrival_time(path) for _, path, _ in grouped]
        for k, outcome in enumerate(batches.outcomes(arrivals, "jsonl")):
            i, path, data = grouped[k]
            out[i] = read_json_lines(path, data) if k in batches.extra_owners else outcome
        return [o for o in out if o is not None]


def read_json_lines(path: Path, data: bytes) -> FileOutcome:
    """One event per non-blank line; a bad line is quarantined and the rest still land."""
    batches = EventBatches()
    add_json_lines(batches, data)
    return batches.outcome(arrival_time(path), "jsonl")


def add_json_lines(batches: EventBatches, data: bytes, owner: int = 0) -> None:
    """Add the lines of one file (``owner`` in ``batches``'s group) to ``batches``."""
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    lines = data.split(b"\n")
    if b"\r" in data:  # CRLF line ends: the record is the line without its terminator
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    for start in range(0, len(lines), BATCH_LINES):
        events: list[dict] = []
        raws: list[bytes] = []
        numbers: list[int] = []
        for number, line in enumerate(lines[start : start + BATCH_LINES], start + 1):
            try:
                event = loads(line)
            except decode_error as exc:
                if line and not line.isspace():  # a blank line is no record
                    batches.reject(_unparseable(number, line, exc), owner)
                continue
            if type(event) is dict:
                events.append(event)
                raws.append(line)
                numbers.append(number)
            else:
                reason = f"the line is valid JSON but a {json_kind(event)}, not an event object"
                batches.reject(Quarantined(f"line {number}", reason, line), owner)
        batches.queue(events, raws, [f"line {n}" for n in numbers], owner)


def _read_json_document(path: Path, data: bytes) -> FileOutcome | None:
    """A ``.json`` file holding one array or object of events; None if it is JSON lines."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if is_time_series(document):
        return read_time_series(path, document)
    if is_log_array(document):
        return read_logs(path, document)
    if is_api_response(document):
        return read_api_response(path, document)
    items = document if isinstance(document, list) else [document]
    batches = EventBatches()
    events, raws, locators = [], [], []
    for i, item in enumerate(items, 1):
        raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if type(item) is not dict:
            reason = f"the item is a {json_kind(item)}, not an event object"
            batches.reject(Quarantined(f"item {i}", reason, raw))
            continue
        events.append(item)
        raws.append(raw)
        locators.append(f"item {i}" if isinstance(document, list) else "document")
    batches.add(events, raws, locators, [record_hash(raw) for raw in raws])
    return batches.outcome(arrival_time(path), "json")


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
