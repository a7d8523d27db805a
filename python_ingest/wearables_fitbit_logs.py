"""A Fitbit account archive's logs (sleep, exercise) as ``wearables_events``.

Beside its time series, the archive (and Google Takeout's copy of it) writes the person's
logged sessions, one file per period or page: ``sleep-2020-03-21.json``, ``exercise-100.json``.
Each is an array of logs, a session with an id, a start and a length::

    [{"logId": 26589710670, "startTime": "2020-03-21T23:36:30.000",
      "endTime": "2020-03-22T06:47:30.000", "minutesAsleep": 386, "efficiency": 93,
      "levels": {"summary": {"deep": {"minutes": 104, ...}, ...},
                 "data": [{"dateTime": "2020-03-21T23:36:30.000", "level": "wake",
                           "seconds": 30}, ...],
                 "shortData": [...]}, ...}]

A log is the record (locator ``item N``, ``_record_hash`` over its canonical JSON). It lands as
one event per field at the log's ``startTime`` (``sleep.minutesAsleep``,
``sleep.levels.summary.deep.minutes``, ``exercise.steps``; a list of plain values or of objects
without their own time, such as ``heartRateZones``, as its JSON text), each ending at the log's
``endTime``, or ``startTime`` plus ``duration`` milliseconds where no end is written
(exercise). A list of timed entries inside a log (a sleep's ``levels.data`` and
``levels.shortData``: the hypnogram, stage by stage) lands one event per field of each entry at
the entry's own ``dateTime`` (``sleep.levels.data.level`` = ``light``), ending ``seconds``
later. Times are the device's local time, as in the rest of the archive.

A log lands whole or not at all: one without a ``startTime``, with a time that does not parse
(its own or a stage's), or with nothing in it is quarantined with the reason, stages and all,
so the hypnogram of a session is never half there.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.model import FileOutcome, Quarantined
from python_ingest.wearables_columns import json_kind
from python_ingest.wearables_fitbit import TIME_KEY, flatten
from python_ingest.wearables_melt import EVENTS, Sheet, dataset_name, locator_number, melt

ID_KEY, START_KEY, END_KEY = "logId", "startTime", "endTime"
DURATION_KEY = "duration"  # milliseconds, in Fitbit's logs
LENGTH_KEY = "seconds"  # of a timed entry (a sleep stage)
_PAGE = re.compile(r"-\d+$")  # exercise-100.json: the archive pages exercise logs by count


def is_log_array(document: object) -> bool:
    """An array of logs: some object has a ``logId`` and a ``startTime``, none an ``event_id``."""
    if not isinstance(document, list):
        return False
    items = [item for item in document if isinstance(item, dict)]
    return any(ID_KEY in item and START_KEY in item for item in items) and not any(
        "event_id" in item for item in items
    )


def read_logs(
    path: Path, document: list, *, dataset: str | None = None, prefix: str = ""
) -> FileOutcome:
    """The logs of one archive file as events (``is_log_array(document)`` holds); a Web API
    response names its list itself (``dataset``, locators after ``prefix``)."""
    dataset = dataset or _PAGE.sub("", dataset_name(path)) or dataset_name(path)
    bad: list[Quarantined] = []
    logs: list[tuple[str, dict, bytes]] = []  # (locator, log, raw) of each log that may land
    for i, item in enumerate(document, 1):
        raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if not isinstance(item, dict):
            reason = f"the item is a {json_kind(item)}, not a log object"
            bad.append(Quarantined(f"{prefix}item {i}", reason, raw))
        elif not isinstance(item.get(START_KEY), str) or not item[START_KEY].strip():
            shown = orjson.dumps(item.get(START_KEY)).decode()
            reason = f"the log has no {START_KEY} (found {shown})"
            bad.append(Quarantined(f"{prefix}item {i}", reason, raw))
        else:
            logs.append((f"{prefix}item {i}", item, raw))
    raws = {locator: raw for locator, _, raw in logs}
    stages = [_entry_sheet(dataset, name, logs) for name in _entry_lists(logs)]
    # A log with a stage that cannot land is set aside whole, before its summary is melted.
    failed: dict[str, list[str]] = {}
    for sheet in stages:
        for q in melt(sheet, []).quarantined:
            failed.setdefault(_log_of(q.locator), []).append(f"{q.locator}: {q.reason}")
    for locator, problems in failed.items():
        reason = "a timed entry cannot land: " + "; ".join(problems)
        bad.append(Quarantined(locator, reason, raws[locator]))
    summary = melt(_only(_summary_sheet(dataset, logs), set(raws) - set(failed)), [])
    bad += summary.quarantined
    table = summary.tables.get(EVENTS)
    tables = [table] if table is not None else []
    locators = pc.unique(table.column("_source_locator")).to_pylist() if tables else []
    landed = {_log_of(locator) for locator in locators}
    for sheet in stages:
        kept = _only(sheet, landed)
        if kept.rows:
            tables.append(melt(kept, []).tables[EVENTS])
    bad.sort(key=lambda q: locator_number(q.locator))
    return FileOutcome(
        tables={EVENTS: pa.concat_tables(tables)} if tables else {},
        quarantined=bad,
        records_read=len(document),
        records_landed=len(landed),
    )


def _summary_sheet(dataset: str, logs: list[tuple[str, dict, bytes]]) -> Sheet:
    """A row per log at its start: every field but the start, the end and timed entry lists."""
    sheet = _sheet(dataset, logs, START_KEY, (START_KEY, END_KEY), "log")
    sheet.ends = [_text(log.get(END_KEY)) for _, log, _ in logs]
    sheet.end_name = END_KEY
    sheet.lengths_s = [_seconds(log.get(DURATION_KEY), 1000) for _, log, _ in logs]
    return sheet


def _entry_sheet(dataset: str, name: str, logs: list[tuple[str, dict, bytes]]) -> Sheet:
    """A row per timed entry of list ``name`` (dotted, ``levels.data``) across the logs."""
    entries: list[tuple[str, dict, bytes]] = []  # (locator, entry, the log's raw)
    for locator, log, raw in logs:
        found = _at(log, name)
        for k, entry in enumerate(found if isinstance(found, list) else [], 1):
            entries.append(
                (f"{locator} {name}[{k}]", entry if isinstance(entry, dict) else {}, raw)
            )
    sheet = _sheet(f"{dataset}.{name}", entries, TIME_KEY, (TIME_KEY,), "entry")
    sheet.lengths_s = [_seconds(entry.get(LENGTH_KEY), 1) for _, entry, _ in entries]
    return sheet


def _sheet(
    dataset: str,
    records: list[tuple[str, dict, bytes]],
    time_key: str,
    dropped: tuple[str, ...],
    noun: str,
) -> Sheet:
    """The records (locator, object, raw) as a sheet timed by ``time_key``, a column per field
    (timed entry lists and the ``dropped`` keys left out)."""
    cells = []
    for _, record, _ in records:
        fields: dict[str, str] = {}
        for key, value in record.items():
            if key not in dropped:
                flatten(key, value, fields, skip=_is_entry_list)
        cells.append(fields)
    names = list(dict.fromkeys(name for fields in cells for name in fields))
    return Sheet(
        dataset=dataset,
        source_format="fitbit_json",
        has_user=False,
        time_name=time_key,
        value_names=names,
        rows=[
            [_text(record.get(time_key)), *(fields.get(n, "") for n in names)]
            for (_, record, _), fields in zip(records, cells, strict=True)
        ],
        locators=[locator for locator, _, _ in records],
        raws=[raw for _, _, raw in records],
        cell_label="field",
        record_noun=noun,
    )


def _is_entry_list(value: object) -> bool:
    """A list of timed entries (objects with ``dateTime``): these land as events of their own."""
    return isinstance(value, list) and any(
        isinstance(entry, dict) and TIME_KEY in entry for entry in value
    )


def _entry_lists(logs: list[tuple[str, dict, bytes]]) -> list[str]:
    """The dotted names of the timed entry lists in any log, in order of first appearance."""
    found: dict[str, None] = {}

    def walk(prefix: str, value: object) -> None:
        if _is_entry_list(value):
            found[prefix] = None
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)

    for _, log, _ in logs:
        walk("", log)
    return list(found)


def _at(log: dict, dotted: str) -> object:
    value: object = log
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _only(sheet: Sheet, logs: set[str]) -> Sheet:
    """``sheet`` with the rows of the logs named (``item N``) only."""
    keep = [i for i, locator in enumerate(sheet.locators) if _log_of(locator) in logs]

    def pick(values: list | None) -> list | None:
        return None if values is None else [values[i] for i in keep]

    return replace(
        sheet,
        rows=pick(sheet.rows),
        locators=pick(sheet.locators),
        raws=pick(sheet.raws),
        ends=pick(sheet.ends),
        lengths_s=pick(sheet.lengths_s),
    )


def _log_of(locator: str) -> str:
    """``item 3`` (or ``sleep item 3``) from any locator of the log
    (``item 3 levels.data[2] field level``)."""
    words = locator.split()
    return " ".join(words[: words.index("item") + 2])


def _text(value: object) -> str:
    return (
        value if isinstance(value, str) else "" if value is None else orjson.dumps(value).decode()
    )


def _seconds(value: object, per_second: float) -> float | None:
    """A length in seconds from a JSON number in units of ``1 / per_second`` s, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / per_second
    return float(seconds) if np.isfinite(seconds) and seconds >= 0 else None
