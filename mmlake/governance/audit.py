"""Append-only Delta audit tables of the local emulation (docs/governance.md).

- ``<lakehouse>/governance/audit_reads``: one row per governed read (``mmlake query``, the
  ``governed_query`` run-operation, the ML reader), allowed or refused.
- ``<lakehouse>/governance/audit_dbt_runs``: one row per node of every dbt invocation made
  through :func:`mmlake.dbt_runner.run_dbt`, from that invocation's ``run_results.json``.
  A plain ``dbt`` command (not through mmlake) is not audited: DuckDB cannot write Delta and
  the on-run-end hook has no other way out.

On Databricks the same questions are answered by ``system.access.audit`` and
``system.access.table_lineage``; these tables exist because a laptop has neither.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from mmlake.delta import write_delta

AUDIT_DIR = "governance"
READS_TABLE = "audit_reads"
RUNS_TABLE = "audit_dbt_runs"

READS_SCHEMA = pa.schema(
    [
        ("read_id", pa.string()),
        ("read_at", pa.timestamp("us", tz="UTC")),
        ("principal", pa.string()),
        ("os_user", pa.string()),
        ("via", pa.string()),
        ("status", pa.string()),
        ("tables", pa.list_(pa.string())),
        ("columns", pa.list_(pa.string())),
        ("row_count", pa.int64()),
        ("sql", pa.string()),
        ("message", pa.string()),
    ]
)

RUNS_SCHEMA = pa.schema(
    [
        ("invocation_id", pa.string()),
        ("invoked_at", pa.timestamp("us", tz="UTC")),
        ("os_user", pa.string()),
        ("command", pa.string()),
        ("target", pa.string()),
        ("invocation_status", pa.string()),
        ("unique_id", pa.string()),
        ("status", pa.string()),
        ("rows_affected", pa.int64()),
        ("execution_time_s", pa.float64()),
        ("message", pa.string()),
    ]
)


def os_user() -> str:
    """The operating-system account running this process (the 'who' of a dbt run)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return os.environ.get("USER", "unknown")


def audit_path(lakehouse: Path, table: str) -> Path:
    return lakehouse / AUDIT_DIR / table


def record_read(
    lakehouse: Path,
    *,
    principal: str,
    via: str,
    status: str,
    sql: str,
    tables: Sequence[str] = (),
    columns: Sequence[str] = (),
    row_count: int | None = None,
    message: str | None = None,
    read_at: datetime | None = None,
) -> None:
    """Append one governed read (or refusal) to ``audit_reads``."""
    row = {
        "read_id": str(uuid.uuid4()),
        "read_at": read_at or datetime.now(UTC),
        "principal": principal,
        "os_user": os_user(),
        "via": via,
        "status": status,
        "tables": sorted(set(tables)),
        "columns": list(columns),
        "row_count": row_count,
        "sql": sql,
        "message": message,
    }
    write_delta(
        audit_path(lakehouse, READS_TABLE),
        pa.Table.from_pylist([row], schema=READS_SCHEMA),
        mode="append",
        description="governed read",
    )


def _built_rows(lakehouse: Path, invocation_id: str) -> dict[str, int]:
    """Row counts the on-run-end hook stored for this invocation (governance.dbt_run_rows).

    dbt-duckdb reports no rows_affected for tables, so the local emulation counts the rows of
    each relation it built. Best effort: an absent table or a locked file gives {}.
    """
    import duckdb

    from mmlake.duckdb_ext import connect

    warehouse = lakehouse / "warehouse.duckdb"
    if not warehouse.is_file():
        return {}
    try:
        with connect(warehouse, read_only=True) as conn:
            return dict(
                conn.execute(
                    "select unique_id, row_count from governance.dbt_run_rows "
                    "where invocation_id = ?",
                    [invocation_id],
                ).fetchall()
            )
    except duckdb.Error:
        return {}


def record_dbt_invocation(
    lakehouse: Path,
    target_dir: Path,
    *,
    command: Sequence[str],
    target: str | None,
    success: bool,
    started: datetime,
) -> None:
    """Append the nodes of the invocation that just ended to ``audit_dbt_runs``.

    ``run_results.json`` is only trusted when it was written by this invocation (newer than
    ``started``); commands that write none (parse, deps, a failed parse) get one row with
    ``unique_id`` null, so every invocation leaves a trace.
    """
    results_file = target_dir / "run_results.json"
    payload: dict = {}
    if results_file.is_file() and results_file.stat().st_mtime >= started.timestamp():
        payload = json.loads(results_file.read_text(encoding="utf-8"))
    metadata = payload.get("metadata") or {}
    invocation_id = metadata.get("invocation_id") or str(uuid.uuid4())
    base = {
        "invocation_id": invocation_id,
        "invoked_at": started,
        "os_user": os_user(),
        "command": " ".join(command),
        "target": target or os.environ.get("MMLAKE_TARGET", "local"),
        "invocation_status": "success" if success else "error",
    }
    built_rows = _built_rows(lakehouse, invocation_id)
    rows = []
    for result in payload.get("results") or []:
        response = result.get("adapter_response") or {}
        rows_affected = response.get("rows_affected")
        if rows_affected is None or rows_affected < 0:
            rows_affected = built_rows.get(result.get("unique_id"))
        rows.append(
            base
            | {
                "unique_id": result.get("unique_id"),
                "status": str(result.get("status")),
                "rows_affected": int(rows_affected) if rows_affected is not None else None,
                "execution_time_s": result.get("execution_time"),
                "message": result.get("message"),
            }
        )
    if not rows:
        rows.append(
            base
            | {
                "unique_id": None,
                "status": base["invocation_status"],
                "rows_affected": None,
                "execution_time_s": None,
                "message": None,
            }
        )
    write_delta(
        audit_path(lakehouse, RUNS_TABLE),
        pa.Table.from_pylist(rows, schema=RUNS_SCHEMA),
        mode="append",
        description="dbt invocation",
    )


def flush_pending_reads(lakehouse: Path) -> int:
    """Move rows the ``governed_query`` run-operation left in DuckDB to ``audit_reads``.

    The macro cannot write Delta, so it appends to ``governance.audit_reads_pending``;
    mmlake.dbt_runner calls this after a run-operation on the local target. Rows are deleted
    from DuckDB only after the Delta commit, so a failed write leaves them pending.
    """
    from mmlake.duckdb_ext import connect

    warehouse = lakehouse / "warehouse.duckdb"
    if not warehouse.is_file():
        return 0
    with connect(warehouse) as conn:
        exists = conn.execute(
            "select count(*) from duckdb_tables() where schema_name = 'governance' "
            "and table_name = 'audit_reads_pending'"
        ).fetchone()[0]
        if not exists:
            return 0
        pending = conn.execute(
            "select read_at, principal, via, status, columns, row_count, sql, message "
            "from governance.audit_reads_pending order by read_at"
        ).fetchall()
        if not pending:
            return 0
        rows = [
            {
                "read_id": str(uuid.uuid4()),
                "read_at": read_at,
                "principal": principal,
                "os_user": os_user(),
                "via": via,
                "status": status,
                "tables": [],
                "columns": list(columns or []),
                "row_count": row_count,
                "sql": sql,
                "message": message,
            }
            for read_at, principal, via, status, columns, row_count, sql, message in pending
        ]
        write_delta(
            audit_path(lakehouse, READS_TABLE),
            pa.Table.from_pylist(rows, schema=READS_SCHEMA),
            mode="append",
            description="governed reads from dbt run-operation",
        )
        conn.execute("delete from governance.audit_reads_pending")
    return len(rows)
