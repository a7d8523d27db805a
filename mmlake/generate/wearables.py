"""Wearables as a device cloud exports them: JSON-lines micro-batches that land late and twice.

Layout under ``DIR/wearables/``::

    enrollment.csv                            the study coordinator's device register
    landing/YYYY-MM-DD/YYYYMMDDTHH0000Z.jsonl one export drop per arrival hour, for all devices

A file named ``...T140000Z`` is the hourly drop closed at 14:00 UTC: every line in it reached the
vendor cloud in [13:00, 14:00), so the name is never earlier than any event's ``recorded_at``. The
window is hourly unless the writer is given another ``window`` (a divisor of a day; the name is
always the window's closing instant and the folder that instant's UTC date).

A drop is a concatenation of device-cloud upload batches: its lines are ordered by arrival within
each batch, not across the whole file, so a later line may have arrived earlier than one above it.
(The generator streams wearers in flush chunks, bounded memory, and each chunk appends one batch
to every drop it reaches, in cohort order; the runner empties the output folder first, and the
first batch of a run truncates a file, so the bytes depend on the seed alone.) Each line is one
event (see ``_payload``); payloads carry the device and vendor user ids, never the MRN:
``enrollment.csv`` is the only link from ``device_id`` to a patient. What an ingestion job has to
survive, on purpose:

* late and out-of-order arrival (sync every few hours, or every few days for some devices;
  failed uploads retried at the next sync);
* re-sends: ~2% of events appear again in a later drop, same ``event_id``, byte-identical line;
* schema evolution: from recorded_at 2022-07-01 payloads gain ``firmware_version`` and
  ``battery_pct``;
* a unit change: Withings ScanWatch reports SpO2 as ``"unit": "ratio"`` (0-1) from 2021-10-01;
* dirty lines, all in ``_truth/dirty_records.csv`` with locator ``line N`` (1-based, in the
  finished ``file``, all batches counted) and `` event_id=<uuid>`` when the line still shows it:
  ``unparseable_event`` (truncated line, bytes overwritten with non-UTF-8 garbage, or a NUL-filled
  line) and ``invalid_event`` (valid JSON without ``event_id``, or a negative heart rate / step
  count / SpO2). Re-sent events are never dirtied, so every duplicate pair stays byte-identical.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mmlake.generate.cohort import PatientRecord, stream_rng
from mmlake.generate.truth import GenerationContext
from mmlake.generate.wearables_signal import (
    DAY,
    HEART_RATE,
    HOUR,
    METRICS,
    RATIO,
    SCHEMA_V2_FROM,
    SLEEP_STAGE,
    SPO2,
    STAGES,
    STEPS,
    UNITS,
    WearerStream,
    simulate_wearer,
)

CHUNK_WEARERS = 200  # wearers buffered per flush: ~300k events, ~30 MB of numpy columns
WINDOW = HOUR  # the export's arrival window: one landing file per window for all devices
ENROLLMENT_COLUMNS = ("device_id", "device_model", "patient_mrn", "enrolled_on", "withdrawn_on")

# What a dirtied event looks like in its file; CLEAN rows are written as generated.
CLEAN, TRUNCATED, GARBAGE, NUL_FILLED, NO_EVENT_ID, NEGATIVE = range(6)
UNPARSEABLE = (TRUNCATED, GARBAGE, NUL_FILLED)
_ID_PREFIX = len(b'{"event_id":"') + 36 + 1  # a line this long still shows its event_id


@dataclass
class _Pending:
    """A simulated wearer waiting for the chunk flush, with the damage planned for its lines."""

    stream: WearerStream
    dirt: np.ndarray  # int8 damage code per event row
    where: np.ndarray  # float in [0, 1): where in the line the damage starts
    garbage: dict[int, bytes]


def _iso(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _uuid(raw: np.ndarray) -> str:
    h = raw.tobytes().hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _drop_of(arrival: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """The export that carries an arrival: the first window boundary after it (closing instant)."""
    return (arrival // window + 1) * window


def _payload(stream: WearerStream, row: int) -> dict[str, Any]:
    """One event as the vendor exports it; field names and order never change."""
    device = stream.device
    metric = int(stream.metric[row])
    raw = float(stream.value[row])
    if metric == SLEEP_STAGE:
        value: Any = STAGES[int(raw)]
    elif metric == STEPS:
        value = int(raw)
    else:
        value = raw
    recorded = int(stream.recorded[row])
    event: dict[str, Any] = {
        "event_id": _uuid(stream.event_ids[row]),
        "device_id": device.device_id,
        "device_model": device.model.name,
        "user_id": device.user_id,
        "metric": METRICS[metric],
        "value": value,
        "unit": UNITS[int(stream.unit[row])],
        "start_time": _iso(int(stream.start[row])),
        "end_time": _iso(int(stream.end[row])),
        "recorded_at": _iso(recorded),
    }
    if recorded >= SCHEMA_V2_FROM:
        event["firmware_version"] = device.model.firmware[int(stream.firmware[row])]
        event["battery_pct"] = int(stream.battery[row])
    return event


def observed_features(stream: WearerStream, readable: np.ndarray) -> dict[str, float]:
    """The features a reader recomputes from the landing files (``readable``: not dirtied).

    Re-sent copies carry the same event_id and payload, so de-duplicated events are exactly the
    stream's rows. Daily steps are summed per UTC date of ``start_time``; resting heart rate is the
    mean of the lowest decile (at least one value) of the 2-h mean heart rates; SpO2 ratios are
    read as percentages.
    """
    features: dict[str, float] = {"n_events": float(readable.sum())}
    steps = readable & (stream.metric == STEPS)
    days, index = np.unique(stream.start[steps] // DAY, return_inverse=True)
    totals = np.bincount(index, weights=stream.value[steps], minlength=len(days))
    if len(days) >= 2:
        features["steps_slope_per_day"] = float(np.polyfit(days.astype(float), totals, 1)[0])
    if len(days):
        features["mean_daily_steps"] = float(totals.mean())
    hr = np.sort(stream.value[readable & (stream.metric == HEART_RATE)])
    if len(hr):
        features["resting_hr"] = float(hr[: max(1, len(hr) // 10)].mean())
    spo2 = readable & (stream.metric == SPO2)
    if spo2.any():
        pct = np.where(stream.unit[spo2] == RATIO, stream.value[spo2] * 100, stream.value[spo2])
        features["mean_spo2_pct"] = float(pct.mean())
    return features


class WearablesWriter:
    """Streams enrolled patients' device events into hourly landing files, a chunk at a time.

    Each flush appends the chunk's lines to the drops they belong to, so memory is bounded by one
    chunk plus a line count per drop written so far (at most one per window of the cohort's
    time span: ~90k for ten years of hourly drops), and the landing zone holds one file per
    window however many wearers there are.
    """

    modality = "wearables"

    def __init__(
        self,
        ctx: GenerationContext,
        *,
        chunk_wearers: int = CHUNK_WEARERS,
        window: int = WINDOW,
    ) -> None:
        if chunk_wearers < 1:
            raise ValueError("a flush chunk needs at least one wearer")
        if window < 60 or window % 60 or DAY % window:
            raise ValueError(f"window must be whole minutes dividing a day, not {window} s")
        self.ctx = ctx
        self.root = ctx.out_dir / self.modality
        self.landing = self.root / "landing"
        self.root.mkdir(parents=True, exist_ok=True)
        self.chunk_wearers = chunk_wearers
        self.window = window
        self._enrollment_file = (self.root / "enrollment.csv").open(
            "w", newline="", encoding="utf-8"
        )
        self._enrollment = csv.writer(self._enrollment_file, lineterminator="\n")
        self._enrollment.writerow(ENROLLMENT_COLUMNS)
        self._pending: list[_Pending] = []
        self._folders: set[Path] = set()
        self._lines: dict[int, int] = {}  # drop (closing instant) -> lines written to its file
        self._counts = {"devices": 0, "files": 0, "records": 0, "events": 0, "resent": 0}
        self._counts["dirty"] = 0

    def add(self, patient: PatientRecord) -> None:
        if not patient.has(self.modality):
            return
        stream = simulate_wearer(patient, self.ctx.seed)
        pending = self._plan_damage(patient, stream)
        readable = pending.dirt == CLEAN
        for name, value in observed_features(stream, readable).items():
            self.ctx.truth.feature(patient.patient_id, self.modality, name, value)
        device = stream.device
        self._enrollment.writerow(
            [
                device.device_id,
                device.model.name,
                patient.mrn,
                device.enrolled_on.isoformat(),
                device.withdrawn_on.isoformat() if device.withdrawn_on else "",
            ]
        )
        self._counts["devices"] += 1
        self._counts["events"] += int(readable.sum())
        self._pending.append(pending)
        if len(self._pending) >= self.chunk_wearers:
            self._flush()

    def close(self) -> dict[str, int]:
        self._flush()
        self._enrollment_file.close()
        return dict(self._counts)

    def _plan_damage(self, patient: PatientRecord, stream: WearerStream) -> _Pending:
        """Decide per event (one ``ctx.corrupt`` draw each) which lines the export will mangle.

        Details come from a second stream drawn for every event, so nothing but the garbage
        bytes themselves depends on the dirty rate.
        """
        n = len(stream)
        rng = stream_rng(self.ctx.seed, patient.index, "wearables:dirty")
        hit = np.fromiter((self.ctx.corrupt(rng) for _ in range(n)), dtype=bool, count=n)
        hit &= stream.resend_arrival < 0  # a re-sent event's copies must stay identical
        detail = stream_rng(self.ctx.seed, patient.index, "wearables:dirty-detail")
        kind, variant, where = detail.random(n), detail.random(n), detail.random(n)
        unparseable = np.select(
            [variant < 0.5, variant < 0.85], [TRUNCATED, GARBAGE], default=NUL_FILLED
        )
        numeric = stream.metric != SLEEP_STAGE
        invalid = np.where(numeric & (variant < 0.6), NEGATIVE, NO_EVENT_ID)
        dirt = np.where(hit, np.where(kind < 0.65, unparseable, invalid), CLEAN).astype(np.int8)
        garbage = {
            int(r): b"\xff"
            + detail.integers(0x80, 0x100, int(detail.integers(4, 24)), np.uint8).tobytes()
            for r in np.flatnonzero(dirt == GARBAGE)
        }
        return _Pending(stream, dirt, where, garbage)

    def _flush(self) -> None:
        """Append the buffered chunk to its drops: sorted by drop, then arrival, then wearer."""
        if not self._pending:
            return
        drop, arrival, wearer, row, copy = [], [], [], [], []
        for w, pending in enumerate(self._pending):
            s = pending.stream
            rows = np.arange(len(s))
            first = _drop_of(s.arrival, self.window)
            again = rows[s.resend_arrival >= 0]
            # A re-send always lands in a later drop than the original.
            second = np.maximum(
                _drop_of(s.resend_arrival[again], self.window), first[again] + self.window
            )
            drop += [first, second]
            arrival += [s.arrival, s.resend_arrival[again]]
            row += [rows, again]
            wearer.append(np.full(len(rows) + len(again), w))
            copy += [np.zeros(len(rows), np.int8), np.ones(len(again), np.int8)]
        cols = [np.concatenate(c) for c in (copy, row, wearer, arrival, drop)]
        order = np.lexsort(cols)
        copy_s, row_s, wearer_s, _, drop_s = (c[order] for c in cols)
        bounds = np.flatnonzero(np.diff(drop_s)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(drop_s)], strict=True):
            self._write_drop(
                int(drop_s[lo]),
                wearer_s[lo:hi].tolist(),
                row_s[lo:hi].tolist(),
                copy_s[lo:hi].tolist(),
            )
        self._pending.clear()

    def _write_drop(
        self, drop: int, wearers: list[int], rows: list[int], copies: list[int]
    ) -> None:
        stamp = time.gmtime(drop)
        folder = self.landing / time.strftime("%Y-%m-%d", stamp)
        if folder not in self._folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        path = folder / f"{time.strftime('%Y%m%dT%H%M%SZ', stamp)}.jsonl"
        new_file = drop not in self._lines
        written = self._lines.get(drop, 0)  # locators number the finished file's lines
        lines = []
        batch = zip(wearers, rows, copies, strict=True)
        for number, (w, r, again) in enumerate(batch, written + 1):
            pending = self._pending[w]
            event = _payload(pending.stream, r)
            code = CLEAN if again else int(pending.dirt[r])
            if code == CLEAN:
                lines.append(orjson.dumps(event))
            else:
                lines.append(self._damage(path, number, event, code, pending, r))
        # The first batch of a run truncates: a leftover file can never shift the line numbers.
        with path.open("wb" if new_file else "ab") as handle:
            handle.write(b"\n".join(lines) + b"\n")
        self._lines[drop] = written + len(lines)
        self._counts["files"] += int(new_file)
        self._counts["records"] += len(lines)
        self._counts["resent"] += sum(copies)

    def _damage(
        self, path: Path, number: int, event: dict[str, Any], code: int, p: _Pending, row: int
    ) -> bytes:
        """Mangle one line as real exports get mangled, and log it so a reader can find it."""
        event_id = event["event_id"]
        full = orjson.dumps(event)
        shown = False
        if code == TRUNCATED:  # an interrupted append: the line just stops
            cut = 1 + int(p.where[row] * (len(full) - 2))
            line, shown = full[:cut], cut >= _ID_PREFIX
            reason = f"line cut after {cut} of {len(full)} bytes"
        elif code == GARBAGE:  # bytes overwritten after the id (0xFF is never valid UTF-8)
            junk = p.garbage[row]
            at = _ID_PREFIX + int(p.where[row] * (len(full) - _ID_PREFIX - len(junk)))
            line, shown = full[:at] + junk + full[at + len(junk) :], True
            reason = f"{len(junk)} bytes at offset {at} overwritten with non-UTF-8 garbage"
        elif code == NUL_FILLED:  # space allocated by a crashed writer, never filled
            line = b"\x00" * len(full)
            reason = "line is all NUL bytes"
        elif code == NO_EVENT_ID:
            del event["event_id"]
            line = orjson.dumps(event)
            reason = "valid JSON but event_id is missing"
        else:
            event["value"] = -event["value"] if event["value"] else -1  # never a valid -0
            line = orjson.dumps(event)
            reason = f"negative {event['metric']} value {event['value']}"
        kind = "unparseable_event" if code in UNPARSEABLE else "invalid_event"
        locator = f"line {number} event_id={event_id}" if shown else f"line {number}"
        if not shown:
            reason += f" (was event_id {event_id})"
        self.ctx.truth.dirty(self.modality, kind, self.ctx.relative(path), locator, reason)
        self._counts["dirty"] += 1
        return line
