"""Fitbit Web API responses saved as JSON land in ``wearables_events``.

The responses are built to the Web API's documented shapes (activity and heart-rate series with
their intraday sets, HRV, sleep logs with the response's summary): each series, log and intraday
reading is landed or quarantined with the reason, and a re-run changes nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pytest

from python_ingest.wearables import WearablesReader
from python_ingest.wearables_fitbit_api import is_api_response
from tests.ingest.support import Duck, Landed, bronze_state, check_reruns, file_accounts, land, scan

STEPS = {
    "activities-steps": [{"dateTime": "2019-01-01", "value": "1204"}],
    "activities-steps-intraday": {
        "dataset": [
            {"time": "00:00:00", "value": 0},
            {"time": "00:01:00", "value": 12},
            {"value": 3},  # no time of day
        ],
        "datasetInterval": 1,
        "datasetType": "minute",
    },
}
HEART = {
    "activities-heart": [
        {"dateTime": "2019-05-08", "value": {"customHeartRateZones": [], "restingHeartRate": 76}}
    ],
    "activities-heart-intraday": {"dataset": [{"time": "08:00:05", "value": 78}]},
}
HRV = {"hrv": [{"value": {"dailyRmssd": 34.9, "deepRmssd": 27.4}, "dateTime": "2021-10-25"}]}
SLEEP = {
    "sleep": [
        {
            "logId": 1,
            "startTime": "2020-03-21T23:36:30.000",
            "endTime": "2020-03-22T06:47:30.000",
            "minutesAsleep": 386,
            "levels": {
                "data": [{"dateTime": "2020-03-21T23:36:30.000", "level": "wake", "seconds": 30}]
            },
        }
    ],
    "summary": {"totalMinutesAsleep": 386, "totalSleepRecords": 1},
}
NO_DAY = {"activities-calories-intraday": {"dataset": [{"time": "00:00:00", "value": 1.1}]}}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fitbit-api") / "wearables" / "participant-17"
    root.mkdir(parents=True)
    for name, body in {
        "steps_2019-01-01.json": STEPS,
        "heart_2019-05-08.json": HEART,
        "hrv_2021-10-25.json": HRV,
        "sleep_2020-03-22.json": SLEEP,
        "calories_intraday.json": NO_DAY,
    }.items():
        (root / name).write_bytes(orjson.dumps(body))
    return root.parent


@pytest.fixture(scope="module")
def landed(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return land(WearablesReader(), export, tmp_path_factory.mktemp("lakehouse"))


def _events(duck: Duck, bronze: Path) -> dict[str, tuple]:
    rows = duck.query(
        "select _source_locator, metric, value, start_time_local, start_time_raw, end_time_local "
        f"from {scan(bronze, 'wearables_events')}"
    )
    return {locator: rest for locator, *rest in rows}


def test_every_reading_of_every_member_is_accounted_for(duck: Duck, landed: Landed) -> None:
    bronze, summary = landed
    assert file_accounts(duck, bronze) == {
        "steps_2019-01-01.json": (4, 3, 1),
        "heart_2019-05-08.json": (2, 2, 0),
        "hrv_2021-10-25.json": (1, 1, 0),
        "sleep_2020-03-22.json": (1, 1, 0),  # the summary is the API's aggregate, not a record
        "calories_intraday.json": (1, 0, 1),
    }
    assert summary.records_read == summary.records_landed + summary.records_quarantined == 9


def test_series_and_intraday_readings_land_on_their_day(duck: Duck, landed: Landed) -> None:
    events = _events(duck, landed[0])
    day = dt.datetime(2019, 1, 1)
    assert events["activities-steps item 1 field value"] == [
        "activities-steps.value", "1204", day, "2019-01-01", None,
    ]  # fmt: skip
    assert events["activities-steps-intraday item 2 field value"] == [
        "activities-steps-intraday.value", "12", dt.datetime(2019, 1, 1, 0, 1),
        "2019-01-01 00:01:00", None,
    ]  # fmt: skip
    heart = events["activities-heart-intraday item 1 field value"]
    assert heart[2] == dt.datetime(2019, 5, 8, 8, 0, 5)
    assert events["activities-heart item 1 field restingHeartRate"][:2] == [
        "activities-heart.restingHeartRate",
        "76",
    ]
    assert events["hrv item 1 field deepRmssd"][:3] == [
        "hrv.deepRmssd",
        "27.4",
        dt.datetime(2021, 10, 25),
    ]


def test_sleep_logs_of_a_response_land_as_the_archive_s(duck: Duck, landed: Landed) -> None:
    events = _events(duck, landed[0])
    stage = events["sleep item 1 levels.data[1] field level"]
    assert stage == [
        "sleep.levels.data.level", "wake", dt.datetime(2020, 3, 21, 23, 36, 30),
        "2020-03-21T23:36:30.000", dt.datetime(2020, 3, 21, 23, 37),
    ]  # fmt: skip
    assert events["sleep item 1 field minutesAsleep"][4] == dt.datetime(2020, 3, 22, 6, 47, 30)
    assert not [locator for locator in events if "summary" in locator]


def test_readings_without_a_time_are_quarantined_with_the_reason(
    duck: Duck, landed: Landed
) -> None:
    rows = duck.query(
        f"select _source_locator, reason from {scan(landed[0], '_quarantine')} order by 1"
    )
    assert rows == [
        ("activities-calories-intraday item 1",
         "the reading gives a time of day only, and the response has no single-day "
         "'activities-calories' series to say which day"),
        ("activities-steps-intraday item 3", "the reading has no time (found null)"),
    ]  # fmt: skip


def test_rerun_changes_nothing(export: Path, landed: Landed) -> None:
    tables = ("wearables_events", "_quarantine")
    check_reruns(WearablesReader(), export, landed, lambda bronze: bronze_state(bronze, tables))


def test_responses_are_told_from_events_and_other_objects() -> None:
    assert all(is_api_response(body) for body in (STEPS, HEART, HRV, SLEEP, NO_DAY))
    assert not is_api_response({"event_id": "e1", "metric": "steps", "value": 3})
    assert not is_api_response({"user": {"displayName": "A"}})
    assert not is_api_response([{"dateTime": "2019-01-01", "value": "1"}])
