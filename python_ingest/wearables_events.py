"""Parsed device-cloud events to the ``wearables_events`` table, validated as they are added.

Events arrive in batches (``EventBatches.add``: a few thousand lines at a time) and the parsed
dicts are dropped once a batch is converted, so a big file never holds every dict at once (which
costs more in allocation than the JSON parsing itself). Small files are the common case (an
hourly drop holds a few dozen events), so the count of Arrow calls per file matters as much as
the per-event cost: the checks that need no parsing run on the dicts first (a failing event never
reaches Arrow), the string fields of a batch are one Arrow conversion (a struct array built in
C++), numbers go through Python (where a boolean is not a number), and the three time fields of
the whole file are parsed in one call. Several files (a pool task's hourly drops) may share one
``EventBatches``, each event tagged with its file (``owner``): the table is then built once for
the group and sliced per file, which is what the per-file Arrow calls cost is divided by.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from hashlib import sha256

import numpy as np
import pyarrow as pa

from python_ingest.model import READER_LINEAGE, FileOutcome, Quarantined
from python_ingest.wearables_columns import (
    EVENT_SCHEMA,
    TIME_FIELDS,
    UTC_TS,
    extra_column_names,
    finish,
    json_text,
    number_from_text,
    numeric_array,
    parse_iso_times,
    string_array,
)

EVENTS = "wearables_events"
# Metrics whose value is a count or a physiological level, never below zero.
NON_NEGATIVE = frozenset(("heart_rate", "steps", "spo2"))
_STRINGS = ("event_id", "device_id", "device_model", "user_id", "metric", "unit")
_FIRMWARE, _BATTERY = "firmware_version", "battery_pct"
PAYLOAD_FIELDS = frozenset((*_STRINGS, "value", *TIME_FIELDS, _FIRMWARE, _BATTERY))
# The payload fields converted in one Arrow call: strings (times too, parsed afterwards).
_STRUCT = pa.struct([(name, pa.string()) for name in (*_STRINGS, _FIRMWARE, *TIME_FIELDS)])
# The columns of a file's table when it has no fields outside the known schema.
_PLAIN = [*EVENT_SCHEMA.names, *READER_LINEAGE.names]
QUEUED_EVENTS = 4096  # events converted at once: few Arrow calls, the dicts dropped soon after


class EventBatches:
    """Accumulates the events of one file (or of a group, by ``owner``), then the outcomes."""

    def __init__(self) -> None:
        self.known: list[pa.Array] = []  # struct arrays of the string fields, per batch
        self.value_text: list[str | None] = []
        self.numbers: list[object] = []  # value_num then, at the end, battery_pct
        self.batteries: list[object] = []
        self.extras: list[tuple[int, int, dict[str, list[str | None]]]] = []
        self.raws: list[bytes] = []
        self.locators: list[str] = []
        self.hashes: list[str] = []
        self.owners: list[int] = []  # the file (0, 1, ... in the group) of each added row
        self.bad: list[tuple[int, Quarantined]] = []  # (file, record) set aside
        self.read: Counter[int] = Counter()  # records read, per file
        # Files with fields outside the known schema: their extra columns are named per file.
        self.extra_owners: set[int] = set()
        # Events queued for ``add`` (``queue``): small files are converted a few thousand
        # events at a time, whichever files they came from.
        self.queued: tuple[list[dict], list[bytes], list[str], list[str], list[int]]
        self.queued = ([], [], [], [], [])

    def queue(
        self, events: list[dict], raws: list[bytes], locators: list[str], owner: int = 0
    ) -> None:
        """``add`` later, in a batch of about ``QUEUED_EVENTS`` with other files' events."""
        held_events, held_raws, held_locators, held_hashes, held_owners = self.queued
        held_events += events
        held_raws += raws
        held_locators += locators
        held_hashes += [sha256(raw).hexdigest() for raw in raws]
        held_owners += [owner] * len(events)
        if len(self.queued[0]) >= QUEUED_EVENTS:
            self.flush()

    def flush(self) -> None:
        """``add`` the queued events."""
        if self.queued[0]:
            queued, self.queued = self.queued, ([], [], [], [], [])
            self.add(*queued)

    def reject(self, quarantined: Quarantined, owner: int = 0) -> None:
        """A record of file ``owner`` that never became an event (not JSON, not an object)."""
        self.read[owner] += 1
        self.bad.append((owner, quarantined))

    def add(
        self,
        events: list[dict],
        raws: Sequence[bytes],
        locators: list[str],
        hashes: list[str],
        owners: list[int] | None = None,
    ) -> None:
        """Take one batch: quarantine the events that cannot land, convert the others."""
        owners = owners if owners is not None else [0] * len(events)
        self.read.update(owners)
        found = {i: p for i, e in enumerate(events) if (p := _problems(e))}
        if found:
            for i, problems in found.items():
                reason = _reason(problems, events[i])
                self.bad.append((owners[i], Quarantined(locators[i], reason, raws[i])))
            keep = [i for i in range(len(events)) if i not in found]
            events = [events[i] for i in keep]
            raws, locators = [raws[i] for i in keep], [locators[i] for i in keep]
            hashes, owners = [hashes[i] for i in keep], [owners[i] for i in keep]
        if not events:
            return
        try:
            self.known.append(pa.array(events, _STRUCT))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # a field of another JSON type: its text
            children = [string_array([e.get(f.name) for e in events]) for f in _STRUCT]
            self.known.append(pa.StructArray.from_arrays(children, fields=list(_STRUCT)))
        for value in [e.get("value") for e in events]:
            kind = type(value)
            if kind is str:
                self.value_text.append(value)
                self.numbers.append(number_from_text(value))
            else:  # numbers as their JSON text; null, booleans, lists, objects: text only
                self.value_text.append(json_text(value))
                self.numbers.append(float(value) if kind is int or kind is float else None)
        self.batteries += [e.get(_BATTERY) for e in events]
        fields = set().union(*events) - PAYLOAD_FIELDS
        if fields:
            values = {f: [json_text(e.get(f)) for e in events] for f in fields}
            self.extras.append((len(self.raws), len(events), values))
            self.extra_owners.update(
                owners[i] for i, e in enumerate(events) if e.keys() - PAYLOAD_FIELDS
            )
        self.raws += raws
        self.locators += locators
        self.hashes += hashes
        self.owners += owners

    def outcome(self, arrival: dt.datetime | None, source_format: str) -> FileOutcome:
        """The file's table (rows whose time or battery level does not parse are quarantined)."""
        return self.outcomes([arrival], source_format)[0]

    def outcomes(
        self, arrivals: Sequence[dt.datetime | None], source_format: str
    ) -> list[FileOutcome]:
        """One outcome per file (``arrivals[k]`` is file k's), each as if built on its own.

        Files were added in order, so a file's rows are one slice of the group's table. A file
        in ``extra_owners`` gets the group's extra columns, not its own: the caller rebuilds it.
        """
        self.flush()
        n, files = len(self.raws), len(arrivals)
        owners = np.asarray(self.owners, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=files))])
        table, late = self._table(arrivals, owners, source_format) if n else (None, {})
        bad: list[list[Quarantined]] = [[] for _ in range(files)]
        for owner, record in self.bad:
            bad[owner].append(record)
        keep = np.ones(n, dtype=bool)
        if table is not None and late:
            event_ids = table.column("event_id")
            for i, problems in sorted(late.items()):
                reason = "; ".join(problems) + f" (event_id {event_ids[i].as_py()})"
                bad[owners[i]].append(Quarantined(self.locators[i], reason, self.raws[i]))
                keep[i] = False
        out = []
        for k in range(files):
            start, stop = int(bounds[k]), int(bounds[k + 1])
            part = table.slice(start, stop - start) if table is not None else None
            if part is not None and not keep[start:stop].all():
                part = part.filter(pa.array(keep[start:stop]))
            if part is not None and k not in self.extra_owners and part.num_columns > len(_PLAIN):
                part = part.select(_PLAIN)  # another file's extra columns: not this file's
            bad[k].sort(key=lambda q: _locator_order(q.locator))
            landed = part.num_rows if part is not None else 0
            out.append(
                FileOutcome(
                    tables={EVENTS: part} if landed else {},
                    quarantined=bad[k],
                    records_read=self.read[k],
                    records_landed=landed,
                )
            )
        return out

    def _table(
        self, arrivals: Sequence[dt.datetime | None], owners: np.ndarray, source_format: str
    ) -> tuple[pa.Table, dict[int, list[str]]]:
        """The table of every added event, and row -> problems for those that may not land."""
        n = len(self.raws)
        known = self.known[0] if len(self.known) == 1 else pa.concat_arrays(self.known)
        columns = dict(zip(_STRUCT.names, known.flatten(), strict=True))
        columns["value"] = pa.array(self.value_text, pa.string())
        doubles, _, not_numbers = numeric_array(self.numbers + self.batteries)
        columns["value_num"], columns[_BATTERY] = doubles.slice(0, n), doubles.slice(n, n)
        times = parse_iso_times(pa.concat_arrays([columns.pop(name) for name in TIME_FIELDS]))
        for k, name in enumerate(TIME_FIELDS):
            columns[name] = times.utc.slice(k * n, n)
            columns[f"{name}_local"] = times.local.slice(k * n, n)
            columns[f"{name}_raw"] = times.raw.slice(k * n, n)
        columns["arrival_time"] = (
            pa.repeat(pa.scalar(arrivals[0], UTC_TS), n)
            if len(arrivals) == 1
            else pa.array(arrivals, UTC_TS).take(pa.array(owners))
        )
        columns["source_format"] = pa.repeat(pa.scalar(source_format, pa.string()), n)
        names = extra_column_names({f for *_, v in self.extras for f in v}, EVENT_SCHEMA.names)
        for field, column in names.items():
            values: list[str | None] = [None] * n
            for start, count, batch in self.extras:
                if field in batch:
                    values[start : start + count] = batch[field]
            columns[column] = pa.array(values, pa.string())
        lineage = pa.array(self.locators + self.hashes, pa.string())
        columns["_source_locator"], columns["_record_hash"] = lineage.slice(0, n), lineage.slice(n)

        late: dict[int, list[str]] = {}
        for i in np.flatnonzero(times.bad):
            name, row = TIME_FIELDS[i // n], int(i % n)
            shown = times.raw[int(i)].as_py()
            late.setdefault(row, []).append(f"{name} {shown!r} is not an ISO 8601 date-time")
        for i in not_numbers:  # value_num's inputs are numbers or null already: batteries only
            shown = self.batteries[i - n]
            late.setdefault(i - n, []).append(f"battery_pct {shown!r} is not a number")
        return finish(columns, EVENT_SCHEMA, list(names.values())), late


def _problems(event: dict) -> list[str]:
    """What makes an event invalid before any parsing: no id, an impossible measurement."""
    problems = []
    event_id = event.get("event_id")
    if event_id is None or (type(event_id) is str and not event_id.strip()):
        problems.append("event_id is missing")
    metric = event.get("metric")
    if metric in NON_NEGATIVE:
        value = event.get("value")
        kind = type(value)
        number = (
            float(value)
            if kind is int or kind is float
            else number_from_text(value)
            if kind is str
            else None
        )
        if value is None:
            problems.append(f"{metric} event has no value")
        elif number is None:
            problems.append(f"{metric} value {json_text(value)!r} is not a number")
        elif number < 0:
            problems.append(f"negative {metric} value {json_text(value)}")
    return problems


def _reason(problems: list[str], event: dict) -> str:
    event_id = json_text(event.get("event_id"))
    suffix = f" (event_id {event_id})" if event_id and event_id.strip() else ""
    return "; ".join(problems) + suffix


def _locator_order(locator: str) -> tuple[int, str]:
    """Quarantine rows in file order ("line 9" before "line 10")."""
    _, _, rest = locator.partition(" ")
    number = rest.split(" ", 1)[0]
    return (int(number), locator) if number.isdigit() else (0, locator)
