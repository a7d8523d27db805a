"""The CSVs of the wearables modality: the enrollment register and Fitabase (Fitbit) exports.

``enrollment.csv`` (device_id, device_model, patient_mrn, enrolled_on, withdrawn_on) is the study
coordinator's register, the only link from a device to a patient: one row per line into
``wearables_enrollment``. Dates are ISO ``YYYY-MM-DD``; an empty ``withdrawn_on`` means still
enrolled.

Fitabase exports (``dailyActivity_merged.csv``, ``hourlySteps_merged.csv``,
``minuteStepsWide_merged.csv``, ``sleepDay_merged.csv``, ``weightLogInfo_merged.csv``, ...) are
tables with a participant ``Id``, one time column in the device's local time without a zone
(``M/D/YYYY h:mm:ss AM|PM`` or ``M/D/YYYY``), then value columns. They land in
``wearables_events`` melted to one event per non-empty value cell, since that table holds one
measurement per row:

* ``metric`` is ``<dataset>.<column>`` with the dataset from the file name (``_merged`` dropped):
  ``hourlySteps.StepTotal``, ``dailyActivity.TotalSteps``, ``weightLogInfo.Fat``. The vendor's
  names are kept: the same steps exist per minute, hour and day, and must not be summed together.
  Wide minute files (``Steps00`` .. ``Steps59``) give ``minuteStepsWide.Steps`` with the minute
  added to the row's hour;
* ``user_id`` is the Fitabase ``Id``; ``value`` the cell as written and ``value_num`` its number;
  ``start_time_raw`` the row's time as written, ``start_time_local`` its parsed wall clock (the
  UTC ``start_time`` stays null: the export does not say the zone). No unit, device or event id is
  sent, so those stay null;
* the record (accounting unit, locator ``line N``, ``_record_hash`` over the line's bytes) is the
  CSV row: every event of a row shares them, the locator adding ``column <name>``. Exact duplicate
  rows (sleepDay has 3) land twice, with the same hash, like re-sent JSON events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.csv_util import csv_records
from python_ingest.model import FileOutcome, Quarantined
from python_ingest.wearables_columns import (
    ENROLLMENT_SCHEMA,
    EVENT_SCHEMA,
    extra_column_names,
    finish,
    numeric_array,
    parse_local_times,
)

EVENTS, ENROLLMENT = "wearables_events", "wearables_enrollment"
FITABASE_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",  # what Fitabase writes: 4/12/2016 1:00:00 PM
    "%m/%d/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
)
_MINUTE_COLUMN = re.compile(r"^([A-Za-z_]+?)([0-5][0-9])$")
_DATES = ("enrolled_on", "withdrawn_on")


def _row_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def read_csv(path: Path, data: bytes) -> FileOutcome:
    """Dispatch on the header: enrollment register, Fitabase export, or quarantine the file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        reason = f"the CSV is not UTF-8 text (byte 0x{data[exc.start]:02X} at offset {exc.start})"
        return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)
    records = csv_records(text)
    header = next(records, None)
    if header is None:
        return FileOutcome()  # an empty file holds no record
    names = [name.strip() for name in header[2]]
    lowered = [name.lower() for name in names]
    if "device_id" in lowered:
        return _enrollment(names, records)
    if len(names) >= 3 and lowered[0] == "id":
        return _fitabase(_dataset(path), names, records)
    reason = (
        "not a wearables CSV this reader knows: expected the enrollment register (a device_id "
        "column) or a Fitabase export (Id, a time column, values); the header is "
        + ", ".join(names)[:300]
    )
    return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)


def _dataset(path: Path) -> str:
    stem = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    stem = stem[: -len(".csv")]
    return re.sub(r"_merged$", "", stem, flags=re.IGNORECASE)


def _enrollment(names: list[str], records: Iterator[tuple[int, str, list[str]]]) -> FileOutcome:
    """One register row per device; a row without a device or with a bad date is quarantined."""
    position: dict[str, int] = {}
    for i, name in enumerate(names):
        position.setdefault(name.lower(), i)
    known = set(ENROLLMENT_SCHEMA.names)
    extras = extra_column_names(
        [n for n in dict.fromkeys(names) if n.lower() not in known], ENROLLMENT_SCHEMA.names
    )
    out: dict[str, list] = {name: [] for name in [*known, *extras.values()]}
    locators, hashes, bad = [], [], []
    for line, raw, row in records:
        locator = f"line {line}"
        if len(row) != len(names):
            reason = f"the row has {len(row)} fields but the header has {len(names)}"
            bad.append(Quarantined(locator, reason, raw))
            continue
        values = {f: row[position[f]].strip() if f in position else "" for f in known}
        problems = [] if values["device_id"] else ["device_id is empty"]
        for name in _DATES:
            try:
                values[name] = dt.date.fromisoformat(values[name]) if values[name] else None
            except ValueError:
                problems.append(f"{name} {values[name]!r} is not an ISO date (YYYY-MM-DD)")
        if problems:
            bad.append(Quarantined(locator, "; ".join(problems), raw))
            continue
        for name in known:
            out[name].append(values[name] if name in _DATES else values[name] or None)
        for field, column in extras.items():
            out[column].append(row[names.index(field)])
        locators.append(locator)
        hashes.append(_row_hash(raw))
    columns = {
        f.name: pa.array(out[f.name], f.type if f.name in known else pa.string())
        for f in [*ENROLLMENT_SCHEMA, *(pa.field(c, pa.string()) for c in extras.values())]
    }
    columns["_source_locator"] = pa.array(locators, pa.string())
    columns["_record_hash"] = pa.array(hashes, pa.string())
    table = finish(columns, ENROLLMENT_SCHEMA, list(extras.values()))
    return FileOutcome(
        tables={ENROLLMENT: table} if table.num_rows else {},
        quarantined=bad,
        records_read=table.num_rows + len(bad),
        records_landed=table.num_rows,
    )


def _fitabase(
    dataset: str, names: list[str], records: Iterator[tuple[int, str, list[str]]]
) -> FileOutcome:
    """Melt a Fitabase table into events, column-wise in Arrow."""
    width, time_name = len(names), names[1]
    bad: list[Quarantined] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    raws: list[str] = []
    for line, raw, row in records:
        if len(row) != width:
            reason = f"the row has {len(row)} fields but the header has {width}"
            bad.append(Quarantined(f"line {line}", reason, raw))
            continue
        rows.append(row)
        lines.append(line)
        raws.append(raw)
    if not rows:
        return FileOutcome(quarantined=bad, records_read=len(bad))
    cells = [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]
    user = pc.utf8_trim_whitespace(cells[0])
    when_raw = pc.utf8_trim_whitespace(cells[1])
    when, when_bad = parse_local_times(when_raw, FITABASE_TIME_FORMATS)
    present = [
        np.asarray(pc.not_equal(pc.utf8_trim_whitespace(c), "").to_numpy(False), dtype=bool)
        for c in cells[2:]
    ]
    no_id = np.asarray(pc.equal(user, "").to_numpy(False), dtype=bool)
    empty = ~np.logical_or.reduce(present)
    ok = ~(no_id | when_bad | empty)
    for i in np.flatnonzero(~ok):
        problems = ["Id is empty"] if no_id[i] else []
        if when_bad[i]:
            problems.append(f"{time_name} {when_raw[i].as_py()!r} is not a date-time")
        if empty[i]:
            problems.append("the row has no values")
        bad.append(Quarantined(f"line {lines[i]}", "; ".join(problems), raws[i]))

    n_rows, value_names = len(rows), names[2:]
    minutes = _minute_columns(dataset, value_names)
    metrics = [m for m, _ in minutes] if minutes else [f"{dataset}.{c}" for c in value_names]
    # Every landed cell in file order (row by row, columns left to right): row and column index.
    row_of, col_of = np.nonzero(np.column_stack(present) & ok[:, None])
    row_at = pa.array(row_of)
    col_at = pa.array(col_of)
    hashes = pa.array(
        [_row_hash(raw) if keep else None for raw, keep in zip(raws, ok, strict=True)]
    )
    value = pa.concat_arrays(cells[2:]).take(pa.array(col_of * n_rows + row_of))
    start = when.take(row_at)
    if minutes:
        offsets = np.array([minute for _, minute in minutes], dtype=np.int64) * 60_000_000
        start = pc.add(start, pa.array(offsets[col_of], pa.duration("us")))
    labels = pa.array([f"column {c}" for c in value_names], pa.string())
    prefix = pa.array([f"line {n}" for n in lines], pa.string())
    columns = {
        "user_id": user.take(row_at),
        "metric": pa.array(metrics, pa.string()).take(col_at),
        "value": value,
        "value_num": _numbers(value),
        "start_time_local": start,
        "start_time_raw": when_raw.take(row_at),
        "source_format": pa.array(["fitabase_csv"] * len(row_of), pa.string()),
        "_source_locator": pc.binary_join_element_wise(
            prefix.take(row_at), labels.take(col_at), " "
        ),
        "_record_hash": hashes.take(row_at),
    }
    table = finish(columns, EVENT_SCHEMA, [])
    bad.sort(key=lambda q: int(q.locator.split()[1]))
    landed = int(ok.sum())
    return FileOutcome(
        tables={EVENTS: table} if table.num_rows else {},
        quarantined=bad,
        records_read=landed + len(bad),
        records_landed=landed,
    )


def _minute_columns(dataset: str, names: list[str]) -> list[tuple[str, int]] | None:
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
