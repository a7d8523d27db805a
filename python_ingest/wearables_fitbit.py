"""A Fitbit account archive's JSON time series, as a table for ``wearables_melt``.

Fitbit's own data export (the account archive, and Google Takeout's copy of it) writes one file
per metric and period, ``<metric>-<first day>.json``, holding an array of readings::

    [{"dateTime": "04/01/20 00:00:04", "value": {"bpm": 71, "confidence": 2}}, ...]
    [{"dateTime": "04/01/20 00:01:00", "value": "0"}, ...]

A reading carries no event id, device or user: the archive is one person's. Each reading is a
record (locator ``item N``, ``_record_hash`` over its canonical JSON, as for any JSON array of
events); its ``value`` becomes one event per field (``heart_rate.bpm``,
``heart_rate.confidence``; nested objects are dotted: ``time_in_heart_rate_zones.valuesInZones.
IN_DEFAULT_ZONE_1``) or a single ``<metric>.value`` when it is a plain number or string. Times are
the device's local time without a zone. A reading with no ``dateTime``, or whose value holds
nothing, is quarantined with the reason.

Arrays of other objects are not time series: device-cloud events (with an ``event_id``) stay
with the event reader, and the archive's logs of sleep and exercise (a ``logId`` and a
``startTime``, no ``dateTime``) go to ``python_ingest.wearables_fitbit_logs``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson

from python_ingest.model import FileOutcome, Quarantined
from python_ingest.wearables_columns import json_kind
from python_ingest.wearables_melt import Sheet, dataset_name, melt

TIME_KEY = "dateTime"


def is_time_series(document: object) -> bool:
    """An array of readings: some object has ``dateTime`` and none an ``event_id``.

    "Some", not "every": a reading that lost its ``dateTime`` is one bad record of the series,
    quarantined as such, not a reason to read the whole file as device-cloud events.
    """
    if not isinstance(document, list):
        return False
    readings = [item for item in document if isinstance(item, dict)]
    return any(TIME_KEY in item for item in readings) and not any(
        "event_id" in item for item in readings
    )


def read_time_series(
    path: Path,
    document: list,
    *,
    dataset: str | None = None,
    prefix: str = "",
    time_key: str = TIME_KEY,
    day: str | None = None,
) -> FileOutcome:
    """The readings of one archive file as events (``is_time_series(document)`` holds).

    A Web API response names its series itself (``dataset``, and ``prefix`` keeps its readings'
    locators apart from another series' in the same file); an intraday series gives the time
    of day only (``time_key`` ``time``), on the ``day`` of the series it details.
    """
    bad: list[Quarantined] = []
    cells: list[dict[str, str]] = []
    kept: list[tuple[str, str, bytes]] = []  # (locator, time, raw) per reading that may land
    for i, item in enumerate(document, 1):
        locator = f"{prefix}item {i}"
        raw = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
        if not isinstance(item, dict):
            reason = f"the item is a {json_kind(item)}, not a reading object"
            bad.append(Quarantined(locator, reason, raw))
            continue
        when = item.get(time_key)
        if not isinstance(when, str) or not when.strip():
            reason = f"the reading has no {time_key} (found {orjson.dumps(when).decode()})"
            bad.append(Quarantined(locator, reason, raw))
            continue
        fields: dict[str, str] = {}
        for key, value in item.items():
            if key != time_key:
                flatten("" if key == "value" else key, value, fields)
        cells.append(fields)
        kept.append((locator, f"{day} {when.strip()}" if day else when, raw))
    names = list(dict.fromkeys(name for fields in cells for name in fields))
    sheet = Sheet(
        dataset=dataset or dataset_name(path),
        source_format="fitbit_json",
        has_user=False,
        time_name=time_key,
        value_names=names,
        rows=[
            [when, *(fields.get(n, "") for n in names)]
            for (_, when, _), fields in zip(kept, cells, strict=True)
        ],
        locators=[locator for locator, _, _ in kept],
        raws=[raw for _, _, raw in kept],
        cell_label="field",
        record_noun="reading",
    )
    return melt(sheet, bad)


def flatten(
    name: str,
    value: object,
    into: dict[str, str],
    skip: Callable[[object], bool] | None = None,
) -> None:
    """A record's fields as text cells, nested objects dotted; null is an empty cell.

    Values ``skip`` holds true for (a log's timed entry lists, which land on their own) are
    left out, at any depth.
    """
    if skip is not None and skip(value):
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{name}.{key}" if name else str(key), inner, into, skip)
        return
    if value is None:
        text = ""
    elif isinstance(value, str):
        text = value
    else:  # numbers, booleans and lists as their JSON text
        text = orjson.dumps(value).decode()
    into[name or "value"] = text
