"""The bronze schemas of the wearables modality, and the column builders its readers share.

Bronze keeps what the device cloud sent, typed where the type is part of the contract:

* ``value`` is always the value's text (a sleep stage is a word, a heart rate a number: one
  column cannot be both), and ``value_num`` is the same value as a double when it is numeric;
* every time comes three ways: ``<name>`` is the instant in UTC (only when the sender gave an
  offset or ``Z``), ``<name>_local`` the wall-clock time as written (in the sender's own offset;
  the only parsed form when the sender gave none, as Fitabase CSVs do: a timestamp without time
  zone, Spark's ``TIMESTAMP_NTZ``), and ``<name>_raw`` the string exactly as sent;
* payload fields the reader does not know land as string columns named after the field (schema
  evolution: Delta adds the column, older rows read null). They are strings on purpose: per-file
  type inference would make one file's ``double`` meet another file's ``string`` for the same
  field, which Arrow cannot concatenate and Delta cannot merge, and that would stop a whole
  batch. Silver casts them once the field is understood (or it joins ``EVENT_SCHEMA`` here).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.model import LINEAGE_COLUMNS, READER_LINEAGE

UTC_TS = pa.timestamp("us", tz="UTC")
LOCAL_TS = pa.timestamp("us")  # wall-clock time without a zone (Spark/Delta TIMESTAMP_NTZ)
TIME_FIELDS = ("start_time", "end_time", "recorded_at")

EVENT_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("device_model", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("metric", pa.string()),
        pa.field("value", pa.string()),
        pa.field("value_num", pa.float64()),
        pa.field("unit", pa.string()),  # exactly as sent: "%" and "ratio" are both SpO2
        *(pa.field(name, UTC_TS) for name in TIME_FIELDS),
        *(pa.field(f"{name}_local", LOCAL_TS) for name in TIME_FIELDS),
        *(pa.field(f"{name}_raw", pa.string()) for name in TIME_FIELDS),
        # Fields that appear mid-stream (firmware updates from 2022-07 on): known, so typed.
        pa.field("firmware_version", pa.string()),
        pa.field("battery_pct", pa.float64()),
        # When the export drop was closed, from its file name (null if the name has no stamp).
        pa.field("arrival_time", UTC_TS),
        pa.field("source_format", pa.string(), nullable=False),  # jsonl | json | fitabase_csv
    ]
)

ENROLLMENT_SCHEMA = pa.schema(
    [
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("device_model", pa.string()),
        pa.field("patient_mrn", pa.string()),
        pa.field("enrolled_on", pa.date32()),
        pa.field("withdrawn_on", pa.date32()),
    ]
)

# Delta (without column mapping) refuses these characters in column names.
_BAD_NAME = re.compile(r"[ ,;{}()\n\t=]")


def extra_column_names(fields: Iterable[str], reserved: Iterable[str]) -> dict[str, str]:
    """field -> bronze column name for payload fields outside the known schema.

    Spark resolves column names case-insensitively, so a field ``Value`` may not become a
    second ``value`` column: clashes (with the schema, the lineage or each other) are prefixed
    with ``payload_``, and characters Delta refuses become ``_``.
    """
    taken = {name.lower() for name in reserved} | {name.lower() for name in LINEAGE_COLUMNS}
    names: dict[str, str] = {}
    for field in sorted(fields):
        name = _BAD_NAME.sub("_", field) or "_"
        while name.lower() in taken:
            name = f"payload_{name}"
        taken.add(name.lower())
        names[field] = name
    return names


def json_text(value: object) -> str | None:
    """A JSON value as text: strings as they are, anything else as its JSON token."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")


def json_kind(value: object) -> str:
    """How a reason names a JSON value's type (Python's names are not JSON's)."""
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def string_array(values: Sequence[object]) -> pa.Array:
    """A string column, fast when every value already is a string (the usual case)."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([json_text(v) for v in values], pa.string())


def numeric_array(values: Sequence[object]) -> tuple[pa.Array, list[float | None], list[int]]:
    """(doubles, the same as a list, indices of values present but not numeric).

    JSON numbers count, and so do strings holding a finite decimal number (``"72"``); booleans
    do not, although Python treats them as integers.
    """
    out: list[float | None] = []
    bad: list[int] = []
    for i, v in enumerate(values):
        kind = type(v)
        if kind is float or kind is int:
            out.append(float(v))
        elif v is None:
            out.append(None)
        else:
            number = number_from_text(v) if kind is str else None
            out.append(number)
            if number is None:
                bad.append(i)
    return pa.array(out, pa.float64()), out, bad


def number_from_text(text: str) -> float | None:
    if not text or text[0] not in "0123456789+-." or "_" in text:  # float() takes "1_0"
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


class ParsedTimes:
    """One time field parsed three ways; ``bad`` marks present values that are not times."""

    def __init__(self, raw: pa.Array, utc: pa.Array, local: pa.Array, bad: np.ndarray) -> None:
        self.raw, self.utc, self.local, self.bad = raw, utc, local, bad


_ISO_Z = "%Y-%m-%dT%H:%M:%SZ"  # what device clouds send almost always: parsed in Arrow


def parse_iso_times(raw: pa.Array) -> ParsedTimes:
    """ISO 8601 strings to (UTC instant, local wall clock), vectorized for the ``...Z`` form.

    Anything else Python's ``fromisoformat`` understands (fractions, ``+02:00`` offsets, no
    offset at all) goes through a per-value path; a value without an offset has a wall clock but
    no instant, so ``utc`` stays null for it. A bare number (an epoch in seconds or in
    milliseconds? ``20190106``?) is not a time. Callers pass several time fields at once (one
    Arrow call instead of three) and slice.
    """
    fast = pc.strptime(raw, format=_ISO_Z, unit="us", error_is_null=True)
    bad = np.zeros(len(raw), dtype=bool)
    if fast.null_count == raw.null_count:  # every present value had the common form
        return ParsedTimes(raw, fast.view(UTC_TS), fast, bad)  # same microseconds, now UTC
    local_us = pc.fill_null(fast.cast(pa.int64()), 0).to_numpy(False).copy()
    local_ok = pc.is_valid(fast).to_numpy(False).copy()
    utc_us, utc_ok = local_us.copy(), local_ok.copy()
    for i in np.flatnonzero(pc.and_(pc.is_valid(raw), pc.is_null(fast)).to_numpy(False)):
        when = _fromisoformat(raw[int(i)].as_py())
        if when is None:
            bad[i] = True
            continue
        local_us[i], local_ok[i] = _epoch_us(when.replace(tzinfo=None)), True
        if when.tzinfo is not None:
            utc_us[i] = _epoch_us(when.astimezone(dt.UTC).replace(tzinfo=None))
            utc_ok[i] = True
    return ParsedTimes(
        raw,
        pa.array(utc_us, mask=~utc_ok).cast(UTC_TS),
        pa.array(local_us, mask=~local_ok).cast(LOCAL_TS),
        bad,
    )


def _fromisoformat(text: str) -> dt.datetime | None:
    if text.strip().isdigit():
        return None
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None


_EPOCH = dt.datetime(1970, 1, 1)


def _epoch_us(naive: dt.datetime) -> int:
    return (naive - _EPOCH) // dt.timedelta(microseconds=1)


def parse_local_times(raw: pa.Array, formats: Sequence[str]) -> tuple[pa.Array, np.ndarray]:
    """Wall-clock strings in one of ``formats`` (tried in order, per value) to NTZ timestamps."""
    parsed = pa.nulls(len(raw), LOCAL_TS)
    for fmt in formats:
        attempt = pc.strptime(raw, format=fmt, unit="us", error_is_null=True)
        parsed = pc.coalesce(parsed, attempt)
    bad = pc.and_(pc.is_valid(raw), pc.is_null(parsed)).to_numpy(False)
    return parsed, np.asarray(bad, dtype=bool)


def finish(columns: dict[str, pa.Array], schema: pa.Schema, extras: Sequence[str]) -> pa.Table:
    """The file's table: known columns in schema order, extras as strings, then lineage."""
    n = len(next(iter(columns.values()))) if columns else 0
    # Keyed by identity: the schemas are module constants, and hashing a pa.Schema costs more
    # than building a small table.
    key = (id(schema), tuple(extras))
    full = _SCHEMAS.get(key)
    if full is None:
        if len(_SCHEMAS) > 256:  # files with ever-new unknown fields: stay bounded
            _SCHEMAS.clear()
        full = _SCHEMAS[key] = _full_schema(schema, key[1])
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in full]
    return pa.Table.from_arrays(arrays, schema=full)


_SCHEMAS: dict[tuple[int, tuple[str, ...]], pa.Schema] = {}


def _full_schema(schema: pa.Schema, extras: tuple[str, ...]) -> pa.Schema:
    fields = [*schema, *(pa.field(name, pa.string()) for name in extras), *READER_LINEAGE]
    return pa.schema(fields)
