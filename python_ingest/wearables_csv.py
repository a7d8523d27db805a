"""The CSVs of the wearables modality: the enrollment register and vendor measurement tables.

``enrollment.csv`` (device_id, device_model, patient_mrn, enrolled_on, withdrawn_on) is the study
coordinator's register, the only link from a device to a patient: one row per line into
``wearables_enrollment``. Dates are ISO ``YYYY-MM-DD``; an empty ``withdrawn_on`` means still
enrolled.

Vendor tables land in ``wearables_events``, one event per non-empty value cell
(``python_ingest.wearables_melt`` says how), recognised by their header:

* Fitabase research exports (``dailyActivity_merged.csv``, ``hourlySteps_merged.csv``,
  ``minuteStepsWide_merged.csv``, ``heartrate_seconds_merged.csv``, ...): a participant ``Id``,
  one time column in the device's local time without a zone (``M/D/YYYY h:mm:ss AM|PM`` or
  ``M/D/YYYY``), then value columns. ``metric`` is ``<dataset>.<column>`` with the dataset from
  the file name (``_merged`` dropped): ``hourlySteps.StepTotal``, ``weightLogInfo.Fat``;
  ``user_id`` is the ``Id``. ``source_format`` ``fitabase_csv``.
* A person's own time series (a Fitbit account export's ``heart_rate_2024-01-01.csv``,
  ``Daily SpO2 - 2021-11-30.csv``, ``sleep_score.csv``): a column named like a time
  (``timestamp``, ``dateTime``, ``date_time``, ``recorded_time``, ``date``, ``time``; the first
  such column, wherever it stands), and values in the others. The dataset drops the file's
  period date (``heart_rate``, ``Daily SpO2``); there is no participant column, so
  ``user_id`` is null and the file lands unlinked until a steward maps it. ``source_format``
  ``fitbit_csv``.

In both the record (accounting unit, locator ``line N``, ``_record_hash`` over the line's bytes) is
the CSV row: every event of a row shares them, the locator adding ``column <name>``. Exact
duplicate rows (Fitabase's sleepDay has 3) land twice, with the same hash, like re-sent JSON
events. No unit, device or event id is sent, so those stay null. Any other CSV is quarantined
whole, with its header in the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from python_ingest.csv_util import csv_records, csv_text
from python_ingest.model import FileOutcome, Quarantined, record_hash
from python_ingest.wearables_columns import ENROLLMENT_SCHEMA, extra_column_names, finish
from python_ingest.wearables_melt import Sheet, combined, dataset_name, melt

EVENTS, ENROLLMENT = "wearables_events", "wearables_enrollment"
# Rows melted at once: a Fitabase file of millions of rows (heartrate_seconds) melts in bounded
# memory, its intermediate lists a few hundred MB instead of gigabytes.
MELT_ROWS = 200_000
# Time-column names of a single person's time series (a Fitbit account export's CSVs).
TIME_HEADERS = frozenset(
    (
        "timestamp",
        "datetime",
        "date_time",
        "recorded_time",
        "date",
        "time",
        "date time",
        "start time",
    )
)
_DATES = ("enrolled_on", "withdrawn_on")


def read_csv(path: Path, data: bytes) -> FileOutcome:
    """Dispatch on the header: enrollment register, Fitabase export, or quarantine the file."""
    text, problem = csv_text(data)
    if text is None:
        return FileOutcome(quarantined=[Quarantined("file", str(problem))], records_read=1)
    records = csv_records(text)
    header = next(records, None)
    if header is None:
        return FileOutcome()  # an empty file holds no record
    names = [name.strip() for name in header[2]]
    lowered = [name.lower() for name in names]
    if "device_id" in lowered:
        return _enrollment(names, records)
    if len(names) >= 3 and lowered[0] == "id":
        return _melted(path, names, records, has_user=True, source_format="fitabase_csv")
    timed = [i for i, name in enumerate(lowered) if name in TIME_HEADERS]
    if len(names) >= 2 and timed:
        if timed[0]:  # the time column first, as melt takes it: sleep_score.csv's is second
            order = [timed[0], *(i for i in range(len(names)) if i != timed[0])]
            names = [names[i] for i in order]
            records = (
                (n, raw, [row[i] for i in order] if len(row) == len(order) else row)
                for n, raw, row in records
            )
        return _melted(path, names, records, has_user=False, source_format="fitbit_csv")
    reason = (
        "not a wearables CSV this reader knows: expected the enrollment register (a device_id "
        "column), a Fitabase export (Id, a time column, values) or a time series (a column "
        "such as timestamp, and values); the header is " + ", ".join(names)[:300]
    )
    return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)


def _melted(
    path: Path,
    names: list[str],
    records: Iterator[tuple[int, str, list[str]]],
    *,
    has_user: bool,
    source_format: str,
) -> FileOutcome:
    """A vendor table's rows as events (``wearables_melt``), ``MELT_ROWS`` rows at a time; a
    ragged row is quarantined."""
    width, first = len(names), 1 if has_user else 0

    def sheet() -> Sheet:
        return Sheet(
            dataset=dataset_name(path),
            source_format=source_format,
            has_user=has_user,
            time_name=names[first],
            value_names=names[first + 1 :],
            rows=[],
            locators=[],
            raws=[],
        )

    parts, part, bad = [], sheet(), []
    for line, raw, row in records:
        if len(row) != width:
            reason = f"the row has {len(row)} fields but the header has {width}"
            bad.append(Quarantined(f"line {line}", reason, raw))
            continue
        part.rows.append(row)
        part.locators.append(f"line {line}")
        part.raws.append(raw)
        if len(part.rows) == MELT_ROWS:
            parts.append(melt(part, []))
            part = sheet()
    parts.append(melt(part, bad))
    return combined(parts)


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
        hashes.append(record_hash(raw))
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
