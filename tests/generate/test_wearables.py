"""The wearables landing zone, read back the way an ingestion job must read it.

Every line is parsed with a strict JSON reader (orjson, cross-checked with the stdlib) and
validated against the export's field rules; the truth logs say which lines were mangled on
purpose and which features the files carry.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from mmlake.generate.cohort import ModalityRates, iter_cohort
from mmlake.generate.truth import GenerationContext, TruthLog
from mmlake.generate.wearables import WearablesWriter, _payload
from mmlake.generate.wearables_signal import DAY, simulate_wearer

SEED = 11
PATIENTS = 90
RATES = ModalityRates(wearables=0.5)  # more wearers per patient keeps the cohort small
SCHEMA_V2 = dt.datetime(2022, 7, 1, tzinfo=dt.UTC)
SPO2_RATIO = dt.datetime(2021, 10, 1, tzinfo=dt.UTC)  # ScanWatch firmware switches to 0-1
REQUIRED = (
    "event_id",
    "device_id",
    "device_model",
    "user_id",
    "metric",
    "value",
    "unit",
    "start_time",
    "end_time",
    "recorded_at",
)
STATUS = ("firmware_version", "battery_pct")
UNITS = {
    "heart_rate": {"bpm"},
    "steps": {"count"},
    "spo2": {"%", "ratio"},
    "sleep_stage": {"stage"},
}
RANGES = {"bpm": (25, 250), "count": (0, 40_000), "%": (50, 100), "ratio": (0.5, 1.0)}
STAGES = {"wake", "light", "deep", "rem"}
DROP_NAME = re.compile(r"\d{8}T\d{6}Z\.jsonl")  # one drop per arrival window, no chunk id


def _time(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text)


def _problem(event: dict[str, Any]) -> str | None:
    """Why a parsed event breaks the export's rules (None when it is a valid event)."""
    missing = [f for f in REQUIRED if f not in event]
    if missing:
        return f"missing {missing}"
    uuid.UUID(event["event_id"])
    metric, unit, value = event["metric"], event["unit"], event["value"]
    if unit not in UNITS.get(metric, ()):
        return f"unit {unit} for {metric}"
    if metric == "sleep_stage":
        if value not in STAGES:
            return f"stage {value}"
    else:
        low, high = RANGES[unit]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"value {value!r}"
        if metric == "steps" and not isinstance(value, int):
            return "fractional steps"
        if not low <= value <= high:
            return f"{metric} {value} outside [{low}, {high}]"
    if not _time(event["start_time"]) <= _time(event["end_time"]) <= _time(event["recorded_at"]):
        return "times out of order"
    return None


@dataclass
class Line:
    file: str  # relative to the output root, as in _truth
    stamp: dt.datetime  # the drop time in the file name
    number: int
    raw: bytes
    event: dict[str, Any] | None  # None when the line is not JSON


@dataclass
class Landing:
    out: Path
    lines: list[Line]
    counts: dict[str, int]
    patients: pd.DataFrame
    features: pd.DataFrame
    dirty: pd.DataFrame
    enrollment: pd.DataFrame

    def valid(self) -> list[Line]:
        return [x for x in self.lines if x.event is not None and _problem(x.event) is None]


def _generate(
    out: Path, seed: int, patients: int, chunk: int = 12, **options: Any
) -> dict[str, int]:
    truth = TruthLog(out)
    ctx = GenerationContext(out, seed, 0.05, truth)
    writer = WearablesWriter(ctx, chunk_wearers=chunk, **options)
    for patient in iter_cohort(patients, seed, RATES):
        truth.patient(patient)
        writer.add(patient)
    counts = writer.close()
    truth.close()
    return counts


def _read_lines(out: Path) -> list[Line]:
    lines = []
    for path in sorted((out / "wearables" / "landing").rglob("*.jsonl")):
        assert DROP_NAME.fullmatch(path.name), path.name
        stamp = dt.datetime.strptime(path.stem, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        assert path.parent.name == stamp.date().isoformat()
        body = path.read_bytes()
        assert body.endswith(b"\n")
        for number, raw in enumerate(body[:-1].split(b"\n"), 1):
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                with pytest.raises(ValueError):  # the stdlib reader rejects it too
                    json.loads(raw)
                event = None
            rel = path.relative_to(out).as_posix()
            lines.append(Line(rel, stamp, number, raw, event))
    return lines


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Landing:
    out = tmp_path_factory.mktemp("wearables")
    counts = _generate(out, SEED, PATIENTS)

    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(out / name, keep_default_na=False, dtype=str)

    dirty = read("_truth/dirty_records.csv")
    return Landing(
        out,
        _read_lines(out),
        counts,
        read("_truth/patients.csv"),
        read("_truth/features.csv").query("modality == 'wearables'"),
        dirty[dirty["modality"] == "wearables"],
        read("wearables/enrollment.csv"),
    )


def _logged(landing: Landing, kind: str) -> set[tuple[str, int]]:
    rows = landing.dirty[landing.dirty["kind"] == kind]
    return {(f, int(loc.split()[1])) for f, loc in zip(rows["file"], rows["locator"], strict=True)}


def test_one_file_per_arrival_hour_fed_by_several_chunks(landing: Landing) -> None:
    """All devices share one drop per hour; each flush chunk appends a block in cohort order."""
    files = {x.file for x in landing.lines}
    hours = {x.stamp for x in landing.lines}
    assert all(stamp.minute == stamp.second == 0 for stamp in hours)
    assert len(files) == len(hours) == landing.counts["files"]
    wearer_hours = {(x.event["device_id"], x.stamp) for x in landing.valid()}
    assert len(files) < len(wearer_hours)  # devices share drops
    chunk_of = {d: i // 12 for i, d in enumerate(landing.enrollment["device_id"])}  # chunk=12
    chunks: dict[str, list[int]] = defaultdict(list)
    for x in landing.lines:
        if x.event is not None and "device_id" in x.event:
            chunks[x.file].append(chunk_of[x.event["device_id"]])
    shared = [seq for seq in chunks.values() if len(set(seq)) > 1]
    assert shared, "with 12 wearers per chunk, some drops must get lines from several chunks"
    assert all(seq == sorted(seq) for seq in chunks.values())  # blocks, appended in cohort order


def test_files_hold_the_same_lines_whatever_the_chunk_size(tmp_path: Path) -> None:
    """Chunking only orders the blocks inside a drop: one chunk for all sorts by arrival."""
    per_file = {}
    for chunk in (1, 4, 1000):
        out = tmp_path / str(chunk)
        _generate(out, 5, 24, chunk=chunk)
        grouped: dict[str, list[bytes]] = defaultdict(list)
        for line in _read_lines(out):
            grouped[line.file].append(line.raw)
        per_file[chunk] = {file: sorted(raws) for file, raws in grouped.items()}
        dirty = pd.read_csv(out / "_truth/dirty_records.csv", dtype=str)
        assert len(dirty) > 0
        for file, locator in zip(dirty["file"], dirty["locator"], strict=True):
            number = int(locator.split()[1])
            assert 1 <= number <= len(grouped[file])
            if "event_id=" in locator:  # the locator names the line in the finished file
                event_id = locator.split("=")[1].encode()
                assert grouped[file][number - 1].startswith(b'{"event_id":"' + event_id)
    assert per_file[1] == per_file[4] == per_file[1000]


def test_a_leftover_file_is_overwritten_not_appended_to(tmp_path: Path) -> None:
    clean, reused = tmp_path / "clean", tmp_path / "reused"
    _generate(clean, 3, 20, chunk=4)
    first = min(_digest(clean / "wearables" / "landing"))
    stale = reused / "wearables" / "landing" / first
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'{"stale": true}\n' * 3)
    _generate(reused, 3, 20, chunk=4)
    assert _digest(clean) == _digest(reused)


def test_the_arrival_window_is_configurable(tmp_path: Path) -> None:
    hourly, daily = tmp_path / "hourly", tmp_path / "daily"
    counts = _generate(hourly, 3, 20, chunk=4)
    daily_counts = _generate(daily, 3, 20, chunk=4, window=DAY)
    lines = _read_lines(daily)
    assert {(x.stamp.hour, x.stamp.minute) for x in lines} == {(0, 0)}
    assert daily_counts["files"] == len({x.file for x in lines}) < counts["files"]
    for x in lines:  # the day's drop closes after every arrival it carries
        if x.event is not None and "recorded_at" in x.event:
            assert x.stamp > _time(x.event["recorded_at"])
    assert daily_counts["events"] == counts["events"]
    truth = TruthLog(tmp_path / "rejected")
    for window in (0, 59, 7 * 60, 2 * DAY):
        with pytest.raises(ValueError, match="window"):
            WearablesWriter(GenerationContext(tmp_path, 1, 0.0, truth), window=window)
    truth.close()


def test_only_the_logged_lines_are_unparseable(landing: Landing) -> None:
    broken = {(x.file, x.number) for x in landing.lines if x.event is None}
    assert broken, "dirty rate 0.05 should have mangled some lines"
    assert broken == _logged(landing, "unparseable_event")
    assert landing.counts["records"] == len(landing.lines)
    assert landing.counts["dirty"] == len(landing.dirty)


def test_only_the_logged_events_are_invalid(landing: Landing) -> None:
    invalid = {(x.file, x.number) for x in landing.lines if x.event and _problem(x.event)}
    assert invalid, "dirty rate 0.05 should have planted invalid events"
    assert invalid == _logged(landing, "invalid_event")


def test_locators_name_the_event_when_the_line_still_shows_it(landing: Landing) -> None:
    by_place = {(x.file, x.number): x for x in landing.lines}
    shown = 0
    for file, locator in zip(landing.dirty["file"], landing.dirty["locator"], strict=True):
        line = by_place[(file, int(locator.split()[1]))]
        if "event_id=" in locator:
            shown += 1
            assert line.raw.startswith(b'{"event_id":"' + locator.split("=")[1].encode())
    assert shown > 0


def test_resent_events_are_identical_and_land_in_a_later_drop(landing: Landing) -> None:
    copies: dict[str, list[Line]] = defaultdict(list)
    for line in landing.valid():
        copies[line.event["event_id"]].append(line)
    resent = [group for group in copies.values() if len(group) > 1]
    assert 0.01 < len(resent) / len(copies) < 0.04
    assert sum(len(g) - 1 for g in resent) == landing.counts["resent"]
    for group in resent:
        assert len({line.raw for line in group}) == 1
        assert len({line.stamp for line in group}) == len(group)
    assert landing.counts["events"] == len(copies)


def test_arrival_never_precedes_recording_and_some_land_days_late(landing: Landing) -> None:
    lags = [
        (x.stamp - _time(x.event["recorded_at"])).total_seconds()
        for x in landing.lines
        if x.event is not None and "recorded_at" in x.event
    ]
    assert min(lags) > 0
    assert max(lags) > 3 * 86_400
    assert 0.01 < np.mean(np.array(lags) > 86_400) < 0.5


def test_a_device_delivers_out_of_order(landing: Landing) -> None:
    """Even without re-sends: a failed upload is retried after newer events got through."""
    seen: dict[str, set[str]] = defaultdict(set)
    latest: dict[str, dt.datetime] = {}
    late_arrivals = 0
    for line in sorted(landing.valid(), key=lambda x: (x.stamp, x.file, x.number)):
        event = line.event
        if event["event_id"] in seen[event["device_id"]]:
            continue
        seen[event["device_id"]].add(event["event_id"])
        recorded = _time(event["recorded_at"])
        if recorded < latest.get(event["device_id"], recorded):
            late_arrivals += 1
        latest[event["device_id"]] = max(recorded, latest.get(event["device_id"], recorded))
    assert late_arrivals > 0


def test_schema_gains_device_status_fields_mid_stream(landing: Landing) -> None:
    early = [x.event for x in landing.valid() if _time(x.event["recorded_at"]) < SCHEMA_V2]
    later = [x.event for x in landing.valid() if _time(x.event["recorded_at"]) >= SCHEMA_V2]
    assert early and later
    assert all(list(e) == list(REQUIRED) for e in early)
    assert all(list(e) == [*REQUIRED, *STATUS] for e in later)
    assert all(0 <= e["battery_pct"] <= 100 for e in later)


def test_spo2_unit_changes_for_one_model_only(landing: Landing) -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for line in landing.valid():
        event = line.event
        if event["metric"] != "spo2":
            continue
        units[event["device_model"]].add(event["unit"])
        if event["device_model"] == "Withings ScanWatch":
            switched = _time(event["recorded_at"]) >= SPO2_RATIO
            assert event["unit"] == ("ratio" if switched else "%")
    assert len(units) >= 3
    assert [model for model, seen in units.items() if "ratio" in seen] == ["Withings ScanWatch"]
    assert all(seen == {"%"} for model, seen in units.items() if model != "Withings ScanWatch")


def test_one_device_changes_unit_and_schema_mid_stream() -> None:
    """ScanWatch wearers diagnosed on the day each change starts see both sides in one stream."""
    mid_stream = {"unit": 0, "schema": 0}
    for patient in iter_cohort(150, SEED, ModalityRates(wearables=1.0)):
        for day, change in ((dt.date(2021, 10, 1), "unit"), (dt.date(2022, 7, 1), "schema")):
            stream = simulate_wearer(replace(patient, diagnosis_date=day), SEED)
            if stream.device.model.name != "Withings ScanWatch":
                continue
            events = [_payload(stream, row) for row in range(len(stream))]
            if change == "unit":
                seen = {e["unit"] for e in events if e["metric"] == "spo2"}
                mid_stream[change] += seen == {"%", "ratio"}
            else:
                sizes = {len(e) for e in events}
                mid_stream[change] += sizes == {len(REQUIRED), len(REQUIRED) + len(STATUS)}
    assert mid_stream["unit"] >= 3
    assert mid_stream["schema"] >= 3


def test_enrollment_is_the_only_link_from_device_to_patient(landing: Landing) -> None:
    enrolled = landing.enrollment.set_index("device_id")
    assert enrolled.index.is_unique
    wearers = landing.patients[landing.patients["has_wearables"] == "1"]
    assert sorted(enrolled["patient_mrn"]) == sorted(wearers["mrn"])
    assert (enrolled["withdrawn_on"] != "").mean() < 0.3
    for line in landing.lines:
        assert b"MRN" not in line.raw
    window = {d: (r["enrolled_on"], r["withdrawn_on"] or "9999") for d, r in enrolled.iterrows()}
    for line in landing.valid():
        event = line.event
        assert enrolled.loc[event["device_id"], "device_model"] == event["device_model"]
        first, withdrawn = window[event["device_id"]]
        assert first <= event["start_time"][:10] < withdrawn


def _recompute(events: list[dict[str, Any]]) -> dict[str, float]:
    """The documented features, from de-duplicated valid events of one device."""
    daily: dict[str, int] = defaultdict(int)
    for e in events:
        if e["metric"] == "steps":
            daily[e["start_time"][:10]] += e["value"]
    days = np.array([dt.date.fromisoformat(d).toordinal() for d in daily], float)
    hr = np.sort([e["value"] for e in events if e["metric"] == "heart_rate"])
    spo2 = [
        e["value"] * (100 if e["unit"] == "ratio" else 1) for e in events if e["metric"] == "spo2"
    ]
    return {
        "n_events": len(events),
        "steps_slope_per_day": np.polyfit(days, list(daily.values()), 1)[0],
        "mean_daily_steps": np.mean(list(daily.values())),
        "resting_hr": hr[: max(1, len(hr) // 10)].mean(),
        "mean_spo2_pct": np.mean(spo2),
    }


def test_features_recomputed_from_the_files_match_truth(landing: Landing) -> None:
    unique: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in landing.valid():
        unique[line.event["device_id"]][line.event["event_id"]] = line.event
    patient_of = dict(zip(landing.patients["mrn"], landing.patients["patient_id"], strict=True))
    truth = {(r.patient_id, r.feature): float(r.value) for r in landing.features.itertuples()}
    assert len(truth) == 5 * len(landing.enrollment)
    enrolled = landing.enrollment
    for device, mrn in zip(enrolled["device_id"], enrolled["patient_mrn"], strict=True):
        got = _recompute(list(unique[device].values()))
        for name, value in got.items():
            expected = truth[(patient_of[mrn], name)]
            assert value == pytest.approx(expected, rel=2e-5, abs=1e-6), (device, name)


def test_activity_decline_is_planted_in_the_steps(landing: Landing) -> None:
    wide = landing.features.pivot(index="patient_id", columns="feature", values="value")
    wide = wide.astype(float).join(
        landing.patients.set_index("patient_id")["latent_activity_decline"].astype(float)
    )
    assert wide["n_events"].between(900, 1800).mean() > 0.8
    assert 1000 < wide["n_events"].mean() < 1500
    assert wide["steps_slope_per_day"].corr(wide["latent_activity_decline"]) < -0.5
    assert wide["resting_hr"].corr(wide["latent_activity_decline"]) > 0.2


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_different_seed_different_data(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 3), (b, 3), (c, 4)):
        _generate(out, seed, 30, chunk=5)
    assert _digest(a) == _digest(b)
    assert _digest(a)["wearables/enrollment.csv"] != _digest(c)["wearables/enrollment.csv"]
    assert set(_digest(a)) != set(_digest(c))


def test_enrollment_is_written_even_without_wearers(tmp_path: Path) -> None:
    truth = TruthLog(tmp_path)
    writer = WearablesWriter(GenerationContext(tmp_path, 1, 0.01, truth))
    for patient in iter_cohort(5, 1, ModalityRates(wearables=0.0)):
        writer.add(patient)
    assert writer.close()["files"] == 0
    truth.close()
    with (tmp_path / "wearables" / "enrollment.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["device_id", "device_model", "patient_mrn", "enrolled_on", "withdrawn_on"]
        ]
