"""A person's own Fitbit export lands in ``wearables_events``: the account archive's JSON
time series and the newer per-metric CSVs, built here to the archive's documented layout.

Every reading is accounted for (landed as one event per value field, or quarantined with the
reason), times keep what the file says (a zone only when one is written), and a re-run changes
nothing. Device-cloud JSON arrays (with ``event_id``) still go to the event reader, and a long
vendor table (Fitabase's heartrate_seconds has millions of rows) melted in parts lands exactly
as if melted whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import orjson
import pytest

from python_ingest import wearables_csv
from python_ingest.wearables import WearablesReader
from python_ingest.wearables_fitbit import is_time_series
from python_ingest.wearables_melt import dataset_name
from tests.ingest.support import (
    Duck,
    Landed,
    bronze_state,
    check_reruns,
    file_accounts,
    land,
    scan,
)

HEART = [
    {"dateTime": "04/01/20 00:00:04", "value": {"bpm": 71, "confidence": 2}},
    {"dateTime": "04/01/20 00:00:09", "value": {"bpm": 72, "confidence": 3}},
    {"value": {"bpm": 70, "confidence": 1}},  # lost its time: quarantined alone
    [1, 2],  # not a reading
    {"dateTime": "04/01/20 00:00:19", "value": None},  # holds nothing
]
STEPS = [
    {"dateTime": "04/01/20 00:00:00", "value": "0"},
    {"dateTime": "04/01/20 00:01:00", "value": "12"},
]
ZONES = [
    {
        "dateTime": "04/01/20 00:00:00",
        "value": {"valuesInZones": {"IN_DEFAULT_ZONE_1": 0.0, "BELOW_DEFAULT_ZONE_1": 1440.0}},
    }
]
HEART_CSV = (
    "timestamp,beats per minute\n"
    "2024-01-01T00:00:05Z,61\n"
    "2024-01-01T09:00:10+09:00,62\n"
    "2024-01-01 00:00:15,63\n"
    "2024-01-01T00:00:20Z,\n"  # no value
    "yesterday,64\n"  # no time
)
SPO2_CSV = "timestamp,average_value,lower_bound,upper_bound\n2021-11-30T00:00:00,95.4,93.1,98.0\n"
SLEEP_SCORE_CSV = (  # the time column second, the log id first
    "sleep_log_entry_id,timestamp,overall_score,resting_heart_rate\n"
    "33817487541,2021-11-29T07:06:30Z,81,57\n"
    "33817487542,2021-11-30T06:51:00Z,77\n"  # ragged
)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fitbit") / "wearables"
    activity = root / "Fitbit" / "Global Export Data"
    activity.mkdir(parents=True)
    (activity / "heart_rate-2020-04-01.json").write_bytes(orjson.dumps(HEART))
    (activity / "steps-2020-04-01.json").write_bytes(orjson.dumps(STEPS))
    (activity / "time_in_heart_rate_zones-2020-04-01.json").write_bytes(orjson.dumps(ZONES))
    series = root / "Fitbit" / "Physical Activity_GoogleData"
    series.mkdir(parents=True)
    (series / "heart_rate_2024-01-01.csv").write_text(HEART_CSV)
    (series / "Daily SpO2 - 2021-11-30.csv").write_text(SPO2_CSV)
    (series / "sleep_score.csv").write_text(SLEEP_SCORE_CSV)
    return root


@pytest.fixture(scope="module")
def landed(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Landed:
    return land(WearablesReader(), export, tmp_path_factory.mktemp("lakehouse"))


def _events(duck: Duck, bronze: Path, name: str) -> list[tuple]:
    return duck.query(
        "select metric, user_id, value, value_num, start_time, start_time_local, "
        f"start_time_raw, source_format, _source_locator from {scan(bronze, 'wearables_events')} "
        "where _source_file like ? order by _source_locator",
        f"%/{name}",
    )


def _quarantined(duck: Duck, bronze: Path, name: str) -> list[tuple]:
    return duck.query(
        f"select _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where _source_file like ? order by _source_locator",
        f"%/{name}",
    )


def test_every_reading_is_landed_or_quarantined(duck: Duck, landed: Landed) -> None:
    bronze, summary = landed
    log = file_accounts(duck, bronze)
    assert log == {
        "heart_rate-2020-04-01.json": (5, 2, 3),
        "steps-2020-04-01.json": (2, 2, 0),
        "time_in_heart_rate_zones-2020-04-01.json": (1, 1, 0),
        "heart_rate_2024-01-01.csv": (5, 3, 2),
        "Daily SpO2 - 2021-11-30.csv": (1, 1, 0),
        "sleep_score.csv": (2, 1, 1),
    }
    assert summary.records_read == summary.records_landed + summary.records_quarantined == 16


def test_archive_json_readings_become_one_event_per_value_field(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    local = dt.datetime(2020, 4, 1, 0, 0, 4)
    later = dt.datetime(2020, 4, 1, 0, 0, 9)
    assert _events(duck, bronze, "heart_rate-2020-04-01.json") == [
        ("heart_rate.bpm", None, "71", 71.0, None, local, "04/01/20 00:00:04", "fitbit_json",
         "item 1 field bpm"),
        ("heart_rate.confidence", None, "2", 2.0, None, local, "04/01/20 00:00:04",
         "fitbit_json", "item 1 field confidence"),
        ("heart_rate.bpm", None, "72", 72.0, None, later, "04/01/20 00:00:09", "fitbit_json",
         "item 2 field bpm"),
        ("heart_rate.confidence", None, "3", 3.0, None, later, "04/01/20 00:00:09",
         "fitbit_json", "item 2 field confidence"),
    ]  # fmt: skip
    steps = _events(duck, bronze, "steps-2020-04-01.json")
    assert [(m, v, n, loc) for m, _, v, n, *_, loc in steps] == [
        ("steps.value", "0", 0.0, "item 1 field value"),
        ("steps.value", "12", 12.0, "item 2 field value"),
    ]
    zones = _events(duck, bronze, "time_in_heart_rate_zones-2020-04-01.json")
    assert {(m, n) for m, _, _, n, *_ in zones} == {
        ("time_in_heart_rate_zones.valuesInZones.IN_DEFAULT_ZONE_1", 0.0),
        ("time_in_heart_rate_zones.valuesInZones.BELOW_DEFAULT_ZONE_1", 1440.0),
    }
    # The reading is the record: its events share the hash of its canonical JSON.
    hashes = duck.query(
        f"select distinct _record_hash from {scan(bronze, 'wearables_events')} "
        "where _source_locator like 'item 1 %' and _source_file like '%heart_rate-2020%'"
    )
    canonical = orjson.dumps(HEART[0], option=orjson.OPT_SORT_KEYS)
    assert hashes == [(hashlib.sha256(canonical).hexdigest(),)]


def test_archive_json_bad_readings_are_quarantined_alone(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    assert _quarantined(duck, bronze, "heart_rate-2020-04-01.json") == [
        ("item 3", "the reading has no dateTime (found null)"),
        ("item 4", "the item is a list, not a reading object"),
        ("item 5", "the reading has no values"),
    ]


def test_time_series_csv_keeps_a_zone_only_where_one_is_written(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    utc = dt.UTC
    rows = _events(duck, bronze, "heart_rate_2024-01-01.csv")
    assert [(m, v, start, local, fmt) for m, _, v, _, start, local, _, fmt, _ in rows] == [
        ("heart_rate.beats per minute", "61", dt.datetime(2024, 1, 1, 0, 0, 5, tzinfo=utc),
         dt.datetime(2024, 1, 1, 0, 0, 5), "fitbit_csv"),
        ("heart_rate.beats per minute", "62", dt.datetime(2024, 1, 1, 0, 0, 10, tzinfo=utc),
         dt.datetime(2024, 1, 1, 9, 0, 10), "fitbit_csv"),
        ("heart_rate.beats per minute", "63", None, dt.datetime(2024, 1, 1, 0, 0, 15),
         "fitbit_csv"),
    ]  # fmt: skip
    assert _quarantined(duck, bronze, "heart_rate_2024-01-01.csv") == [
        ("line 5", "the row has no values"),
        ("line 6", "timestamp 'yesterday' is not a date-time"),
    ]


def test_a_time_series_csv_may_have_its_time_column_anywhere(duck: Duck, landed: Landed) -> None:
    bronze, _ = landed
    spo2 = _events(duck, bronze, "Daily SpO2 - 2021-11-30.csv")
    assert [(m, v, local) for m, _, v, _, _, local, *_ in spo2] == [
        ("Daily SpO2.average_value", "95.4", dt.datetime(2021, 11, 30)),
        ("Daily SpO2.lower_bound", "93.1", dt.datetime(2021, 11, 30)),
        ("Daily SpO2.upper_bound", "98.0", dt.datetime(2021, 11, 30)),
    ]
    scores = _events(duck, bronze, "sleep_score.csv")
    assert [(m, v, start, loc) for m, _, v, _, start, *_, loc in scores] == [
        ("sleep_score.overall_score", "81", dt.datetime(2021, 11, 29, 7, 6, 30, tzinfo=dt.UTC),
         "line 2 column overall_score"),
        ("sleep_score.resting_heart_rate", "57",
         dt.datetime(2021, 11, 29, 7, 6, 30, tzinfo=dt.UTC), "line 2 column resting_heart_rate"),
        ("sleep_score.sleep_log_entry_id", "33817487541",
         dt.datetime(2021, 11, 29, 7, 6, 30, tzinfo=dt.UTC), "line 2 column sleep_log_entry_id"),
    ]  # fmt: skip
    assert _quarantined(duck, bronze, "sleep_score.csv") == [
        ("line 3", "the row has 3 fields but the header has 4")
    ]


def test_rerun_changes_nothing(export: Path, landed: Landed) -> None:
    tables = ("wearables_events", "_quarantine")
    check_reruns(WearablesReader(), export, landed, lambda bronze: bronze_state(bronze, tables))


def test_only_arrays_of_dated_readings_are_time_series() -> None:
    assert is_time_series(HEART)
    assert is_time_series([{"value": 1}, {"dateTime": "04/01/20 00:00:00", "value": 2}])
    events = [{"event_id": "e1", "metric": "heart_rate", "start_time": "2024-01-01T00:00:00Z"}]
    assert not is_time_series(events)
    assert not is_time_series([{"dateTime": "04/01/20 00:00:00", "event_id": "e1"}])
    assert not is_time_series({"dateTime": "04/01/20 00:00:00", "value": 1})
    assert not is_time_series([{"logId": 1, "startTime": "2020-04-01T23:00:00.000"}])


def test_dataset_names_drop_the_period_date() -> None:
    assert dataset_name(Path("heart_rate-2020-04-01.json")) == "heart_rate"
    assert dataset_name(Path("heart_rate_2024-01-01.csv.gz")) == "heart_rate"
    assert dataset_name(Path("hourlySteps_merged.csv")) == "hourlySteps"
    assert dataset_name(Path("Daily SpO2 - 2021-11-30.csv")) == "Daily SpO2"
    assert dataset_name(Path("2020-04-01.json")) == "2020-04-01"


def test_a_long_table_melted_in_parts_lands_as_if_melted_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Fitabase file of millions of rows is melted MELT_ROWS rows at a time (bounded memory):
    the outcome must not depend on where the parts are cut."""
    lines = ["Id,Time,Value"]
    for i in range(11):
        lines.append(f"1503960366,4/12/2016 7:21:{i:02d} AM,{60 + i}")
    lines[3] = "1503960366,4/12/2016 7:21:02 AM"  # ragged: quarantined, not melted
    lines[6] = "1503960366,not a time,65"
    lines[9] = ",4/12/2016 7:21:08 AM,68"  # no Id
    path = tmp_path / "heartrate_seconds_merged.csv"
    path.write_text("\n".join(lines) + "\n")
    reader = WearablesReader()
    whole = reader.read(path)
    monkeypatch.setattr(wearables_csv, "MELT_ROWS", 3)
    parts = reader.read(path)
    assert (parts.records_read, parts.records_landed) == (whole.records_read, whole.records_landed)
    assert (whole.records_read, whole.records_landed) == (11, 8)
    assert parts.tables["wearables_events"].equals(whole.tables["wearables_events"])
    assert [(q.locator, q.reason) for q in parts.quarantined] == [
        (q.locator, q.reason) for q in whole.quarantined
    ]
    assert [q.locator for q in whole.quarantined] == ["line 4", "line 7", "line 10"]
