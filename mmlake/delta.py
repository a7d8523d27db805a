"""The one Delta Lake writer of the project, and log-only inspection of Delta tables.

Writes go through ``deltalake`` (delta-rs). Reads go through DuckDB's ``delta_scan``
(``mmlake.duckdb_ext``): reading Delta with deltalake's Arrow scanners has been seen to abort
the interpreter at exit (upstream delta-rs #2184), and every command here must exit 0 reliably.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pyarrow as pa
from deltalake import WriterProperties, write_deltalake

from mmlake.delta_nested import grows_nested, has_struct, merged_rows

WriteMode = Literal["append", "overwrite"]
# Parquet pages compressed with zstd at level 1 instead of delta-rs's default snappy: across
# the bronze tables of a generated cohort it writes in about snappy's time (0.65x to 1.2x) and
# the files are 25% to 70% smaller (imaging headers most). DuckDB, Spark and Databricks all
# read it. ``bench/bench_delta_codec.py`` measures both against snappy in the same run.
WRITER_PROPERTIES = WriterProperties(compression="ZSTD", compression_level=1)


def write_delta(
    path: Path,
    data: pa.Table | pa.RecordBatchReader,
    *,
    mode: WriteMode = "append",
    predicate: str | None = None,
    schema_mode: Literal["merge", "overwrite"] | None = "merge",
    description: str | None = None,
) -> None:
    """Commit ``data`` to the Delta table at ``path`` as one atomic version.

    ``predicate`` with ``mode="overwrite"`` replaces only the matching rows (Delta's
    replaceWhere), which is how a re-run re-lands a file without duplicating it. ``merge`` lets
    new columns appear (schema evolution) while old rows read them as null; a new field inside
    a struct makes the commit rewrite the table instead (``mmlake.delta_nested``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = predicate if mode == "overwrite" else None
    try:
        merging = schema_mode == "merge" and (mode == "append" or kept)
        if merging and isinstance(data, pa.Table) and has_struct(data.schema):
            current = table_schema(path)
            if current is not None and grows_nested(current, data.schema):
                # A struct gains fields: rewrite so every file has them (mmlake.delta_nested).
                schema, rows = merged_rows(path, current, data, kept)
                data = pa.RecordBatchReader.from_batches(schema, rows)
                mode, predicate, schema_mode = "overwrite", None, "overwrite"
        write_deltalake(
            str(path),
            data,
            mode=mode,
            predicate=predicate,
            schema_mode=schema_mode,
            description=description,
            writer_properties=WRITER_PROPERTIES,
        )
    except Exception as exc:
        # delta-rs errors rarely say which table was being written.
        raise RuntimeError(f"writing Delta table {path} ({mode}) failed: {exc}") from exc


def delta_version(path: Path) -> int | None:
    """Latest committed version, read from the transaction log's file names (no reader)."""
    log = path / "_delta_log"
    versions = [int(p.stem) for p in log.glob("*.json") if p.stem.isdigit()] if log.is_dir() else []
    return max(versions) if versions else None


def is_delta_table(path: Path) -> bool:
    return delta_version(path) is not None


def table_schema(path: Path) -> pa.Schema | None:
    """The committed schema of a Delta table (log metadata only; no data is read)."""
    if not is_delta_table(path):
        return None
    from deltalake import DeltaTable

    return pa.schema(DeltaTable(str(path)).schema().to_arrow())


def commit_info(path: Path, version: int) -> dict[str, object]:
    """The ``commitInfo`` action of one version (operation, parameters, timestamp)."""
    log_file = path / "_delta_log" / f"{version:020d}.json"
    for line in log_file.read_text(encoding="utf-8").splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            return action["commitInfo"]
    return {}


def delete_where(path: Path, predicate: str) -> None:
    """Delete the rows matching ``predicate`` in one commit (no-op for a missing table)."""
    if not is_delta_table(path):
        return
    from deltalake import DeltaTable

    try:
        DeltaTable(str(path)).delete(predicate, writer_properties=WRITER_PROPERTIES)
    except Exception as exc:
        raise RuntimeError(f"deleting from Delta table {path} failed: {exc}") from exc


def sql_string(value: str) -> str:
    """A SQL string literal (for Delta predicates)."""
    return "'" + value.replace("'", "''") + "'"
