"""Wearables bronze ingestion: generated device-cloud drops and real Fitabase exports.

The generated cohort lists every line it damaged (``_truth/dirty_records.csv``): those lines must
be quarantined, by file and locator, and every other line must land exactly once with its bytes'
hash, re-sends included (bronze keeps every line received; de-duplication is silver's). Re-runs
change nothing, a rewritten drop is re-landed without duplicates, and a run after new drops
arrive lands only those (the ingest log is the streaming checkpoint). The real Fitabase CSVs are
checked against ``shared/realdata/wearables/EXPECTED_FACTS.md``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import pickle
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from python_ingest.job import IngestJob
from python_ingest.model import OutcomeGroup
from python_ingest.wearables import WearablesReader
from tests.ingest.support import Duck, Landed, check_reruns, dirty_records, fixtures_for, land, scan
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "wearables"
LINE = re.compile(r"^line (\d+)")
UTC = dt.UTC


cohort, landed = fixtures_for(WearablesReader, seed=11, modalities=("ehr", "wearables"))


def _clean_lines(root: Path, cohort: Path) -> Counter[tuple[str, str, str]]:
    """(file relative to ``cohort``, locator, sha256) of every line that is not dirty."""
    dirty = {
        (r["file"], int(LINE.match(r["locator"]).group(1)))
        for r in dirty_records(cohort, "wearables")
    }
    out: Counter[tuple[str, str, str]] = Counter()
    for path in sorted((root / "landing").rglob("*.jsonl")):
        rel = path.relative_to(root.parent).as_posix()
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if line.strip() and (rel, number) not in dirty:
                out[(rel, f"line {number}", hashlib.sha256(line).hexdigest())] += 1
    return out


def _landed_lines(duck: Duck, bronze: Path, root: Path) -> Counter[tuple[str, str, str]]:
    rows = duck.query(
        "select _source_file, _source_locator, _record_hash "
        f"from {scan(bronze, 'wearables_events')}"
    )
    return Counter(
        (Path(f).relative_to(root.parent).as_posix(), loc, h)
        for f, loc, h in rows
        if "landing" in f
    )


def _snapshot(duck: Duck, bronze: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "events": duck.query(
            f"select _source_file, _source_locator, _record_hash "
            f"from {scan(bronze, 'wearables_events')} order by all"
        ),
        "enrollment": duck.query(
            f"select _record_hash from {scan(bronze, 'wearables_enrollment')} order by all"
        ),
        "quarantine": duck.query(
            f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
            "order by all"
        ),
    }


def test_every_clean_line_lands_once_and_every_dirty_line_is_quarantined(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, summary = landed
    root = cohort / "wearables"
    expected = _clean_lines(root, cohort)
    assert _landed_lines(duck, bronze, root) == expected
    assert summary.records_landed == sum(expected.values()) + len(_enrollment_rows(cohort))

    truth = {(r["file"], r["locator"]) for r in dirty_records(cohort, "wearables")}
    rows = duck.query(
        f"select _source_file, _source_locator, reason, payload from {scan(bronze, '_quarantine')}"
        " where modality = 'wearables'"
    )
    got = {(Path(f).relative_to(cohort).as_posix(), loc) for f, loc, _, _ in rows}
    assert got == truth
    assert len(rows) == len(truth)
    assert all(reason and payload for _, _, reason, payload in rows)
    kinds = Counter(r["kind"] for r in dirty_records(cohort, "wearables"))
    assert kinds["unparseable_event"] and kinds["invalid_event"]


def test_resent_events_are_kept_as_received(duck: Duck, cohort: Path, landed: Landed) -> None:
    """A re-send is a second row with the same event_id and hash; silver de-duplicates."""
    bronze, _ = landed
    twice = duck.query(
        f"select event_id, count(*), count(distinct _record_hash), count(distinct _source_file) "
        f"from {scan(bronze, 'wearables_events')} where event_id is not null "
        "group by event_id having count(*) > 1"
    )
    assert twice, "the generator re-sends ~2% of events"
    assert all(n == 2 and hashes == 1 and files == 2 for _, n, hashes, files in twice)


def test_event_columns(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, _ = landed
    events = scan(bronze, "wearables_events")
    types = dict(
        duck.query(f"select column_name, column_type from (describe select * from {events})")
    )
    assert types["value"] == "VARCHAR" and types["value_num"] == "DOUBLE"
    assert types["start_time"] == "TIMESTAMP WITH TIME ZONE"
    assert types["start_time_local"] == "TIMESTAMP"
    assert types["battery_pct"] == "DOUBLE" and types["firmware_version"] == "VARCHAR"
    # Schema evolution: firmware_version / battery_pct exist from 2022-07-01 on, null before.
    evolved = duck.query(
        f"select recorded_at >= timestamptz '2022-07-01 00:00:00+00', "
        f"count(*), count(firmware_version), count(battery_pct) from {events} group by 1"
    )
    for newer, n, firmware, battery in evolved:
        assert (firmware, battery) == ((n, n) if newer else (0, 0))
    # value is text for every metric, value_num only where numeric (sleep stages are words).
    for metric, n, numbers, stages in duck.query(
        f"select metric, count(*), count(value_num), "
        f"count(*) filter (where value in ('wake', 'light', 'deep', 'rem')) "
        f"from {events} group by metric"
    ):
        assert (numbers, stages) == ((0, n) if metric == "sleep_stage" else (n, 0)), metric
    assert {
        u for (u,) in duck.query(f"select distinct unit from {events} where metric = 'spo2'")
    } == {
        "%",
        "ratio",
    }
    # Times: the UTC instant and the raw string agree; the drop is never named before an event
    # reached the cloud.
    bad = duck.query(
        f"select count(*) from {events} where strftime(start_time at time zone 'UTC', "
        f"'%Y-%m-%dT%H:%M:%SZ') <> start_time_raw or start_time_local <> "
        f"(start_time at time zone 'UTC') or arrival_time < recorded_at or arrival_time is null"
    )
    assert bad == [(0,)]


def _enrollment_rows(cohort: Path) -> list[dict[str, str]]:
    with (cohort / "wearables" / "enrollment.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_enrollment(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, _ = landed
    rows = duck.query(
        f"select device_id, device_model, patient_mrn, enrolled_on, withdrawn_on, _source_locator "
        f"from {scan(bronze, 'wearables_enrollment')} order by _source_locator"
    )
    expected = {
        r["device_id"]: (
            r["device_model"],
            r["patient_mrn"],
            dt.date.fromisoformat(r["enrolled_on"]),
            dt.date.fromisoformat(r["withdrawn_on"]) if r["withdrawn_on"] else None,
        )
        for r in _enrollment_rows(cohort)
    }
    assert {r[0]: r[1:5] for r in rows} == expected
    assert len(rows) == len(expected)
    # Every device that sent an event is enrolled.
    orphans = duck.query(
        f"select count(*) from {scan(bronze, 'wearables_events')} e anti join "
        f"{scan(bronze, 'wearables_enrollment')} r using (device_id) where e.device_id is not null"
    )
    assert orphans == [(0,)]


def test_accounting_per_file(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, summary = landed
    log = duck.query(
        f"select path, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed' and modality = 'wearables'"
    )
    assert len(log) == summary.files_seen == len(WearablesReader().discover(cohort / "wearables"))
    assert all(read == landed_ + bad for _, read, landed_, bad in log)
    dirty_per_file = Counter(r["file"] for r in dirty_records(cohort, "wearables"))
    for path, _, _, bad in log:
        assert bad == dirty_per_file.get(Path(path).relative_to(cohort).as_posix(), 0), path


def test_reruns_change_nothing(duck: Duck, cohort: Path, landed: Landed) -> None:
    check_reruns(WearablesReader(), cohort / "wearables", landed, lambda b: _snapshot(duck, b))


def test_streaming_lands_new_drops_once_and_a_rewritten_drop_without_duplicates(
    duck: Duck, cohort: Path, landed: Landed, tmp_path: Path
) -> None:
    """Half the drops arrive, then the rest: each event lands once, like one run over all."""
    source = tmp_path / "cohort" / "wearables"
    shutil.copytree(cohort / "wearables", source)
    drops = sorted((source / "landing").rglob("*.jsonl"))
    held = tmp_path / "held"
    later = drops[len(drops) // 2 :]
    for path in later:
        target = held / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    lakehouse = tmp_path / "lakehouse"
    first = IngestJob(WearablesReader(), lakehouse).run(source)
    assert first.files_landed == len(drops) - len(later) + 1  # + enrollment.csv
    for path in later:
        (held / path.relative_to(source)).rename(path)
    second = IngestJob(WearablesReader(), lakehouse).run(source)
    assert (second.files_landed, second.files_skipped) == (len(later), first.files_landed)

    bronze = lakehouse / "bronze"
    expected = _clean_lines(cohort / "wearables", cohort)
    assert _landed_lines(duck, bronze, source) == expected
    quarantined = duck.query(f"select count(*) from {scan(bronze, '_quarantine')}")
    assert quarantined == [(len(dirty_records(cohort, "wearables")),)]

    # A drop rewritten in place (the vendor re-exported it): only its rows are replaced.
    drop = max(drops, key=lambda p: p.stat().st_size)
    lines = drop.read_bytes().split(b"\n")
    clean = [line for line in lines if line.strip() and _parses(line)]
    drop.write_bytes(b"\n".join(clean) + b"\n")
    third = IngestJob(WearablesReader(), lakehouse).run(source)
    assert (third.files_landed, third.records_read, third.records_quarantined) == (
        1,
        len(clean),
        0,
    )
    rows = duck.query(
        f"select _source_locator, _record_hash from {scan(bronze, 'wearables_events')} "
        "where _source_file = ? order by all",
        str(drop),
    )
    want = sorted((f"line {i}", hashlib.sha256(c).hexdigest()) for i, c in enumerate(clean, 1))
    assert rows == want
    left = duck.query(
        f"select count(*) from {scan(bronze, '_quarantine')} where _source_file = ?", str(drop)
    )
    assert left == [(0,)]


def _parses(line: bytes) -> bool:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return bool(event.get("event_id")) and not (
        isinstance(event.get("value"), int | float) and event["value"] < 0
    )


# --- the reader on hand-made files: the format's corners --------------------------------------


def _events(outcome: Any) -> list[dict[str, Any]]:
    table = outcome.tables.get("wearables_events")
    return table.to_pylist() if table is not None else []


def _corner_drop(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """A drop with CRLF ends, a blank line, bad lines of every kind and fields outside the
    schema (one clashing with ``value``): (its path, its lines)."""
    drop = tmp_path / "landing" / "2024-05-01" / "20240501T140000Z-b00012.jsonl"
    drop.parent.mkdir(parents=True)
    lines = [
        b'{"event_id":"a","metric":"heart_rate","value":70,"unit":"bpm",'
        b'"start_time":"2024-05-01T10:00:00+02:00","end_time":"2024-05-01T08:05:00.250Z",'
        b'"recorded_at":"2024-05-01T10:06:00"}',
        b"   ",
        b'{"event_id":"b","metric":"sleep_stage","value":"deep","new_field":{"x":1},"Value":3}',
        b"[1, 2]",
        b'{"event_id":"c","metric":"steps","value":"12"}',
        b'{"event_id":"d","metric":"spo2","value":"n/a"}',
        b'{"event_id":"e","metric":"heart_rate","value":72,"start_time":"yesterday"}',
        b'{"event_id":"f","metric":"heart_rate","value":72,"battery_pct":"High"}',
        b'{"event_id":7,"metric":"heart_rate","value":72}',
        b'{"event_id":"g","metric":"steps"}',
        b'{"event_id":"h","metric":"heart_rate","value":-3}',
        b'{"event_id":"0f1e2d3c-0000-4000-8000-000000000000","metric":"heart',
    ]
    drop.write_bytes(b"\r\n".join(lines) + b"\r\n")
    return drop, lines


def test_reader_on_the_corners_of_the_format(tmp_path: Path) -> None:
    drop, lines = _corner_drop(tmp_path)
    outcome = WearablesReader().read(drop)
    outcome.check_accounting(drop)
    assert (outcome.records_read, outcome.records_landed) == (11, 4)
    rows = {r["event_id"]: r for r in _events(outcome)}
    assert set(rows) == {"a", "b", "c", "7"}
    a = rows["a"]
    assert a["start_time"] == dt.datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert a["start_time_local"] == dt.datetime(2024, 5, 1, 10, 0)
    assert a["end_time"] == dt.datetime(2024, 5, 1, 8, 5, 0, 250000, tzinfo=UTC)
    assert a["recorded_at"] is None and a["recorded_at_local"] == dt.datetime(2024, 5, 1, 10, 6)
    assert a["arrival_time"] == dt.datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    assert (a["value"], a["value_num"], a["_source_locator"]) == ("70", 70.0, "line 1")
    assert a["_record_hash"] == hashlib.sha256(lines[0]).hexdigest()  # without the \r
    b = rows["b"]
    assert (b["value"], b["value_num"], b["new_field"], b["payload_Value"]) == (
        "deep",
        None,
        '{"x":1}',
        "3",
    )
    assert (rows["c"]["value"], rows["c"]["value_num"]) == ("12", 12.0)
    reasons = {q.locator: q.reason for q in outcome.quarantined}
    assert list(reasons) == [
        "line 4",
        "line 6",
        "line 7",
        "line 8",
        "line 10",
        "line 11",
        "line 12 event_id=0f1e2d3c-0000-4000-8000-000000000000",
    ]
    assert "not an event object" in reasons["line 4"]
    assert "spo2 value 'n/a' is not a number" in reasons["line 6"]
    assert "start_time 'yesterday' is not an ISO 8601 date-time" in reasons["line 7"]
    assert "battery_pct 'High' is not a number" in reasons["line 8"]
    assert reasons["line 10"].startswith("steps event has no value")
    assert reasons["line 11"].startswith("negative heart_rate value -3")
    assert "not valid JSON" in reasons["line 12 event_id=0f1e2d3c-0000-4000-8000-000000000000"]


def test_numbers_are_numbers_on_the_fast_path(tmp_path: Path) -> None:
    drop = tmp_path / "drop.jsonl"
    drop.write_bytes(
        b'{"event_id":"p","metric":"heart_rate","value":61,"battery_pct":87}\n'
        b'{"event_id":"q","metric":"heart_rate","value":62,"battery_pct":true}\n'
        b'{"event_id":"r","metric":"heart_rate","value":true}\n'
    )
    outcome = WearablesReader().read(drop)
    assert [(r["event_id"], r["battery_pct"]) for r in _events(outcome)] == [("p", 87.0)]
    assert [q.reason for q in outcome.quarantined] == [
        "battery_pct True is not a number (event_id q)",
        "heart_rate value 'true' is not a number (event_id r)",
    ]
    broken = tmp_path / "cut.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"event_id":"s"}\n')[:-6])
    (bad,) = WearablesReader().read(broken).quarantined
    assert (bad.locator, bad.reason.split(":")[0]) == (
        "file",
        "the file could not be read (or gunzipped)",
    )


def test_json_documents_gzip_and_a_stable_schema(tmp_path: Path) -> None:
    events = [
        {"event_id": "x1", "metric": "steps", "value": 10, "start_time": "2024-01-01T00:00:00Z"},
        {"event_id": "x2", "metric": "steps", "value": 11, "start_time": "2024-01-01T00:01:00Z"},
    ]
    array = tmp_path / "export.json.gz"
    array.write_bytes(gzip.compress(orjson.dumps(events)))
    lines = tmp_path / "events.ndjson"
    lines.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    reader = WearablesReader()
    assert reader.discover(tmp_path) == sorted([array, lines])
    from_array, from_lines = reader.read(array), reader.read(lines)
    assert [r["_source_locator"] for r in _events(from_array)] == ["item 1", "item 2"]
    assert [r["_source_locator"] for r in _events(from_lines)] == ["line 1", "line 2"]
    a, b = from_array.tables["wearables_events"], from_lines.tables["wearables_events"]
    assert a.schema == b.schema
    assert [r["arrival_time"] for r in _events(from_lines)] == [None, None]
    own = ["source_format", "_source_locator", "_record_hash"]  # how each names its records
    assert a.drop_columns(own).to_pylist() == b.drop_columns(own).to_pylist()


def test_enrollment_and_unknown_csvs(tmp_path: Path) -> None:
    register = tmp_path / "enrollment.csv"
    register.write_text(
        "device_id,device_model,patient_mrn,enrolled_on,withdrawn_on,site\n"
        "D1,Fitbit Charge 3,MRN1,2021-03-04,,Boston\n"
        "\n"
        "D2,Garmin,MRN2,04/03/2021,,Boston\n"
        ',"Apple Watch\nSeries 6",MRN3,2021-03-04,2021-09-01,Lyon\n'
        "D4,Garmin,MRN4,2021-03-04\n",
        encoding="utf-8",
    )
    outcome = WearablesReader().read(register)
    outcome.check_accounting(register)
    rows = outcome.tables["wearables_enrollment"].to_pylist()
    assert [(r["device_id"], r["enrolled_on"], r["site"], r["_source_locator"]) for r in rows] == [
        ("D1", dt.date(2021, 3, 4), "Boston", "line 2")
    ]
    reasons = {q.locator: q.reason for q in outcome.quarantined}
    assert reasons == {
        "line 4": "enrolled_on '04/03/2021' is not an ISO date (YYYY-MM-DD)",
        "line 5": "device_id is empty",
        "line 7": "the row has 4 fields but the header has 6",
    }
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    unknown = WearablesReader().read(other)
    assert (unknown.records_read, unknown.tables) == (1, {})
    assert unknown.quarantined[0].locator == "file"
    assert "not a wearables CSV" in unknown.quarantined[0].reason


# --- real Fitabase exports ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitabase(tmp_path_factory: pytest.TempPathFactory) -> Landed:
    if not REALDATA.is_dir():
        pytest.skip(f"the real wearables files are not here: {REALDATA} is absent")
    return land(WearablesReader(), REALDATA, tmp_path_factory.mktemp("fitabase"))


def _fitabase_file(name: str) -> str:
    return str((REALDATA / "fitabase" / name).resolve())


def test_fitabase_rows_ids_and_dates(duck: Duck, fitabase: Landed) -> None:
    bronze, summary = fitabase
    assert summary.records_quarantined == 0
    log = {
        Path(p).name: (read, landed_)
        for p, read, landed_ in duck.query(
            f"select path, records_read, records_landed from {scan(bronze, '_ingest_log')} "
            "where status = 'landed'"
        )
    }
    rows = {
        "dailyActivity_merged.csv": 940,
        "hourlySteps_merged.csv": 22099,
        "minuteStepsWide_merged.csv": 21645,
        "sleepDay_merged.csv": 413,
        "weightLogInfo_merged.csv": 67,
    }
    assert log == {name: (n, n) for name, n in rows.items()}
    ids = dict(
        duck.query(
            f"select regexp_extract(_source_file, '[^/]+$'), count(distinct user_id) "
            f"from {scan(bronze, 'wearables_events')} group by 1"
        )
    )
    assert ids == {
        "dailyActivity_merged.csv": 33,
        "hourlySteps_merged.csv": 33,
        "minuteStepsWide_merged.csv": 33,
        "sleepDay_merged.csv": 24,
        "weightLogInfo_merged.csv": 8,
    }
    events = scan(bronze, "wearables_events")
    daily = duck.query(
        f"select min(start_time_local), max(start_time_local), "
        f"count(*) filter (where value_num = 0), sum(value_num) "
        f"from {events} where metric = 'dailyActivity.TotalSteps'"
    )
    assert daily == [(dt.datetime(2016, 4, 12), dt.datetime(2016, 5, 12), 77, 7_179_636)]
    full_month = duck.query(
        f"select count(*) from (select user_id from {events} "
        "where metric = 'dailyActivity.TotalSteps' group by user_id having count(*) = 31)"
    )
    assert full_month == [(21,)]
    columns = duck.query(
        f"select count(distinct metric) from {events} where _source_file = ?",
        _fitabase_file("dailyActivity_merged.csv"),
    )
    assert columns == [(13,)]  # 15 columns: Id, ActivityDate, 13 measures
    # Local times stay local: raw string kept, no invented UTC instant.
    assert duck.query(f"select count(start_time), count(start_time_raw) from {events}")[0][0] == 0


def test_fitabase_steps_values_and_cross_file_invariants(
    duck: Duck,
    fitabase: Landed,
) -> None:
    bronze, _ = fitabase
    events = scan(bronze, "wearables_events")
    first = duck.query(
        f"select user_id, start_time_raw, start_time_local, value from {events} "
        "where metric = 'hourlySteps.StepTotal' and _source_locator = 'line 2 column StepTotal'"
    )
    assert first == [("1503960366", "4/12/2016 12:00:00 AM", dt.datetime(2016, 4, 12), "373")]
    hourly = duck.query(
        f"select max(value_num), sum(value_num) from {events} "
        "where metric = 'hourlySteps.StepTotal'"
    )
    assert hourly == [(10554, 7_075_356)]
    wide = duck.query(
        f"select count(*), sum(value_num), min(_source_locator) filter (where user_id = "
        f"'1503960366' and start_time_local = timestamp '2016-04-13 00:00:00') "
        f"from {events} where metric = 'minuteStepsWide.Steps'"
    )
    assert wide == [(21645 * 60, 6_938_153, "line 2 column Steps00")]
    # Minute steps summed per hour equal the hourly file for all 21307 shared keys.
    invariant = duck.query(
        f"""
        with minute as (
            select user_id, date_trunc('hour', start_time_local) as hour, sum(value_num) as steps
            from {events} where metric = 'minuteStepsWide.Steps' group by all
        ), hour as (
            select user_id, start_time_local as hour, value_num as steps
            from {events} where metric = 'hourlySteps.StepTotal'
        )
        select count(h.steps), count(*) filter (where m.steps <> h.steps),
               count(*) filter (where h.steps is null)
        from minute m left join hour h using (user_id, hour)
        """
    )
    assert invariant == [(21307, 0, 338)]
    # Hourly to daily is not exact (775 equal, 159 differ), as the facts warn.
    rollup = duck.query(
        f"""
        with h as (
            select user_id, cast(start_time_local as date) as day, sum(value_num) as steps
            from {events} where metric = 'hourlySteps.StepTotal' group by all
        ), d as (
            select user_id, cast(start_time_local as date) as day, value_num as steps
            from {events} where metric = 'dailyActivity.TotalSteps'
        )
        select count(*) filter (where h.steps = d.steps),
               count(*) filter (where h.steps <> d.steps),
               max(h.steps) filter (where user_id = '1503960366' and day = date '2016-04-12'),
               max(d.steps) filter (where user_id = '1503960366' and day = date '2016-04-12')
        from h join d using (user_id, day)
        """
    )
    assert rollup == [(775, 159, 13158, 13162)]


def test_fitabase_sleep_duplicates_and_weight_log(duck: Duck, fitabase: Landed) -> None:
    bronze, _ = fitabase
    events = scan(bronze, "wearables_events")
    duplicated = duck.query(
        f"select count(*) from (select _record_hash from {events} where _source_file = ? "
        "group by 1 having count(distinct split_part(_source_locator, ' ', 2)) > 1)",
        _fitabase_file("sleepDay_merged.csv"),
    )
    assert duplicated == [(3,)]  # exact duplicate rows land twice, with one hash
    fat = duck.query(f"select count(*) from {events} where metric = 'weightLogInfo.Fat'")
    assert fat == [(2,)]
    manual = dict(
        duck.query(
            f"select value, count(*) from {events} where metric = 'weightLogInfo.IsManualReport' "
            "group by 1"
        )
    )
    assert manual == {"True": 41, "False": 26}
    assert duck.query(
        f"select value_num from {events} where metric = 'weightLogInfo.IsManualReport' limit 1"
    ) == [(None,)]


def _same_outcome(grouped: Any, alone: Any, path: Path) -> None:
    grouped.check_accounting(path)
    assert (grouped.records_read, grouped.records_landed) == (
        alone.records_read,
        alone.records_landed,
    ), path
    assert [(q.locator, q.reason, q.payload) for q in grouped.quarantined] == [
        (q.locator, q.reason, q.payload) for q in alone.quarantined
    ], path
    assert grouped.tables.keys() == alone.tables.keys(), path
    for name, table in alone.tables.items():
        assert grouped.tables[name].schema == table.schema, (path, name)
        assert grouped.tables[name].to_pylist() == table.to_pylist(), (path, name)


def test_read_many_gives_what_read_gives_file_by_file(tmp_path: Path, cohort: Path) -> None:
    """The job reads a pool task's files with ``read_many`` (one table for the group, sliced per
    file); each outcome must be exactly ``read``'s, whatever the neighbours hold."""
    drop, _ = _corner_drop(tmp_path)
    drops = drop.parent
    (drops / "20240501T150000Z.jsonl").write_bytes(
        b'{"event_id":"m","metric":"steps","value":5,"start_time":"2024-05-01T14:00:00Z"}\n'
        b'{"event_id":"n","metric":"heart_rate","value":"x"}\n'
    )
    (drops / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"event_id":"s"}\n')[:-6])
    (drops / "empty.jsonl").write_bytes(b"\n\n")
    events = [{"event_id": "x1", "metric": "steps", "value": 10}]
    (drops / "export.json").write_bytes(orjson.dumps(events))
    reader = WearablesReader()
    mine = reader.discover(tmp_path)
    generated = reader.discover(cohort / "wearables")
    for paths in (mine, generated[:300], [*generated[:5], *mine, *generated[-5:]]):
        outcomes = reader.read_many(paths)
        for path, grouped in zip(paths, outcomes, strict=True):
            _same_outcome(grouped, reader.read(path), path)
        # Back from a worker (files with extra columns travel on their own) nothing changes.
        arrived = pickle.loads(pickle.dumps(OutcomeGroup([("h", o) for o in outcomes])))
        for path, (_, grouped), sent in zip(paths, arrived, outcomes, strict=True):
            _same_outcome(grouped, sent, path)
