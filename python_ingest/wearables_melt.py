"""Vendor measurement tables melted into ``wearables_events``, one event per value cell.

Fitabase research exports and a person's own Fitbit account export hold the same kind of data
as the device cloud, shaped as tables: a row per time (and per participant, in Fitabase), a
column per measure. ``wearables_events`` holds one measurement per row, so a row becomes one
event per non-empty value cell. The row stays the unit of accounting (locator ``line N`` or
``item N``, ``_record_hash`` over its bytes): every event of a row shares them, the locator adding
the cell's column. A row is quarantined whole when its participant id is empty, its time is not a
date-time, or it has no value at all.

``metric`` is ``<dataset>.<column>`` with the vendor's names kept: the same steps exist per
minute, hour and day, and must not be summed together. Wide minute files (``Steps00`` ..
``Steps59``) give ``<dataset>.Steps`` with the minute added to the row's time.

Times: Fitabase and the Fitbit archive write local device time with no zone, which lands as
``start_time_local`` with the UTC ``start_time`` null (the export does not say the zone); a time
written in ISO 8601 with ``Z`` or an offset (newer Fitbit exports) also gets its UTC instant.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.model import FileOutcome, Quarantined, record_hash
from python_ingest.wearables_columns import (
    EVENT_SCHEMA,
    LOCAL_TS,
    ParsedTimes,
    finish,
    numeric_array,
    parse_iso_times,
    parse_local_times,
)

EVENTS = "wearables_events"
LOCAL_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",  # what Fitabase writes: 4/12/2016 1:00:00 PM
    # Two-digit years before four: "%Y" reads the archive's 04/01/20 as the year 20.
    "%m/%d/%y %H:%M:%S",  # the Fitbit account archive's JSON: 04/01/20 00:00:04
    "%m/%d/%y",
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
)
_MINUTE_COLUMN = re.compile(r"^([A-Za-z_]+?)([0-5][0-9])$")
_DATED = re.compile(r"\s*[-_]\s*\d{4}-\d{2}-\d{2}$")  # "_2024-01-01", " - 2021-11-30"


@dataclass
class Sheet:
    """A vendor table: the time column's name, value columns, and its rows as text.

    ``rows[i]`` is ``[user, time, *values]`` when ``has_user`` (Fitabase's ``Id``), else
    ``[time, *values]``; an empty string is an empty cell. ``locators[i]`` (``line N`` /
    ``item N``) and ``raws[i]`` (the record's bytes or text) say where the row came from.
    """

    dataset: str
    source_format: str
    has_user: bool
    time_name: str
    value_names: list[str]
    rows: list[list[str]]
    locators: list[str]
    raws: list[str | bytes]
    cell_label: str = "column"  # how the locator names a cell: "line 3 column StepTotal"
    record_noun: str = "row"  # how a reason names the record: "the row has no values"
    # When a row's measurement ends, for records that span time (a sleep, a workout): the end
    # as written (``ends[i]``, "" for none; ``end_name`` in reasons), else the row's time plus
    # ``lengths_s[i]`` seconds (then ``end_time_raw`` stays null: nothing was written).
    ends: list[str] | None = None
    end_name: str = "end"
    lengths_s: list[float | None] | None = None


def dataset_name(path: Path) -> str:
    """The export's dataset from its file name: ``hourlySteps_merged.csv`` -> ``hourlySteps``,
    ``heart_rate-2020-04-01.json``, ``heart_rate_2024-01-01.csv`` -> ``heart_rate`` and
    ``Daily SpO2 - 2021-11-30.csv`` -> ``Daily SpO2`` (a Fitbit archive writes a file per metric
    and period, named by the period's first day)."""
    stem = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    stem = stem.rsplit(".", 1)[0]
    stem = re.sub(r"_merged$", "", stem, flags=re.IGNORECASE)
    return _DATED.sub("", stem) or stem


def parse_times(raw: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(UTC instant, local wall clock, not-a-time) of each string.

    The vendors' local forms are tried first, vectorized (a Fitabase file has millions of rows);
    what none of them takes goes through ISO 8601, which keeps an offset as the UTC instant.
    """
    local, bad = parse_local_times(raw, LOCAL_TIME_FORMATS)
    utc = pa.nulls(len(raw), EVENT_SCHEMA.field("start_time").type)
    if not bad.any():
        return utc, local, bad
    rest = np.flatnonzero(bad)
    iso = parse_iso_times(raw.take(pa.array(rest)))
    mask = pa.array(bad)  # the ISO values go where the local forms failed, in order
    utc = pc.replace_with_mask(utc, mask, iso.utc.cast(utc.type))
    local = pc.replace_with_mask(local, mask, iso.local.cast(LOCAL_TS))
    still_bad = bad.copy()
    still_bad[rest] = iso.bad
    return utc, local, still_bad


def melt(sheet: Sheet, bad: list[Quarantined]) -> FileOutcome:
    """The sheet's events; rows that cannot land join ``bad`` (records set aside earlier)."""
    bad = list(bad)
    rows, first = sheet.rows, 1 if sheet.has_user else 0
    if not rows:
        return FileOutcome(quarantined=bad, records_read=len(bad))
    cells = [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
    when_raw = pc.utf8_trim_whitespace(cells[first])
    utc, local, when_bad = parse_times(when_raw)
    values = cells[first + 1 :]
    present = [
        np.asarray(pc.not_equal(pc.utf8_trim_whitespace(c), "").to_numpy(False), dtype=bool)
        for c in values
    ]
    n_rows = len(rows)
    user = pc.utf8_trim_whitespace(cells[0]) if sheet.has_user else pa.nulls(n_rows, pa.string())
    no_id = (
        np.asarray(pc.equal(user, "").to_numpy(False), dtype=bool)
        if sheet.has_user
        else np.zeros(n_rows, dtype=bool)
    )
    empty = ~np.logical_or.reduce(present) if present else np.ones(n_rows, dtype=bool)
    end = _ends(sheet, utc, local)
    ok = ~(no_id | when_bad | empty | end.bad)
    for i in np.flatnonzero(~ok):
        problems = ["Id is empty"] if no_id[i] else []
        if when_bad[i]:
            problems.append(f"{sheet.time_name} {when_raw[i].as_py()!r} is not a date-time")
        if end.bad[i]:
            problems.append(f"{sheet.end_name} {end.raw[i].as_py()!r} is not a date-time")
        if empty[i]:
            problems.append(f"the {sheet.record_noun} has no values")
        bad.append(Quarantined(sheet.locators[i], "; ".join(problems), sheet.raws[i]))

    if not ok.any():
        bad.sort(key=lambda q: locator_number(q.locator))
        return FileOutcome(quarantined=bad, records_read=len(bad))
    minutes = _minute_columns(sheet.dataset, sheet.value_names)
    metrics = (
        [m for m, _ in minutes] if minutes else [f"{sheet.dataset}.{c}" for c in sheet.value_names]
    )
    # Every landed cell in file order (row by row, columns left to right): row and column index.
    row_of, col_of = np.nonzero(np.column_stack(present) & ok[:, None])
    row_at, col_at = pa.array(row_of), pa.array(col_of)
    hashes = pa.array(
        [record_hash(raw) if keep else None for raw, keep in zip(sheet.raws, ok, strict=True)]
    )
    value = pa.concat_arrays(values).take(pa.array(col_of * n_rows + row_of))
    start_local, start_utc = local.take(row_at), utc.take(row_at)
    if minutes:
        offsets = np.array([minute for _, minute in minutes], dtype=np.int64) * 60_000_000
        shift = pa.array(offsets[col_of], pa.duration("us"))
        start_local, start_utc = pc.add(start_local, shift), pc.add(start_utc, shift)
    labels = pa.array([f"{sheet.cell_label} {c}" for c in sheet.value_names], pa.string())
    prefix = pa.array(sheet.locators, pa.string())
    columns = {
        "user_id": user.take(row_at),
        "metric": pa.array(metrics, pa.string()).take(col_at),
        "value": value,
        "value_num": _numbers(value),
        "start_time": start_utc,
        "start_time_local": start_local,
        "start_time_raw": when_raw.take(row_at),
        "end_time": end.utc.take(row_at),
        "end_time_local": end.local.take(row_at),
        "end_time_raw": end.raw.take(row_at),
        "source_format": pa.array([sheet.source_format] * len(row_of), pa.string()),
        "_source_locator": pc.binary_join_element_wise(
            prefix.take(row_at), labels.take(col_at), " "
        ),
        "_record_hash": hashes.take(row_at),
    }
    table = finish(columns, EVENT_SCHEMA, [])
    bad.sort(key=lambda q: locator_number(q.locator))
    landed = int(ok.sum())
    return FileOutcome(
        tables={EVENTS: table} if table.num_rows else {},
        quarantined=bad,
        records_read=landed + len(bad),
        records_landed=landed,
    )


def _ends(sheet: Sheet, start_utc: pa.Array, start_local: pa.Array) -> ParsedTimes:
    """Each row's end (null where it has none); ``bad`` marks an end written but not a time."""
    n = len(sheet.rows)
    utc, local = pa.nulls(n, start_utc.type), pa.nulls(n, LOCAL_TS)
    raw, bad = pa.nulls(n, pa.string()), np.zeros(n, dtype=bool)
    if sheet.lengths_s is not None:
        span = pc.cast(pc.multiply(pa.array(sheet.lengths_s, pa.float64()), 1e6), pa.int64()).cast(
            pa.duration("us")
        )
        utc, local = pc.add(start_utc, span), pc.add(start_local, span)
    if sheet.ends is not None:
        raw = pc.utf8_trim_whitespace(pa.array(sheet.ends, pa.string()))
        written = pc.not_equal(raw, "")
        raw = pc.if_else(written, raw, pa.nulls(n, pa.string()))
        end_utc, end_local, bad = parse_times(raw)
        utc, local = pc.if_else(written, end_utc, utc), pc.if_else(written, end_local, local)
    return ParsedTimes(raw, utc, local, bad)


def combined(parts: Sequence[FileOutcome]) -> FileOutcome:
    """One file's outcome from those of its parts, melted in turn (rows in file order)."""
    if len(parts) == 1:
        return parts[0]
    tables = [p.tables[EVENTS] for p in parts if EVENTS in p.tables]
    bad = [q for p in parts for q in p.quarantined]
    bad.sort(key=lambda q: locator_number(q.locator))
    return FileOutcome(
        tables={EVENTS: pa.concat_tables(tables)} if tables else {},
        quarantined=bad,
        records_read=sum(p.records_read for p in parts),
        records_landed=sum(p.records_landed for p in parts),
    )


def locator_number(locator: str) -> int:
    """The record's number in its locator (``line 9``, ``item 3``, ``sleep item 3 ...``), for
    putting quarantine rows in file order; 0 when it has none."""
    words = locator.split()
    for word, number in itertools.pairwise(words):
        if word in ("line", "item") and number.isdigit():
            return int(number)
    return 0


def _minute_columns(dataset: str, names: Sequence[str]) -> list[tuple[str, int]] | None:
    """(metric, minute) per column of a wide minute file (``Steps00`` .. ``Steps59``), else None."""
    if "wide" not in dataset.lower():
        return None
    matches = [_MINUTE_COLUMN.match(name) for name in names]
    if not all(matches):
        return None
    return [(f"{dataset}.{m.group(1)}", int(m.group(2))) for m in matches if m]


def _numbers(value: pa.Array) -> pa.Array:
    """The cells as doubles: Arrow's cast when all are numbers, else value by value."""
    try:
        return pc.cast(pc.utf8_trim_whitespace(value), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return numeric_array(value.to_pylist())[0]
