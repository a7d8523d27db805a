"""What one enrolled wearable records, and when each event reaches the vendor's cloud.

The simulation is columnar (one numpy array per field) so that a flush chunk of hundreds of
wearers costs tens of megabytes, not the gigabyte that per-event Python objects would. It knows
nothing about files: `mmlake.generate.wearables` decides which bytes land where.

Signal (latent activity decline ``a``): daily steps start near 6000*exp(N(0, 0.35)), fall by
exp(-0.012*a per day) across the monitoring window (a gentler rise when a < 0) and drop again
after diagnosis; resting heart rate is about 3*a bpm higher; sleep is a little shorter,
shallower and more broken.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from mmlake.generate.cohort import PatientRecord, new_uuid, stream_rng

EPOCH = dt.date(1970, 1, 1)
DAY = 86_400
HOUR = 3_600

METRICS: tuple[str, ...] = ("heart_rate", "steps", "spo2", "sleep_stage")
HEART_RATE, STEPS, SPO2, SLEEP_STAGE = range(4)
# "ratio" is SpO2 as a 0-1 fraction; "stage" marks the categorical sleep-stage value.
UNITS: tuple[str, ...] = ("bpm", "count", "%", "ratio", "stage")
BPM, COUNT, PERCENT, RATIO, STAGE = range(5)
STAGES: tuple[str, ...] = ("wake", "light", "deep", "rem")
WAKE, LIGHT, DEEP, REM = range(4)

# From this instant (by recorded_at) the vendor export adds device-status fields to every
# payload: the schema evolution an ingestion job must absorb without failing or dropping rows.
SCHEMA_V2_FROM = int((dt.date(2022, 7, 1) - EPOCH).days * DAY)
# From this instant one model's firmware reports SpO2 as a fraction instead of a percentage.
SPO2_RATIO_MODEL = "Withings ScanWatch"
SPO2_RATIO_FROM = int((dt.date(2021, 10, 1) - EPOCH).days * DAY)

WINDOW_BEFORE_DAYS = 14  # monitoring starts two weeks before diagnosis ...
WINDOW_AFTER_DAYS = 42  # ... and runs six weeks into treatment
STEP_BLOCKS = slice(3, 11)  # 2-h blocks 06:00-22:00 UTC: the waking hours steps are reported for
# Share of the waking day's steps per 2-h block (morning commute, midday, evening walk).
STEP_PROFILE = np.array([0.07, 0.14, 0.14, 0.15, 0.15, 0.14, 0.13, 0.08])
# Mean heart rate above resting per 2-h block of the day, before the step-driven part.
HR_PROFILE = np.array([1.0, 0.0, 0.5, 6.0, 9.0, 10.0, 10.0, 9.5, 9.0, 9.0, 7.5, 4.0])


@dataclass(frozen=True)
class DeviceModel:
    """A consumer wearable as the study issues it, with the quirks that differ between brands."""

    name: str
    available_from: dt.date  # the study issues only models on sale at enrolment
    weight: float  # relative share among available models
    id_style: str  # how the vendor spells a device serial
    user_style: str  # how the vendor spells its own user id
    steps_bias: float  # wrist-worn accelerometers over/under-count steps by brand
    hr_bias: float  # bpm offset of the optical sensor
    night_wear: float  # share of nights worn (watches with short battery charge overnight)
    sporadic_sync: float  # share of devices that sync only every few days
    battery_days: float  # a full charge lasts this long
    firmware: tuple[str, str]  # (older, newer) firmware builds seen in the study

    def draw_device_id(self, rng: np.random.Generator) -> str:
        if self.id_style == "uuid":
            return new_uuid(rng).upper()  # HealthKit source identifiers are upper-case UUIDs
        # Vendor serial: model prefix and 48 random bits (unique enough at 100k devices).
        return self.id_style + rng.integers(0, 256, 6, dtype=np.uint8).tobytes().hex().upper()

    def draw_user_id(self, rng: np.random.Generator) -> str:
        if self.user_style == "base36":  # Fitbit encoded user ids: six characters [0-9A-Z]
            return "".join(
                "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i] for i in rng.integers(0, 36, 6)
            )
        if self.user_style == "hex32":  # Garmin Health API userId
            return rng.integers(0, 256, 16, dtype=np.uint8).tobytes().hex()
        if self.user_style == "digits":  # Withings numeric userid, exported as a string
            return str(int(rng.integers(10_000_000, 99_999_999)))
        return new_uuid(rng)


DEVICE_MODELS: tuple[DeviceModel, ...] = (
    DeviceModel(
        name="Fitbit Charge 3",
        available_from=dt.date(2018, 10, 1),
        weight=0.35,
        id_style="FBC3-",
        user_style="base36",
        steps_bias=1.05,
        hr_bias=0.5,
        night_wear=0.80,
        sporadic_sync=0.15,
        battery_days=7.0,
        firmware=("32.33.1.30", "32.92.1.29"),
    ),
    DeviceModel(
        name="Garmin Vivosmart 4",
        available_from=dt.date(2018, 9, 1),
        weight=0.25,
        id_style="GVS4-",
        user_style="hex32",
        steps_bias=1.00,
        hr_bias=-0.5,
        night_wear=0.80,
        sporadic_sync=0.20,
        battery_days=7.0,
        firmware=("4.10", "5.20"),
    ),
    DeviceModel(
        name=SPO2_RATIO_MODEL,
        available_from=dt.date(2020, 10, 1),
        weight=0.20,
        id_style="WSCW-",
        user_style="digits",
        steps_bias=0.95,
        hr_bias=1.0,
        night_wear=0.90,
        sporadic_sync=0.30,
        battery_days=30.0,
        firmware=("1920", "2161"),
    ),
    DeviceModel(
        name="Apple Watch Series 6",
        available_from=dt.date(2020, 9, 18),
        weight=0.30,
        id_style="uuid",
        user_style="uuid",
        steps_bias=0.97,
        hr_bias=0.0,
        night_wear=0.50,
        sporadic_sync=0.05,
        battery_days=1.5,
        firmware=("watchOS 8.7", "watchOS 9.6"),
    ),
)


@dataclass(frozen=True)
class Device:
    """One issued device and its enrolment, as the study coordinator records it."""

    device_id: str
    model: DeviceModel
    user_id: str
    enrolled_on: dt.date
    withdrawn_on: dt.date | None


@dataclass
class WearerStream:
    """Every event one device emits (columnar, in recorded order) and when it reaches the cloud.

    ``resend_arrival`` is -1 except for the ~2% of events the vendor re-sends in a later export.
    """

    device: Device
    event_ids: np.ndarray  # (n, 16) uint8, RFC 4122 v4 bytes
    metric: np.ndarray  # int8 index into METRICS
    value: np.ndarray  # float64, in ``unit``; a STAGES index for sleep_stage
    unit: np.ndarray  # int8 index into UNITS
    start: np.ndarray  # int64 epoch seconds (UTC), also end / recorded / arrival
    end: np.ndarray
    recorded: np.ndarray
    arrival: np.ndarray
    resend_arrival: np.ndarray
    firmware: np.ndarray  # int8 index into device.model.firmware
    battery: np.ndarray  # int16 battery percent at recorded_at

    def __len__(self) -> int:
        return len(self.metric)


def _epoch_day(day: dt.date) -> int:
    return (day - EPOCH).days


def _draw_device(patient: PatientRecord, seed: int) -> tuple[Device, dict[str, float]]:
    rng = stream_rng(seed, patient.index, "wearables:device")
    first = patient.diagnosis_date - dt.timedelta(days=WINDOW_BEFORE_DAYS)
    late = int(rng.integers(1, 5)) if rng.random() < 0.15 else 0  # enrolled a few days late
    early = int(rng.integers(2, 8)) if rng.random() < 0.08 else 0  # withdrew before the end
    enrolled = first + dt.timedelta(days=late)
    last = patient.diagnosis_date + dt.timedelta(days=WINDOW_AFTER_DAYS - early)
    models = [m for m in DEVICE_MODELS if m.available_from <= enrolled]
    weights = np.array([m.weight for m in models])
    model = models[int(rng.choice(len(models), p=weights / weights.sum()))]
    device = Device(
        device_id=model.draw_device_id(rng),
        model=model,
        user_id=model.draw_user_id(rng),
        enrolled_on=enrolled,
        withdrawn_on=last + dt.timedelta(days=1) if early else None,
    )
    newer = rng.random() < 0.3  # issued already on the newer build
    update_day = float(rng.uniform(0, (last - enrolled).days)) if rng.random() < 0.4 else -1.0
    habits = {
        "last_day": float(_epoch_day(last)),
        "firmware_update": -1.0 if newer or update_day < 0 else _epoch_day(enrolled) + update_day,
        "newer": float(newer),
        "sporadic": float(rng.random() < model.sporadic_sync),
        "battery_phase": float(rng.random()),
    }
    return device, habits


def _sleep_night(
    rng: np.random.Generator, a: float, onset: int
) -> tuple[list[tuple[int, int, int]], int]:
    """Stage segments of one night in 30-s epochs (as sleep staging scores them), and wake time.

    Roughly 90-minute cycles, deep sleep front-loaded and REM growing towards morning; higher
    ``a`` means longer latency, less deep sleep, more awakenings and a shorter night.
    """
    epoch = 30
    segments: list[tuple[int, int, int]] = []
    t = onset
    latency = max(2, round(rng.normal(14 + 3 * a, 6) * 60 / epoch)) * epoch
    segments.append((WAKE, t, t + latency))
    t += latency
    target = float(np.clip(rng.normal(7.1 - 0.25 * a, 0.8), 4.0, 9.5)) * HOUR
    slept, cycle = 0.0, 0
    while slept < target:
        length = float(np.clip(rng.normal(100, 12), 70, 130)) * 60
        deep = float(np.clip(0.36 - 0.12 * cycle - 0.04 * a + rng.normal(0, 0.05), 0, 0.6))
        rem = float(np.clip(0.08 + 0.07 * cycle + rng.normal(0, 0.04), 0, 0.5))
        # Like the vendors' summary hypnograms, bouts under 15 min are folded into light sleep.
        bouts = [round(share * length / epoch) * epoch for share in (deep, rem)]
        bouts = [b if b >= 15 * 60 else 0 for b in bouts]
        light = max(round(0.1 * length / epoch) * epoch, round(length / epoch) * epoch - sum(bouts))
        for stage, seconds in ((LIGHT, light), (DEEP, bouts[0]), (REM, bouts[1])):
            if seconds:
                segments.append((stage, t, t + seconds))
                t += seconds
                slept += seconds
        if rng.random() < 0.10 + 0.05 * a:
            awake = round(float(np.clip(rng.normal(6, 4), 1, 25)) * 60 / epoch) * epoch
            segments.append((WAKE, t, t + awake))
            t += awake
        cycle += 1
    return segments, t


def simulate_wearer(patient: PatientRecord, seed: int) -> WearerStream:
    """Simulate the whole monitoring window of one enrolled patient's device."""
    device, habits = _draw_device(patient, seed)
    model = device.model
    rng = stream_rng(seed, patient.index, "wearables:signal")
    a = patient.latent.activity_decline
    day0 = _epoch_day(device.enrolled_on)
    n = int(habits["last_day"]) - day0 + 1
    d = np.arange(n)
    post = (day0 + d) >= _epoch_day(patient.diagnosis_date)
    weekend = (day0 + d + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    # Adherence differs between people far more than between days: a few wear it half the time.
    adherence = rng.beta(9.0, 1.6)
    worn_day = rng.random(n) < adherence
    worn_night = rng.random(n) < model.night_wear * min(1.0, adherence + 0.1)  # evening of day k

    # Daily steps: baseline, within-window decline and a post-diagnosis drop, all driven by a.
    # Below-average decline (a < 0) means holding steady or recovering a little, not a boom.
    baseline = 6000.0 * math.exp(rng.normal(0, 0.35)) * model.steps_bias
    log_mean = (
        math.log(baseline)
        - (0.012 if a > 0 else 0.005) * a * d
        - post * max(0.0, 0.15 + 0.10 * a)
        + weekend * math.log(0.85)
    )
    totals = np.exp(log_mean + rng.normal(0, 0.25, n))
    split = rng.dirichlet(STEP_PROFILE * 25, size=n)
    block_steps = np.rint(totals[:, None] * split)

    rest = 62.0 + 6.0 * rng.normal() + 3.0 * a + model.hr_bias
    rest_day = rest + post * max(0.0, a) + rng.normal(0, 1.0, n)
    hr = rest_day[:, None] + HR_PROFILE[None, :] + rng.normal(0, 2.5, (n, 12))
    hr[:, STEP_BLOCKS] += 0.006 * block_steps
    hr = np.round(np.clip(hr, 38.0, 185.0), 1)
    worn = (rng.random((n, 12)) >= 0.06) & worn_day[:, None]  # off-wrist while charging
    worn[:, :3] &= np.concatenate(([False], worn_night[:-1]))[:, None]  # 00-06 h: last night

    block_start = (day0 + d)[:, None] * DAY + np.arange(12)[None, :] * 2 * HOUR
    hr_start = block_start[worn]
    steps_start = block_start[:, STEP_BLOCKS][worn[:, STEP_BLOCKS]]
    aggregate_start = np.concatenate([hr_start, steps_start])
    aggregate_end = aggregate_start + 2 * HOUR
    metric = [np.full(len(hr_start), HEART_RATE), np.full(len(steps_start), STEPS)]
    value = [hr[worn], block_steps[worn[:, STEP_BLOCKS]]]
    unit = [np.full(len(hr_start), BPM), np.full(len(steps_start), COUNT)]
    start, end = [aggregate_start], [aggregate_end]
    # The device closes a 2-h aggregate a few seconds to minutes after the block ends.
    recorded = [aggregate_end + rng.integers(5, 180, len(aggregate_start))]

    spo2_shift = rng.normal(0, 0.6)
    for k in range(n - 1):  # nights whose morning is still inside the window
        if not worn_night[k]:
            continue
        onset = int((day0 + k) * DAY + 22 * HOUR + rng.normal(55, 35) * 60)
        segments, wake = _sleep_night(rng, a, onset)
        done = wake + int(rng.integers(60, 900))  # staged once the wearer is up and moving
        seg = np.array(segments, dtype=np.int64)
        metric.append(np.full(len(seg), SLEEP_STAGE))
        value.append(seg[:, 0].astype(float))
        unit.append(np.full(len(seg), STAGE))
        start.append(seg[:, 1])
        end.append(seg[:, 2])
        recorded.append(np.full(len(seg), done))
        # Nightly SpO2: mean saturation over the sleep period (from first sleep epoch to wake).
        spo2 = round(float(np.clip(96.0 - 0.3 * a + spo2_shift + rng.normal(0, 0.8), 85, 100)), 1)
        ratio = model.name == SPO2_RATIO_MODEL and done >= SPO2_RATIO_FROM
        metric.append(np.array([SPO2]))
        value.append(np.array([round(spo2 / 100, 3) if ratio else spo2]))
        unit.append(np.array([RATIO if ratio else PERCENT]))
        start.append(seg[1:2, 1])
        end.append(np.array([wake]))
        recorded.append(np.array([done]))

    cols = {
        "metric": np.concatenate(metric).astype(np.int8),
        "value": np.concatenate(value).astype(np.float64),
        "unit": np.concatenate(unit).astype(np.int8),
        "start": np.concatenate(start).astype(np.int64),
        "end": np.concatenate(end).astype(np.int64),
        "recorded": np.concatenate(recorded).astype(np.int64),
    }
    order = np.lexsort((cols["metric"], cols["start"], cols["recorded"]))
    cols = {k: v[order] for k, v in cols.items()}
    return _deliver(patient, seed, device, habits, cols)


def _deliver(
    patient: PatientRecord,
    seed: int,
    device: Device,
    habits: dict[str, float],
    cols: dict[str, np.ndarray],
) -> WearerStream:
    """Give each event an id, device status and the instant it reaches the vendor cloud.

    A device uploads everything recorded since its last sync; most sync a few times a day via the
    phone, a few only every few days. A failed upload is retried at the following sync (so one
    device's events can arrive out of order), and the cloud adds a log-normal processing delay.
    """
    rng = stream_rng(seed, patient.index, "wearables:delivery")
    recorded = cols["recorded"]
    n = len(recorded)
    if habits["sporadic"]:
        median, sigma = 2.5 * DAY, 0.35
    else:
        median, sigma = 6.0 * HOUR, 0.8
    origin = _epoch_day(device.enrolled_on) * DAY
    horizon = int(recorded.max()) if n else origin
    syncs = np.empty(0, dtype=np.int64)
    while len(syncs) < 5 or syncs[-5] <= horizon:  # syncs past the last event for retries
        gaps = rng.lognormal(math.log(median), sigma, 64).astype(np.int64) + 60
        base = syncs[-1] if len(syncs) else origin
        syncs = np.concatenate([syncs, base + np.cumsum(gaps)])
    slot = np.searchsorted(syncs, recorded, side="left") + (rng.random(n) < 0.03)
    # The cloud processes each upload as a batch (log-normal queueing delay), event by event.
    batch_delay = rng.lognormal(math.log(240), 1.2, len(syncs)).astype(np.int64)
    arrival = syncs[slot] + batch_delay[slot] + rng.integers(0, 30, n)
    # An upload whose acknowledgement was lost is sent again with one of the next few syncs.
    resend = rng.random(n) < 0.02
    again = slot + rng.integers(1, 4, n)
    later = np.maximum(syncs[again] + batch_delay[again] + rng.integers(0, 30, n), arrival + 60)
    resend_arrival = np.where(resend, later, -1)

    raw = stream_rng(seed, patient.index, "wearables:ids").integers(0, 256, (n, 16), np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # UUID version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant

    days = recorded / DAY
    update = habits["firmware_update"]
    newer = bool(habits["newer"]) | ((update >= 0) & (days >= update))
    firmware = np.broadcast_to(newer, (n,)).astype(np.int8)
    life = device.model.battery_days
    drained = np.mod(days / life + habits["battery_phase"], 1.0)
    battery = np.rint(100 - 85 * drained).astype(np.int16)  # recharged at ~15%
    return WearerStream(
        device=device,
        event_ids=raw,
        arrival=arrival,
        resend_arrival=resend_arrival,
        firmware=firmware,
        battery=battery,
        **cols,
    )
