"""Fitbit Web API responses saved as JSON, as ``wearables_events``.

Research platforms and study apps pull a participant's data from the Fitbit Web API and keep
each response as it came: one JSON object whose members are the series asked for::

    {"activities-steps": [{"dateTime": "2019-01-01", "value": "1204"}],
     "activities-steps-intraday": {"dataset": [{"time": "00:00:00", "value": 0}, ...],
                                   "datasetInterval": 1, "datasetType": "minute"}}
    {"activities-heart": [{"dateTime": "2019-05-08", "value": {"restingHeartRate": 76, ...}}]}
    {"hrv": [{"dateTime": "2021-10-25", "value": {"dailyRmssd": 34.9, "deepRmssd": 27.4}}]}
    {"sleep": [{"logId": 26589710670, "startTime": "...", "levels": {...}, ...}],
     "summary": {"totalMinutesAsleep": 386, ...}}

Each member that is a series of dated readings lands as the account archive's series do
(``python_ingest.wearables_fitbit``), named by the member (``activities-steps.value``,
``hrv.dailyRmssd``), its readings located ``<member> item N``. A list of logs lands as the
archive's logs (``python_ingest.wearables_fitbit_logs``). An intraday member
(``<series>-intraday``: readings with a time of day in ``dataset``) lands one event per reading
on the day of the series it details; without that day its readings are quarantined, as their
time cannot be told. The other members (``summary``, ``pagination``) describe the response, not
readings: they are the API's own aggregates of the lists beside them, and land nothing.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from python_ingest.model import FileOutcome, Quarantined
from python_ingest.wearables_fitbit import TIME_KEY, is_time_series, read_time_series
from python_ingest.wearables_fitbit_logs import is_log_array, read_logs
from python_ingest.wearables_melt import combined

INTRADAY_SUFFIX = "-intraday"
INTRADAY_READINGS, INTRADAY_TIME = "dataset", "time"


def is_api_response(document: object) -> bool:
    """A JSON object with at least one member that is a series, a log list or an intraday set."""
    return (
        isinstance(document, dict)
        and "event_id" not in document
        and any(_kind(value) is not None for value in document.values())
    )


def read_api_response(path: Path, document: dict) -> FileOutcome:
    """Every series, log list and intraday set of one response (``is_api_response`` holds)."""
    parts = []
    for member, value in document.items():
        kind, prefix = _kind(value), f"{member} "
        if kind == "series":
            parts.append(read_time_series(path, value, dataset=member, prefix=prefix))
        elif kind == "logs":
            parts.append(read_logs(path, value, dataset=member, prefix=prefix))
        elif kind == "intraday":
            readings = value[INTRADAY_READINGS]
            series = member.removesuffix(INTRADAY_SUFFIX)
            day = _day_of(document.get(series))
            if day is None:
                parts.append(_undated(member, series, readings))
                continue
            parts.append(
                read_time_series(
                    path,
                    readings,
                    dataset=member,
                    prefix=prefix,
                    time_key=INTRADAY_TIME,
                    day=day,
                )
            )
    return combined(parts)


def _kind(value: object) -> str | None:
    if is_time_series(value):
        return "series"
    if is_log_array(value):
        return "logs"
    if isinstance(value, dict) and isinstance(value.get(INTRADAY_READINGS), list):
        return "intraday"
    return None


def _day_of(series: object) -> str | None:
    """The one day a series covers (an intraday request is for a single day), else None."""
    if not isinstance(series, list):
        return None
    days = {item.get(TIME_KEY) for item in series if isinstance(item, dict)}
    day = days.pop() if len(days) == 1 else None
    return day.strip() if isinstance(day, str) and day.strip() else None


def _undated(member: str, series: str, readings: list) -> FileOutcome:
    """An intraday set whose day is not in the response: each reading quarantined."""
    reason = (
        f"the reading gives a time of day only, and the response has no single-day {series!r} "
        "series to say which day"
    )
    bad = [
        Quarantined(f"{member} item {i}", reason, orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
        for i, item in enumerate(readings, 1)
    ]
    return FileOutcome(quarantined=bad, records_read=len(bad))
