"""Governed reads of the local warehouse: run SQL as a principal, audit every attempt.

``governed_read(principal, sql)`` opens ``warehouse.duckdb`` read-only, sets the session
variable ``mmlake_principal`` (which every consumer view and mask function reads), runs one
SELECT and appends an audit row to ``<lakehouse>/governance/audit_reads`` - also when the read
is refused. What a read may reference (docs/governance.md):

- the secure views ``consumer.*`` (unqualified names resolve there) and the policy metadata in
  ``governance.*``;
- the raw layers ``bronze``/``silver``/``gold`` only for an unrestricted principal (full access
  to every classification, i.e. data stewards), since they bypass masks and row filters;
- never table functions (``read_parquet``, ``delta_scan`` ...: files bypass the views), never
  more than one statement (a second one could reset the principal).

This is a policy development tool, not a security boundary: whoever can open the DuckDB file
can read it without any of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from mmlake.duckdb_ext import connect
from mmlake.governance.audit import record_read

OPEN_SCHEMAS = frozenset({"consumer", "governance"})
RAW_SCHEMAS = frozenset({"bronze", "silver", "gold"})


class GovernedReadError(RuntimeError):
    """The read was refused (unknown principal, forbidden reference, not a single SELECT)."""


@dataclass(frozen=True)
class ReadResult:
    """What a governed read returned and referenced."""

    table: pa.Table
    tables: tuple[str, ...]
    columns: tuple[str, ...] = field(default_factory=tuple)


def _walk(node: object, tables: set[tuple[str, str, str]], functions: set[str], ctes: set[str]):
    """Collect base tables, table functions and CTE names of a serialized DuckDB AST."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "BASE_TABLE":
            tables.add(
                (node.get("catalog_name", ""), node.get("schema_name", ""), node["table_name"])
            )
        elif kind == "TABLE_FUNCTION":
            functions.add(str((node.get("function") or {}).get("function_name", "?")))
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            for entry in cte_map.get("map") or []:
                ctes.add(str(entry.get("key", "")).lower())
        for value in node.values():
            _walk(value, tables, functions, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, functions, ctes)


def referenced_tables(conn: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """``schema.table`` of every relation the SELECT reads; refuses anything else."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise GovernedReadError("a governed read is exactly one SELECT statement")
    serialized = json.loads(
        conn.execute("select json_serialize_sql(?)", [statements[0].query]).fetchone()[0]
    )
    if serialized.get("error"):
        raise GovernedReadError(f"cannot parse the query: {serialized.get('error_message')}")
    tables: set[tuple[str, str, str]] = set()
    functions: set[str] = set()
    ctes: set[str] = set()
    _walk(serialized["statements"], tables, functions, ctes)
    if functions:
        raise GovernedReadError(
            f"table functions are not allowed in a governed read: {', '.join(sorted(functions))}"
        )
    database = conn.execute("select current_database()").fetchone()[0]
    names = []
    for catalog, schema, table in sorted(tables):
        if not schema and table.lower() in ctes:
            continue
        if catalog and catalog != database:
            raise GovernedReadError(f"only the warehouse may be read, not catalog {catalog!r}")
        names.append(f"{(schema or 'consumer').lower()}.{table.lower()}")
    return names


def _check_principal(conn: duckdb.DuckDBPyConnection, principal: str, tables: list[str]) -> None:
    conn.execute("set variable mmlake_principal = ?", [principal])
    known, unrestricted = conn.execute(
        "select governance.principal_known(), governance.principal_unrestricted()"
    ).fetchone()
    if not known:
        raise GovernedReadError(
            f"unknown principal {principal!r} (seeds/governance/principals.csv)"
        )
    for name in tables:
        schema = name.split(".", 1)[0]
        if schema in OPEN_SCHEMAS or (schema in RAW_SCHEMAS and unrestricted):
            continue
        if schema in RAW_SCHEMAS:
            raise GovernedReadError(
                f"{name}: only unrestricted principals (data stewards) read the {schema} schema "
                f"directly; read consumer.{name.split('.', 1)[1]} instead"
            )
        raise GovernedReadError(f"{name}: schema {schema!r} is not readable through mmlake query")


def governed_read(
    principal: str, sql: str, lakehouse: Path, *, via: str = "mmlake query"
) -> ReadResult:
    """Run ``sql`` as ``principal`` against the local warehouse and audit it.

    Raises :class:`GovernedReadError` when the read is refused; the refusal is audited too.
    """
    started = datetime.now(UTC)
    warehouse = lakehouse / "warehouse.duckdb"
    if not warehouse.is_file():
        raise GovernedReadError(f"no warehouse at {warehouse}: run `dbt build` first")
    tables: list[str] = []
    try:
        with connect(warehouse, read_only=True) as conn:
            try:
                tables = referenced_tables(conn, sql)
                _check_principal(conn, principal, tables)
                conn.execute("set search_path = 'consumer'")
                result = conn.execute(sql).fetch_arrow_table()
            finally:
                conn.execute("reset variable mmlake_principal")
    except GovernedReadError as error:
        record_read(
            lakehouse,
            principal=principal,
            via=via,
            status="refused",
            sql=sql,
            tables=tables,
            message=str(error),
            read_at=started,
        )
        raise
    except duckdb.Error as error:
        record_read(
            lakehouse,
            principal=principal,
            via=via,
            status="error",
            sql=sql,
            tables=tables,
            message=str(error),
            read_at=started,
        )
        raise GovernedReadError(f"query failed: {error}") from error
    record_read(
        lakehouse,
        principal=principal,
        via=via,
        status="ok",
        sql=sql,
        tables=tables,
        columns=result.column_names,
        row_count=result.num_rows,
        read_at=started,
    )
    return ReadResult(table=result, tables=tuple(tables), columns=tuple(result.column_names))
