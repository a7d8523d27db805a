"""Wearables silver and gold against bronze and the generator's `_truth`.

The generator plants what a device-cloud feed really does: re-sent events, a unit change
(Withings ScanWatch SpO2 as a 0-1 ratio from 2021-10-01), events that arrive days late, and an
activity decline (latent factor `a`) that lowers steps over the monitoring window. These tests
check each one in the built tables, and that an incremental run after a new landing file
touches only the days its events belong to.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from mmlake.dbt_runner import run_dbt
from mmlake.duckdb_ext import connect
from mmlake.pseudonym import pseudonym_key
from python_ingest.runner import ingest_sources
from tests.models.conftest import Built

LOOKBACK_DAYS = 7  # var('wearables_lookback_days') in dbt_project.yml


def _truth_keys(built: Built, conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """patient_key -> truth row of every wearer, keyed exactly as pseudonymize() keys MRNs."""
    key = pseudonym_key(built.lakehouse)
    wearers = [r for r in built.truth_rows("patients.csv") if r["has_wearables"] == "1"]
    keyed = dict(
        conn.execute(
            "select mrn, sha256(? || ':' || upper(trim(mrn))) from unnest(?) as t(mrn)",
            [key, [r["mrn"] for r in wearers]],
        ).fetchall()
    )
    return {keyed[row["mrn"]]: row for row in wearers}


def _truth_features(built: Built) -> dict[str, dict[str, float]]:
    """patient_id -> {feature: value} of the wearables features the generator recorded."""
    features: dict[str, dict[str, float]] = {}
    for row in built.truth_rows("features.csv"):
        if row["modality"] == "wearables":
            features.setdefault(row["patient_id"], {})[row["feature"]] = float(row["value"])
    return features


def test_resent_events_collapse_to_one_row_each(warehouse: duckdb.DuckDBPyConnection) -> None:
    resent = warehouse.execute(
        """
        select event_id, min(arrival_time) as first_arrival, count(*) as copies
        from bronze.wearables_events
        group by event_id
        having count(*) > 1
        """
    ).fetchall()
    assert len(resent) > 100, "the cohort should carry re-sent events"
    per_event = dict(
        warehouse.execute(
            """
            select s.event_id, count(*)
            from silver.stg_wearables__events as s
            inner join (
                select event_id from bronze.wearables_events group by event_id having count(*) > 1
            ) as r on s.event_id = r.event_id
            group by s.event_id
            """
        ).fetchall()
    )
    assert len(per_event) == len(resent)
    assert set(per_event.values()) == {1}
    # The kept copy is the first arrival.
    late_copies = warehouse.execute(
        """
        select count(*)
        from silver.stg_wearables__events as s
        inner join bronze.wearables_events as b on s.event_id = b.event_id
        where b.arrival_time < s.arrival_time
        """
    ).fetchone()[0]
    assert late_copies == 0
    total, distinct = warehouse.execute(
        "select count(*), count(distinct event_id) from silver.stg_wearables__events"
    ).fetchone()
    assert total == distinct


def test_every_readable_event_of_each_wearer_is_kept(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Silver holds exactly the events the generator did not dirty, per patient."""
    keys = _truth_keys(built, warehouse)
    truth = _truth_features(built)
    counts = dict(
        warehouse.execute(
            "select patient_key, count(*) from silver.stg_wearables__events group by 1"
        ).fetchall()
    )
    assert set(counts) == set(keys)
    for patient_key, row in keys.items():
        assert counts[patient_key] == truth[row["patient_id"]]["n_events"]


def test_spo2_unit_change_is_normalised(built: Built, warehouse: duckdb.DuckDBPyConnection) -> None:
    by_unit = {
        unit: (n, low, high, mean, raw_high)
        for unit, n, low, high, mean, raw_high in warehouse.execute(
            """
            select unit_as_sent, count(*), min(canonical_value), max(canonical_value),
                avg(canonical_value),
                max(cast(value_as_sent as double))
            from silver.stg_wearables__events
            where metric = 'spo2'
            group by 1
            """
        ).fetchall()
    }
    assert set(by_unit) == {"%", "ratio"}, by_unit
    n, low, high, mean, raw_high = by_unit["ratio"]
    assert n > 0 and raw_high <= 1.0  # sent as fractions ...
    assert low >= 85 and high <= 100  # ... read as percentages
    assert abs(mean - by_unit["%"][3]) < 1.5  # comparable to the devices that send percent
    assert {"%"} == {
        u
        for (u,) in warehouse.execute(
            "select distinct canonical_unit from silver.stg_wearables__events where metric='spo2'"
        ).fetchall()
    }
    # Per patient, the mean SpO2 equals the generator's (which reads ratios as percent).
    keys = _truth_keys(built, warehouse)
    truth = _truth_features(built)
    means = warehouse.execute(
        "select patient_key, avg(canonical_value) from silver.stg_wearables__events "
        "where metric = 'spo2' group by 1"
    ).fetchall()
    assert means
    for patient_key, mean_pct in means:
        expected = truth[keys[patient_key]["patient_id"]]["mean_spo2_pct"]
        assert mean_pct == pytest.approx(expected, rel=1e-5)


def test_late_events_count_for_the_day_they_happened(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    late = warehouse.execute(
        """
        select s.patient_key, s.activity_date, s.canonical_value, s.start_time, s.arrival_time
        from silver.stg_wearables__events as s
        where s.metric = 'steps' and s.arrival_time > s.start_time + interval 3 day
        """
    ).fetchall()
    assert len(late) > 20, "the cohort should carry events that arrive days late"
    for patient_key, day, value, start, arrival in late:
        assert day == start.date() and day < arrival.date()
        # The day's total is the sum of every steps event of that day, the late one included.
        total, expected, n_events = warehouse.execute(
            """
            select d.metric_value, sum(s.canonical_value), d.n_events
            from silver.int_wearables__daily as d
            inner join silver.stg_wearables__events as s
                on s.patient_key = d.patient_key and s.activity_date = d.activity_date
                and s.metric = 'steps'
            where d.patient_key = ? and d.activity_date = ? and d.metric = 'steps_total'
            group by d.metric_value, d.n_events
            """,
            [patient_key, day],
        ).fetchone()
        assert total == expected and total >= value and n_events >= 1


def test_daily_steps_match_the_generator(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    keys = _truth_keys(built, warehouse)
    truth = _truth_features(built)
    means = warehouse.execute(
        "select patient_key, avg(metric_value) from silver.int_wearables__daily "
        "where metric = 'steps_total' group by 1"
    ).fetchall()
    assert len(means) == len(keys)
    for patient_key, mean in means:
        expected = truth[keys[patient_key]["patient_id"]]["mean_daily_steps"]
        assert mean == pytest.approx(expected, rel=1e-5)  # _truth keeps 6 significant digits


def test_features_one_row_per_wearer_and_nothing_after_the_landmark(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    keys = _truth_keys(built, warehouse)
    rows = warehouse.execute(
        """
        select patient_key, landmark_date, last_observed_date, days_observed, wear_days_30d
        from gold.features_wearables
        """
    ).fetchall()
    assert {r[0] for r in rows} == set(keys)
    assert len(rows) == len(keys)
    for _, landmark, last_seen, days, wear_days in rows:
        assert last_seen <= landmark
        assert days >= 1 and 0 <= wear_days <= 30
    # The daily mart keeps the days after the landmark for the tumour board.
    after = warehouse.execute(
        """
        select count(*)
        from gold.wearables_daily as d
        inner join gold.features_wearables as f on d.patient_key = f.patient_key
        where d.activity_date > f.landmark_date
        """
    ).fetchone()[0]
    assert after > 0


def test_steps_slope_falls_with_activity_decline(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    keys = _truth_keys(built, warehouse)
    rows = warehouse.execute(
        "select patient_key, steps_slope_per_day, resting_hr_mean from gold.features_wearables"
    ).fetchall()
    decline = np.array([float(keys[k]["latent_activity_decline"]) for k, _, _ in rows])
    slope = np.array([s for _, s, _ in rows], dtype=float)
    resting = np.array([r for _, _, r in rows], dtype=float)
    assert len(rows) >= 20
    assert np.corrcoef(decline, slope)[0, 1] < -0.5
    assert np.corrcoef(decline, resting)[0, 1] > 0.3  # resting heart rate rises with decline


def _event(device: tuple[str, str, str], event_id: str, start: datetime, steps: int) -> bytes:
    """One steps event line as the device cloud writes it."""
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    end = start + timedelta(hours=2)
    payload = {
        "event_id": event_id,
        "device_id": device[0],
        "device_model": device[1],
        "user_id": device[2],
        "metric": "steps",
        "value": steps,
        "unit": "count",
        "start_time": start.strftime(stamp),
        "end_time": end.strftime(stamp),
        "recorded_at": (end + timedelta(seconds=40)).strftime(stamp),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def test_incremental_run_updates_only_the_days_of_new_events(
    built: Built, warehouse: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Land one more drop on a copy of the lakehouse and re-run the wearables models."""
    patient_key, watermark = warehouse.execute(
        """
        select patient_key, max(start_time)
        from silver.stg_wearables__events
        group by patient_key
        order by patient_key
        limit 1
        """
    ).fetchone()
    device = warehouse.execute(
        """
        select b.device_id, b.device_model, b.user_id, b._source_file, b._source_locator
        from bronze.wearables_events as b
        inner join silver.stg_wearables__events as s
            on s._source_file = b._source_file and s._source_locator = b._source_locator
        where s.patient_key = ? and s.metric = 'steps'
        order by s.start_time
        limit 1
        """,
        [patient_key],
    ).fetchone()
    resent_file, resent_line = device[3], int(device[4].split()[1])
    inside = (watermark - timedelta(days=2)).replace(hour=6, minute=0, second=0)
    outside = (watermark - timedelta(days=LOOKBACK_DAYS + 13)).replace(hour=6, minute=0, second=0)
    resent = Path(resent_file).read_bytes().split(b"\n")[resent_line - 1]
    drop = tmp_path / "landing" / f"{(watermark + timedelta(days=3)):%Y%m%dT%H0000Z}.jsonl"
    drop.parent.mkdir(parents=True)
    drop.write_bytes(
        b"\n".join(
            [
                _event(device[:3], "00000000-0000-4000-8000-00000000a11e", inside, 1234),
                _event(device[:3], "00000000-0000-4000-8000-00000000b0b0", outside, 4321),
                resent,  # a re-send of an event silver already holds
            ]
        )
        + b"\n"
    )

    before = {
        (d, m): (v, at)
        for d, m, v, at in warehouse.execute(
            "select activity_date, metric, metric_value, aggregated_at "
            "from silver.int_wearables__daily "
            "where patient_key = ?",
            [patient_key],
        ).fetchall()
    }
    others_before = warehouse.execute(
        "select count(*), sum(metric_value) from silver.int_wearables__daily "
        "where patient_key != ?",
        [patient_key],
    ).fetchone()
    events_before = warehouse.execute(
        "select count(*) from silver.stg_wearables__events"
    ).fetchone()[0]

    lake = tmp_path / "lakehouse"
    shutil.copytree(built.lakehouse, lake, ignore=shutil.ignore_patterns("dbt"))
    ingest_sources(drop.parent, "wearables", lake, progress=False)
    run_dbt(
        ["build", "--select", "path:models/silver/wearables path:models/gold/wearables"],
        target="local",
        lakehouse=lake,
    )

    with connect(lake / "warehouse.duckdb", read_only=True) as after:
        new = after.execute(
            """
            select event_id, beyond_watermark, watermark_at_arrival, activity_date
            from silver.stg_wearables__events
            where _ingested_at > (select max(_ingested_at) from bronze.wearables_events
                                  where _source_file != ?)
            order by event_id
            """,
            [str(drop)],
        ).fetchall()
        assert [(e, b) for e, b, _, _ in new] == [
            ("00000000-0000-4000-8000-00000000a11e", False),
            ("00000000-0000-4000-8000-00000000b0b0", True),
        ]
        assert all(w == watermark for _, _, w, _ in new)
        events_after = after.execute("select count(*) from silver.stg_wearables__events")
        assert events_after.fetchone()[0] == events_before + 2  # the re-send adds nothing

        rows = {
            (d, m): (v, at)
            for d, m, v, at in after.execute(
                "select activity_date, metric, metric_value, aggregated_at "
                "from silver.int_wearables__daily where patient_key = ?",
                [patient_key],
            ).fetchall()
        }
        changed = {k for k in rows if rows[k] != before.get(k)}
        assert changed and {d for d, _ in changed} == {inside.date()}
        old_total = before.get((inside.date(), "steps_total"), (0.0, None))[0]
        assert rows[(inside.date(), "steps_total")][0] == old_total + 1234
        # Beyond the watermark: in silver, but its day keeps its published values.
        assert rows.get((outside.date(), "steps_total")) == before.get(
            (outside.date(), "steps_total")
        )
        others_after = after.execute(
            "select count(*), sum(metric_value) from silver.int_wearables__daily "
            "where patient_key != ?",
            [patient_key],
        ).fetchone()
        assert others_after == others_before
        gold_steps = after.execute(
            "select steps_total from gold.wearables_daily "
            "where patient_key = ? and activity_date = ?",
            [patient_key, inside.date()],
        ).fetchone()[0]
        assert gold_steps == old_total + 1234
