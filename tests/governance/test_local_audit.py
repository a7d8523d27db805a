"""Audit of the local emulation: governed reads and dbt invocations land in Delta tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mmlake.duckdb_ext import connect
from mmlake.governance.audit import READS_TABLE, RUNS_TABLE, audit_path
from mmlake.governance.query import GovernedReadError, governed_read
from tests.models.conftest import Built

REPO = Path(__file__).resolve().parents[2]


def _audit_rows(lakehouse: Path, table: str, where: str, params: list) -> list[dict]:
    path = audit_path(lakehouse, table)
    with connect() as conn:
        result = conn.execute(f"select * from delta_scan(?) where {where}", [str(path), *params])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def test_governed_read_is_audited(built: Built) -> None:
    marker = f"n_{uuid.uuid4().hex[:12]}"
    sql = f"select count(*) as {marker} from features_notes"
    result = governed_read("researcher@mmlake.local", sql, built.lakehouse)
    assert result.tables == ("consumer.features_notes",)
    rows = _audit_rows(built.lakehouse, READS_TABLE, "sql = ?", [sql])
    assert len(rows) == 1
    row = rows[0]
    assert row["principal"] == "researcher@mmlake.local"
    assert row["status"] == "ok"
    assert row["tables"] == ["consumer.features_notes"]
    assert row["columns"] == [marker]
    assert row["row_count"] == 1
    assert row["via"] == "mmlake query"
    assert row["read_at"] is not None


@pytest.mark.parametrize(
    ("principal", "sql", "reason"),
    [
        ("researcher@mmlake.local", "select * from silver.stg_ehr__patients", "unrestricted"),
        ("nobody@nowhere", "select 1 as x from features_notes", "unknown principal"),
        ("ml@mmlake.local", "select * from read_csv('/etc/passwd')", "table functions"),
        ("ml@mmlake.local", "select 1; set variable mmlake_principal = 'x'", "one SELECT"),
    ],
)
def test_refused_reads_are_refused_and_audited(built: Built, principal, sql, reason) -> None:
    sql = f"{sql} -- {uuid.uuid4().hex}"
    with pytest.raises(GovernedReadError, match=reason):
        governed_read(principal, sql, built.lakehouse)
    rows = _audit_rows(built.lakehouse, READS_TABLE, "sql = ?", [sql])
    assert [(r["principal"], r["status"]) for r in rows] == [(principal, "refused")]


def test_steward_may_read_silver_directly(built: Built) -> None:
    result = governed_read(
        "steward@mmlake.local",
        "select count(*) as n from silver.stg_ehr__patients",
        built.lakehouse,
    )
    assert result.table.column("n")[0].as_py() > 0


def test_dbt_build_is_audited(built: Built) -> None:
    rows = _audit_rows(built.lakehouse, RUNS_TABLE, "command like 'build%'", [])
    assert rows, "the build of the session fixture left no audit rows"
    latest = max(r["invoked_at"] for r in rows)
    run = [r for r in rows if r["invoked_at"] == latest]
    assert len({r["invocation_id"] for r in run}) == 1
    models = {r["unique_id"]: r for r in run if (r["unique_id"] or "").startswith("model.")}
    assert models
    assert all(r["os_user"] for r in run)
    assert any((r["rows_affected"] or 0) > 0 for r in models.values())
    assert {r["status"] for r in models.values()} <= {"success", "error", "skipped"}


def test_governed_query_run_operation_is_audited(built: Built, tmp_path: Path) -> None:
    """The steward's dbt entry point: prints the result and audits through mmlake.dbt_runner.

    Runs in a subprocess on a copy of the warehouse (dbt opens the file read-write, which this
    process cannot do while other tests hold it read-only).
    """
    lakehouse = tmp_path / "lakehouse"
    lakehouse.mkdir()
    shutil.copyfile(built.warehouse, lakehouse / "warehouse.duckdb")
    marker = uuid.uuid4().hex[:12]
    args = (
        "{principal: 'ml@mmlake.local', sql: 'select count(*) as n_" + marker + " from outcomes'}"
    )
    env = {**os.environ, "LAKEHOUSE_ROOT": str(lakehouse)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmlake.dbt_runner",
            "run-operation",
            "governed_query",
            "--args",
            args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"n_{marker}" in done.stdout
    rows = _audit_rows(lakehouse, READS_TABLE, "via = 'dbt governed_query'", [])
    assert [(r["principal"], r["status"], r["columns"]) for r in rows] == [
        ("ml@mmlake.local", "ok", [f"n_{marker}"])
    ]
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as conn:
        pending = conn.execute("select count(*) from governance.audit_reads_pending").fetchone()
    assert pending == (0,)
