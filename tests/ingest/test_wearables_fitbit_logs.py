"""A Fitbit account archive's sleep and exercise logs land in ``wearables_events``.

The files are built to the archive's layout (``sleep-<day>.json``, ``exercise-<page>.json``):
every log is landed (an event per field, and per field of each sleep stage, with its start and
end) or quarantined whole with the reason; a re-run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import orjson
import pytest

from python_ingest.wearables import WearablesReader
from python_ingest.wearables_fitbit import is_time_series
from python_ingest.wearables_fitbit_logs import is_log_array
from tests.ingest.support import (
    Duck,
    Landed,
    bronze_state,
    check_reruns,
    file_accounts,
    land,
    scan,
)

STAGES = {
    "summary": {"deep": {"count": 1, "minutes": 20}, "wake": {"count": 1, "minutes": 1}},
    "data": [
        {"dateTime": "2020-03-21T23:36:30.000", "level": "wake", "seconds": 30},
        {"dateTime": "2020-03-21T23:37:00.000", "level": "deep", "seconds": 1200},
    ],
    "shortData": [{"dateTime": "2020-03-21T23:50:00.000", "level": "wake", "seconds": 60}],
}
SLEEP = [
    {
        "logId": 26589710670,
        "dateOfSleep": "2020-03-22",
        "startTime": "2020-03-21T23:36:30.000",
        "endTime": "2020-03-21T23:57:00.000",
        "minutesAsleep": 20,
        "type": "stages",
        "levels": STAGES,
        "mainSleep": True,
    },
    {  # classic sleep (older devices): the same layout, other levels
        "logId": 26589710671,
        "startTime": "2020-03-22T14:00:00.000",
        "endTime": "2020-03-22T14:01:00.000",
        "type": "classic",
        "levels": {
            "data": [{"dateTime": "2020-03-22T14:00:00.000", "level": "asleep", "seconds": 60}]
        },
    },
    {"logId": 26589710672, "endTime": "2020-03-23T06:00:00.000", "minutesAsleep": 300},
    {  # one stage with a time that is none: the whole log waits
        "logId": 26589710673,
        "startTime": "2020-03-24T00:00:00.000",
        "endTime": "2020-03-24T00:01:00.000",
        "levels": {"data": [{"dateTime": "not a time", "level": "rem", "seconds": 60}]},
    },
    "26589710674",
]
EXERCISE = [
    {
        "logId": 30016452410,
        "activityName": "Walk",
        "steps": 2364,
        "duration": 1536000,
        "startTime": "03/22/20 16:57:42",
        "heartRateZones": [{"name": "Out of Range", "min": 30, "max": 96, "minutes": 12}],
    },
    {"logId": 30016452411, "activityName": "Yoga", "startTime": "03/23/20 07:00:00"},
]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fitbit-logs") / "wearables"
    folder = root / "Fitbit" / "Global Export Data"
    folder.mkdir(parents=True)
    (folder / "sleep-2020-03-21.json").write_bytes(orjson.dumps(SLEEP))
    (folder / "exercise-100.json").write_bytes(orjson.dumps(EXERCISE))
    return root


@pytest.fixture(scope="module")
def landed(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return land(WearablesReader(), export, tmp_path_factory.mktemp("lakehouse"))


def _events(duck: Duck, bronze: Path, name: str) -> list[tuple]:
    return duck.query(
        "select metric, value, start_time_local, end_time_local, end_time_raw, _source_locator "
        f"from {scan(bronze, 'wearables_events')} where _source_file like ? "
        "order by _source_locator",
        f"%/{name}",
    )


def test_every_log_is_landed_or_quarantined(duck: Duck, landed: Landed) -> None:
    bronze, summary = landed
    log = file_accounts(duck, bronze)
    assert log == {"sleep-2020-03-21.json": (5, 2, 3), "exercise-100.json": (2, 2, 0)}
    assert summary.records_read == summary.records_landed + summary.records_quarantined == 7


def test_a_sleep_lands_its_summary_and_its_stages(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    events = _events(duck, bronze, "sleep-2020-03-21.json")
    start, end = dt.datetime(2020, 3, 21, 23, 36, 30), dt.datetime(2020, 3, 21, 23, 57)
    summary = {(m, v) for m, v, s, e, raw, loc in events if s == start and e == end}
    assert summary >= {
        ("sleep.logId", "26589710670"),
        ("sleep.minutesAsleep", "20"),
        ("sleep.levels.summary.deep.minutes", "20"),
        ("sleep.mainSleep", "true"),
    }
    ends = {loc.split()[1]: raw for m, *_, raw, loc in events if m == "sleep.type"}
    assert ends == {"1": "2020-03-21T23:57:00.000", "2": "2020-03-22T14:01:00.000"}
    stages = [(m, v, s, e, loc) for m, v, s, e, _, loc in events if m.endswith(".level")]
    assert stages == [
        ("sleep.levels.data.level", "wake", start, dt.datetime(2020, 3, 21, 23, 37),
         "item 1 levels.data[1] field level"),
        ("sleep.levels.data.level", "deep", dt.datetime(2020, 3, 21, 23, 37),
         dt.datetime(2020, 3, 21, 23, 57), "item 1 levels.data[2] field level"),
        ("sleep.levels.shortData.level", "wake", dt.datetime(2020, 3, 21, 23, 50),
         dt.datetime(2020, 3, 21, 23, 51), "item 1 levels.shortData[1] field level"),
        ("sleep.levels.data.level", "asleep", dt.datetime(2020, 3, 22, 14),
         dt.datetime(2020, 3, 22, 14, 1), "item 2 levels.data[1] field level"),
    ]  # fmt: skip
    # The log is the record: its stages share the hash of its canonical JSON.
    hashes = duck.query(
        f"select distinct _record_hash from {scan(bronze, 'wearables_events')} "
        "where _source_locator like 'item 1 %' and _source_file like '%sleep-%'"
    )
    canonical = orjson.dumps(SLEEP[0], option=orjson.OPT_SORT_KEYS)
    assert hashes == [(hashlib.sha256(canonical).hexdigest(),)]


def test_an_exercise_ends_its_duration_after_its_start(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    events = _events(duck, bronze, "exercise-100.json")
    walk = {m: (v, s, e, raw) for m, v, s, e, raw, loc in events if loc.startswith("item 1 ")}
    start = dt.datetime(2020, 3, 22, 16, 57, 42)
    assert walk["exercise.steps"] == ("2364", start, dt.datetime(2020, 3, 22, 17, 23, 18), None)
    assert (
        walk["exercise.heartRateZones"][0] == orjson.dumps(EXERCISE[0]["heartRateZones"]).decode()
    )
    yoga = [(m, v, s, e) for m, v, s, e, _, loc in events if loc.startswith("item 2 ")]
    assert ("exercise.activityName", "Yoga", dt.datetime(2020, 3, 23, 7), None) in yoga


def test_a_bad_log_is_quarantined_whole_with_the_reason(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    quarantined = duck.query(
        f"select _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where _source_file like '%sleep-%' order by _source_locator"
    )
    assert quarantined == [
        ("item 3", "the log has no startTime (found null)"),
        ("item 4", "a timed entry cannot land: item 4 levels.data[1]: "
         "dateTime 'not a time' is not a date-time"),
        ("item 5", "the item is a string, not a log object"),
    ]  # fmt: skip
    assert not duck.query(
        f"select 1 from {scan(bronze, 'wearables_events')} "
        "where _source_locator like 'item 4 %' and _source_file like '%sleep-%'"
    )


def test_rerun_changes_nothing(export: Path, landed: Landed) -> None:
    tables = ("wearables_events", "_quarantine")
    check_reruns(WearablesReader(), export, landed, lambda bronze: bronze_state(bronze, tables))


def test_logs_are_told_from_time_series_and_device_events() -> None:
    assert is_log_array(SLEEP) and is_log_array(EXERCISE)
    assert not is_time_series(SLEEP)
    assert not is_log_array([{"dateTime": "04/01/20 00:00:00", "value": 1}])
    assert not is_log_array([{"logId": 1, "startTime": "03/23/20 07:00:00", "event_id": "e"}])
    assert not is_log_array({"logId": 1, "startTime": "03/23/20 07:00:00"})
