"""`mmlake query` and the `mmlake governance` sub-commands (local emulation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mmlake import paths
from mmlake.console import console

app = typer.Typer(
    help="Governance of the local lakehouse: audit tables and policy metadata.",
    no_args_is_help=True,
)

LakehouseOpt = Annotated[
    Path | None,
    typer.Option("--lakehouse", help="Lakehouse root. Default: $LAKEHOUSE_ROOT, else ./lakehouse."),
]


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over consumer.* (unqualified names).")],
    principal: Annotated[
        str, typer.Option("--as", help="Principal to read as (seeds/governance/principals.csv).")
    ],
    lakehouse: LakehouseOpt = None,
    limit: Annotated[int, typer.Option(help="Rows to print (all rows are counted).")] = 50,
) -> None:
    """Run a read as PRINCIPAL through the secure consumer views, and audit it.

    Masks and row filters of the principal's groups apply; reading bronze/silver/gold directly
    is refused unless the principal has full access to every classification (data stewards).
    Every attempt, refused or not, is appended to LAKEHOUSE/governance/audit_reads.
    """
    from mmlake.governance.query import GovernedReadError, governed_read

    try:
        result = governed_read(principal, sql, paths.lakehouse_root(lakehouse))
    except GovernedReadError as error:
        console.print(f"[red]refused:[/red] {error}")
        raise typer.Exit(2) from error
    table = Table(*result.table.column_names, show_lines=False)
    for row in result.table.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)
    console.print(f"{result.table.num_rows} rows as {principal} (audited)")


@app.command()
def audit(
    lakehouse: LakehouseOpt = None,
    runs: Annotated[bool, typer.Option("--runs", help="dbt invocations instead of reads.")] = False,
    limit: Annotated[int, typer.Option(help="Most recent rows to show.")] = 20,
) -> None:
    """Show the latest rows of the audit tables (governed reads, or dbt runs with --runs)."""
    from mmlake.duckdb_ext import connect
    from mmlake.governance.audit import READS_TABLE, RUNS_TABLE, audit_path

    root = paths.lakehouse_root(lakehouse)
    path = audit_path(root, RUNS_TABLE if runs else READS_TABLE)
    if not (path / "_delta_log").is_dir():
        console.print(f"no audit table at {path} yet")
        return
    columns = (
        "invoked_at, command, invocation_status, unique_id, status, rows_affected"
        if runs
        else "read_at, principal, via, status, row_count, tables, left(sql, 60) as sql, message"
    )
    order = "invoked_at" if runs else "read_at"
    with connect() as conn:
        result = conn.execute(
            f"select {columns} from delta_scan(?) order by {order} desc limit {int(limit)}",
            [str(path)],
        ).fetch_arrow_table()
    table = Table(*result.column_names)
    for row in result.to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


@app.command()
def report(
    lakehouse: LakehouseOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="HTML file to write. Default: LAKEHOUSE/reports/governance.html."
        ),
    ] = None,
) -> None:
    """Write the data steward report: a static HTML page (no scripts, no external assets).

    Classification coverage by layer, access by group x classification and per governed table,
    the tables holding PHI, the last dbt invocations and governed reads from the audit tables.
    Reads warehouse.duckdb read-only and the Delta audit tables through DuckDB.
    """
    from mmlake.governance.report import ReportError, write_report

    try:
        path = write_report(paths.lakehouse_root(lakehouse), out)
    except ReportError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    console.print(f"governance report written to {path}")
