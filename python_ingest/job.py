"""Run one modality's reader over a folder and land the result in bronze, exactly once.

Per chunk of files: parse (both cores), then commit in a fixed order: ``started`` log rows,
data tables, quarantine, ``landed`` log rows. See ``python_ingest.ledger`` for why that order
makes a killed run harmless.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from mmlake.delta import sql_string
from mmlake.delta import table_schema as _table_schema
from python_ingest.ipc_spool import spool_folder
from python_ingest.job_schema import set_aside
from python_ingest.job_schema import type_conflict as _type_conflict
from python_ingest.job_split import merged_outcome, read_range, split_ranges
from python_ingest.job_tables import land, with_lineage_all
from python_ingest.ledger import FileState, Ledger, SourceFile, file_digest
from python_ingest.model import (
    SOURCE_FILE,
    FileOutcome,
    OutcomeGroup,
    Quarantined,
    Reader,
)
from python_ingest.pool_worker import init_worker
from python_ingest.source_bytes import holding

FIRST_CHUNK_FILES = 1000
FIRST_CHUNK_BYTES = 16 * 1024 * 1024
MIN_CHUNK_BYTES = 4 * 1024 * 1024
CHUNK_FILES = 16000
CHUNK_BYTES = 512 * 1024 * 1024
# Files go to the worker pool in groups, so many tiny files (hourly wearables, notes) cost one
# task, not one each; a group closes at this many files or bytes.
GROUP_FILES = 256
GROUP_BYTES = 4 * 1024 * 1024
# Crash drill: set to "started" or "data" and the job stops dead after that commit step, so a
# test (or an operator rehearsing recovery) can kill it at a precise point and re-run.
PAUSE_ENV = "MMLAKE_INGEST_PAUSE_AFTER"


def _pause_point(step: str) -> None:
    if os.environ.get(PAUSE_ENV) == step:
        print(f"ingest paused after {step}", file=sys.stderr, flush=True)
        time.sleep(3600)


@dataclass
class ModalitySummary:
    modality: str
    files_seen: int = 0
    files_skipped: int = 0
    files_landed: int = 0
    records_read: int = 0
    records_landed: int = 0
    records_quarantined: int = 0


def _chunks(files: Sequence[SourceFile]) -> Iterator[list[SourceFile]]:
    """The files in commit chunks that grow, then shrink again towards the end of the run.

    Parsing (the pool) and committing (this process) overlap one chunk apart, so the first
    chunk's parse and the last chunk's commit each run alone. Both ends are kept small: the
    first chunk is at most FIRST_CHUNK_FILES, and FIRST_CHUNK_BYTES or an eighth of the run's
    bytes, each next one doubles up to CHUNK_FILES / CHUNK_BYTES (a run of many small files
    pays the per-commit costs a few times, not once per thousand files), and none takes more
    than half of what is left, so the run ends on a chunk about the size of the first. Every
    commit has fixed costs (ledger rows, one Delta commit per table), so no chunk is cut below
    the first's size (nor below MIN_CHUNK_BYTES) or leaves a remainder smaller than it: a
    small run is a single chunk.
    """
    left_files, left_bytes = len(files), sum(f.size_bytes for f in files)
    least = FIRST_CHUNK_FILES
    least_bytes = min(FIRST_CHUNK_BYTES, max(MIN_CHUNK_BYTES, left_bytes // 8))

    def cap(most: int, least: int, left: int) -> int:
        size = max(least, min(most, -(-left // 2)))
        return left if left - size < least else size  # no runt left for a last commit

    most, most_bytes = least, least_bytes
    limit, limit_bytes = cap(most, least, left_files), cap(most_bytes, least_bytes, left_bytes)
    chunk: list[SourceFile] = []
    size = 0
    for f in files:
        if chunk and (len(chunk) >= limit or size + f.size_bytes > limit_bytes):
            yield chunk
            left_files, left_bytes = left_files - len(chunk), left_bytes - size
            most, most_bytes = min(2 * most, CHUNK_FILES), min(2 * most_bytes, CHUNK_BYTES)
            limit = cap(most, least, left_files)
            limit_bytes = cap(most_bytes, least_bytes, left_bytes)
            chunk, size = [], 0
        chunk.append(f)
        size += f.size_bytes
    if chunk:
        yield chunk


def _groups(files: Sequence[SourceFile], workers: int) -> list[list[SourceFile]]:
    """The chunk's files in order, cut into pool tasks of at most GROUP_FILES / GROUP_BYTES.

    A chunk of few files still spreads over the workers (about four tasks per worker).
    """
    most = max(1, min(GROUP_FILES, len(files) // (4 * workers)))
    groups: list[list[SourceFile]] = []
    group: list[SourceFile] = []
    size = 0
    for f in files:
        if group and (len(group) >= most or size + f.size_bytes > GROUP_BYTES):
            groups.append(group)
            group, size = [], 0
        group.append(f)
        size += f.size_bytes
    if group:
        groups.append(group)
    return groups


def _load_before_fork() -> None:
    """Load here, once, what every pool worker would otherwise load for itself.

    pyarrow imports pandas (when installed) the first time it converts Python values, about
    0.25 s of CPU. This process pays it at its first commit anyway; paid before the pool
    forks, the workers inherit the loaded modules instead of each paying it again on every run.
    """
    pa.array([0])


def _safe_read(reader: Reader, path: Path) -> FileOutcome:
    """A reader bug or an unreadable file quarantines the file; it never stops the batch."""
    try:
        outcome = reader.read(path)
        outcome.check_accounting(path)
        return outcome
    except Exception as exc:  # the whole file is unusable: one quarantined record
        reason = f"the file could not be read as {reader.modality}: {type(exc).__name__}: {exc}"
        return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)


def _read_files(reader: Reader, files: list[SourceFile]) -> list[tuple[str, FileOutcome]]:
    """One pool task: (sha256, ``_safe_read``) of each file in turn (a bad file quarantines alone).

    A file not hashed yet (new to the ledger) is hashed here, right before it is parsed, so the
    hashing runs on every core instead of in the parent, and the reader parses the very bytes
    that were hashed, without reading the file again (``source_bytes``).
    """
    with holding():
        digests = [f.sha256 or file_digest(reader, f.path, f.size_bytes, hold=True) for f in files]
        return list(zip(digests, _safe_read_many(reader, [f.path for f in files]), strict=True))


def _read_group(reader: Reader, files: list[SourceFile]) -> OutcomeGroup:
    """``_read_files`` as a pool task's result, which crosses to the parent in one piece."""
    return OutcomeGroup(_read_files(reader, files))


def _safe_read_many(reader: Reader, paths: list[Path]) -> list[FileOutcome]:
    """``_safe_read`` of each path; a reader with ``read_many`` builds them in one go.

    If the group read fails or an outcome does not add up, each file is read again on its
    own, so a bad file still quarantines alone and the outcomes are ``read``'s either way.
    """
    read_many = getattr(reader, "read_many", None)
    if read_many is not None and len(paths) > 1:
        try:
            outcomes = read_many(paths)
            if len(outcomes) == len(paths):
                for path, outcome in zip(paths, outcomes, strict=True):
                    outcome.check_accounting(path)
                return outcomes
        except Exception:  # the per-file reads below say what went wrong, file by file
            pass
    return [_safe_read(reader, path) for path in paths]


def split_pending(
    reader: Reader, source: Path, state: dict[str, FileState], *, hash_new: bool = True
) -> tuple[list[SourceFile], int, set[str]]:
    """(files to land, files skipped as landed with the same sha256, keys seen before).

    Shared by both engines, so "already landed" means the same thing everywhere. Only a file
    the ledger has seen needs its hash to decide; with ``hash_new=False`` the others are left
    unhashed (``sha256`` None) for the worker that parses them (``_read_files``).
    """
    todo, skipped = [], 0
    # Resolve the root once; resolving each of tens of thousands of files costs seconds.
    for path in reader.discover(source.resolve()):
        absolute = path if path.is_absolute() else path.absolute()
        size = absolute.stat().st_size
        seen = state.get(str(absolute))
        if seen is None and not hash_new:
            todo.append(SourceFile(absolute, size, None))
            continue
        f = SourceFile(absolute, size, file_digest(reader, absolute, size))
        if seen is not None and seen.status == "landed" and seen.sha256 == f.sha256:
            skipped += 1
        else:
            todo.append(f)
    return todo, skipped, set(state)


class IngestJob:
    """Lands one modality from ``source`` into ``<lakehouse>/bronze``."""

    def __init__(self, reader: Reader, lakehouse: Path, workers: int | None = None) -> None:
        self.reader = reader
        self.bronze = lakehouse / "bronze"
        self.ledger = Ledger(self.bronze)
        self.workers = workers or min(2, os.cpu_count() or 1)

    def pending(self, source: Path) -> tuple[list[SourceFile], int, set[str]]:
        """(files to land, files skipped as already landed, keys seen before)."""
        state = self.ledger.state(self.reader.modality)
        if (use_landed := getattr(self.reader, "use_landed", None)) is not None:
            use_landed(self.ledger.landed_values)
        return split_pending(self.reader, source, state, hash_new=False)

    def run(
        self,
        source: Path,
        on_file: Callable[[int], None] | None = None,
        pending: tuple[list[SourceFile], int, set[str]] | None = None,
    ) -> ModalitySummary:
        """Land what is pending under ``source`` (``pending`` if the caller already listed it)."""
        summary = ModalitySummary(self.reader.modality)
        todo, summary.files_skipped, seen = pending or self.pending(source)
        summary.files_seen = len(todo) + summary.files_skipped
        batch_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
        if self.workers < 2 or len(todo) < 2:
            self._land_all(None, todo, batch_id, seen, summary, on_file)
            return summary
        with spool_folder() as folder:
            _load_before_fork()
            pool = ProcessPoolExecutor(
                self.workers, initializer=init_worker, initargs=(folder, os.getpid())
            )
            self._land_all(pool, todo, batch_id, seen, summary, on_file)
        return summary

    def _land_all(
        self,
        pool: ProcessPoolExecutor | None,
        todo: list[SourceFile],
        batch_id: str,
        seen: set[str],
        summary: ModalitySummary,
        on_file: Callable[[int], None] | None,
    ) -> None:
        try:
            # The pool parses the next chunk while this process commits the current one.
            chunks = _chunks(todo)
            chunk = next(chunks, None)
            parsing = self._parse(pool, chunk) if chunk is not None else None
            while chunk is not None and parsing is not None:
                hashed, outcomes = zip(*parsing(), strict=True)
                chunk = [replace(f, sha256=h) for f, h in zip(chunk, hashed, strict=True)]
                upcoming = next(chunks, None)
                parsing = self._parse(pool, upcoming) if upcoming is not None else None
                self._commit(chunk, list(outcomes), batch_id, seen, summary)
                if on_file is not None:
                    on_file(len(chunk))
                chunk = upcoming
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    def _parse(
        self, pool: ProcessPoolExecutor | None, chunk: list[SourceFile]
    ) -> Callable[[], list[tuple[str, FileOutcome]]]:
        """Start parsing ``chunk`` (in the pool, if any); the callable returns (sha256, outcome)
        per file, in order."""
        if pool is None:
            return lambda: _read_files(self.reader, chunk)
        # Large files cut into ranges go first: they are the longest tasks.
        cuts = {i: split_ranges(self.reader, f, self.workers) for i, f in enumerate(chunk)}
        ranges = {
            i: [
                pool.submit(read_range, self.reader, chunk[i], a, b, k == 0)
                for k, (a, b) in enumerate(cut)
            ]
            for i, cut in cuts.items()
            if cut is not None
        }
        groups = _groups([f for i, f in enumerate(chunk) if i not in ranges], self.workers)
        results = pool.map(_read_group, [self.reader] * len(groups), groups)

        def collect() -> list[tuple[str, FileOutcome]]:
            whole = (item for group in results for item in group)
            return [
                self._merged(chunk[i], [r.result() for r in ranges[i]])
                if i in ranges
                else next(whole)
                for i in range(len(chunk))
            ]

        return collect

    def _merged(
        self, f: SourceFile, parts: list[tuple[str | None, FileOutcome | None]]
    ) -> tuple[str, FileOutcome]:
        """(sha256, outcome) of a file parsed in ranges, or of its whole read when they fail."""
        found = merged_outcome(f, parts)
        if found is None:
            return _read_files(self.reader, [replace(f, sha256=None)])[0]
        digest, outcome = found
        return digest or f.sha256 or file_digest(self.reader, f.path, f.size_bytes), outcome

    def _reject_type_conflicts(self, outcomes: list[FileOutcome]) -> list[FileOutcome]:
        """Quarantine, as a whole, any file whose columns clash with the table's types.

        One file declaring a field differently (VCF headers do) must not stop the batch, and
        must not be silently coerced either: it is set aside with the column named.
        """
        accepted = {table: _table_schema(self.bronze / table) for table in self.reader.tables}
        # Schemas are compared with ``equals`` (what ``==`` calls, ~10x slower through
        # ``__eq__``): once per file and table, that was most of this check for small files.
        # Per table, incoming schemas already checked and unified into accepted[table] without
        # changing it: the same schema again would pass and change nothing, so skip the work.
        absorbed: dict[str, list[pa.Schema]] = {}
        checked = []
        for outcome in outcomes:
            conflict = None
            todo = [
                (table, data)
                for table, data in outcome.tables.items()
                if not any(data.schema.equals(known) for known in absorbed.get(table, ()))
            ]
            for table, data in todo:
                conflict = _type_conflict(accepted.get(table), data.schema)
                if conflict:
                    conflict = f"{conflict} bronze.{table}; the file cannot land until they agree"
                    break
            if conflict:
                checked.append(set_aside(outcome, conflict))
                continue
            for table, data in todo:
                current = accepted.get(table)
                # The check above passed; if Arrow cannot unify, keep the stricter schema.
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError):
                    accepted[table] = (
                        data.schema
                        if current is None
                        else pa.unify_schemas([current, data.schema], promote_options="permissive")
                    )
                if current is not None and accepted[table].equals(current):
                    absorbed.setdefault(table, []).append(data.schema)
                else:
                    absorbed[table] = []
            checked.append(outcome)
        return checked

    def _commit(
        self,
        chunk: list[SourceFile],
        outcomes: list[FileOutcome],
        batch_id: str,
        seen: set[str],
        summary: ModalitySummary,
    ) -> None:
        modality = self.reader.modality
        outcomes = self._reject_type_conflicts(outcomes)
        started = dt.datetime.now(dt.UTC)
        self.ledger.mark_started(modality, chunk, batch_id)
        _pause_point("started")
        replaced = [f.key for f in chunk if f.key in seen]
        predicate = None
        if replaced:
            keys = ", ".join(sql_string(f.key) for f in chunk)
            predicate = f"{SOURCE_FILE} IN ({keys})"
        for table in self.reader.tables:
            parts = [
                (f.key, o.tables[table])
                for f, o in zip(chunk, outcomes, strict=True)
                if table in o.tables and o.tables[table].num_rows
            ]
            data = [with_lineage_all(parts, batch_id, started)] if parts else []
            land(self.bronze / table, data, predicate)
        bad = [(f, q) for f, o in zip(chunk, outcomes, strict=True) for q in o.quarantined]
        quarantine = [self.ledger.quarantine_table(modality, bad, batch_id, started)] if bad else []
        land(self.ledger.quarantine_path, quarantine, predicate)
        _pause_point("data")
        self.ledger.mark_landed(
            modality,
            [
                (f, o.records_read, o.records_landed, len(o.quarantined))
                for f, o in zip(chunk, outcomes, strict=True)
            ],
            batch_id,
            started,
        )
        summary.files_landed += len(chunk)
        summary.records_read += sum(o.records_read for o in outcomes)
        summary.records_landed += sum(o.records_landed for o in outcomes)
        summary.records_quarantined += sum(len(o.quarantined) for o in outcomes)
