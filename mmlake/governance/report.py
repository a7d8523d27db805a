"""`mmlake governance report`: one static HTML page for data stewards (docs/governance.md).

The page answers, from what the last dbt build left in ``warehouse.duckdb`` and from the Delta
audit tables:

- classification coverage by layer (``governance.classification_registry``): columns per layer
  x classification, declared vs undeclared;
- which group sees which column how (``governance.access_policies``): group x classification
  -> full / masked / denied, and per governed table the number of columns each group sees
  full, masked or denied;
- the tables holding PHI: relation, number of PHI columns, row filters, owner;
- the last dbt invocations and governed reads (``<lakehouse>/governance/audit_dbt_runs`` and
  ``audit_reads``, read through DuckDB's ``delta_scan`` only);
- when it was generated.

The page is self-contained: inline CSS, no scripts, no external assets; every value is HTML
escaped. Every number sits in an element with a ``data-metric`` attribute (plus ``data-*``
attributes naming its row and column) so tests and scripts can read it back.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from mmlake.governance.audit import READS_TABLE, RUNS_TABLE, audit_path

ACCESS_LEVELS: tuple[str, ...] = ("full", "masked", "denied")
RECENT_LIMIT = 20
REPORT_RELATIVE_PATH = Path("reports") / "governance.html"

# Section headings: the tests look for them in the DOM the browser dumps.
HEADINGS: dict[str, str] = {
    "summary": "Summary",
    "coverage": "Classification coverage by layer",
    "policy": "Access by group and classification",
    "tables": "Columns each group sees, per governed table",
    "phi": "Tables holding PHI",
    "runs": "Last dbt invocations",
    "reads": "Last governed reads",
}


class ReportError(RuntimeError):
    """The warehouse lacks what the report needs (not built, or built without governance)."""


@dataclass
class GovernanceReport:
    """Everything the page shows, read from the warehouse and the audit tables."""

    generated_at: datetime
    lakehouse: Path
    classifications: list[str]
    groups: list[str]
    layers: list[str]
    coverage: dict[tuple[str, str], int] = field(default_factory=dict)
    declared: dict[str, int] = field(default_factory=dict)
    undeclared: dict[str, int] = field(default_factory=dict)
    access: dict[tuple[str, str], str] = field(default_factory=dict)
    table_access: list[dict[str, Any]] = field(default_factory=list)
    phi_tables: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] | None = None
    reads: list[dict[str, Any]] | None = None
    totals: dict[str, int] = field(default_factory=dict)


def default_output(lakehouse: Path) -> Path:
    """Where ``mmlake governance report`` writes by default: ``<lakehouse>/reports/...``."""
    return lakehouse / REPORT_RELATIVE_PATH


def _records(conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict]:
    result = conn.execute(sql, list(params))
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _require_governance(conn: duckdb.DuckDBPyConnection) -> None:
    present = {
        row[0]
        for row in conn.execute(
            "select table_name from duckdb_tables() where schema_name = 'governance'"
        ).fetchall()
    }
    missing = {"classification_registry", "access_policies", "classifications", "groups"} - present
    if missing:
        raise ReportError(
            f"the warehouse has no governance.{', governance.'.join(sorted(missing))}: run a dbt "
            "build on the local target first (`mmlake build` / `make build`)"
        )


def _delta_exists(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def _collect_runs(conn: duckdb.DuckDBPyConnection, path: Path, limit: int) -> list[dict] | None:
    """One row per dbt invocation (latest first), or None without an audit table."""
    if not _delta_exists(path):
        return None
    return _records(
        conn,
        f"""
        select invocation_id, min(invoked_at) as invoked_at, any_value(os_user) as os_user,
            any_value(command) as command, any_value(target) as target,
            any_value(invocation_status) as invocation_status,
            count(unique_id) as nodes,
            count(*) filter (where unique_id is not null
                and lower(status) not in ('success', 'pass')) as nodes_not_ok,
            sum(rows_affected) as rows_affected
        from delta_scan(?)
        group by invocation_id
        order by invoked_at desc, invocation_id
        limit {int(limit)}
        """,
        [str(path)],
    )


def _collect_reads(conn: duckdb.DuckDBPyConnection, path: Path, limit: int) -> list[dict] | None:
    """The latest governed reads (latest first), or None without an audit table."""
    if not _delta_exists(path):
        return None
    return _records(
        conn,
        f"""
        select read_at, principal, os_user, via, status, tables, row_count, sql, message
        from delta_scan(?)
        order by read_at desc, read_id
        limit {int(limit)}
        """,
        [str(path)],
    )


def _audit_totals(conn: duckdb.DuckDBPyConnection, lakehouse: Path) -> dict[str, int]:
    totals = {"dbt_invocations": 0, "dbt_failed_invocations": 0, "reads": 0, "reads_refused": 0}
    runs = audit_path(lakehouse, RUNS_TABLE)
    if _delta_exists(runs):
        n, failed = conn.execute(
            "select count(distinct invocation_id), "
            "count(distinct invocation_id) filter (where invocation_status <> 'success') "
            "from delta_scan(?)",
            [str(runs)],
        ).fetchone()
        totals |= {"dbt_invocations": int(n), "dbt_failed_invocations": int(failed)}
    reads = audit_path(lakehouse, READS_TABLE)
    if _delta_exists(reads):
        n, refused = conn.execute(
            "select count(*), count(*) filter (where status <> 'ok') from delta_scan(?)",
            [str(reads)],
        ).fetchone()
        totals |= {"reads": int(n), "reads_refused": int(refused)}
    return totals


def collect(
    conn: duckdb.DuckDBPyConnection,
    lakehouse: Path,
    *,
    limit: int = RECENT_LIMIT,
    now: datetime | None = None,
) -> GovernanceReport:
    """Read the report's content through ``conn`` (the warehouse, delta extension loaded).

    ``conn`` is only read from; open it with ``mmlake.duckdb_ext.connect(path,
    read_only=True)``. The audit tables are read with ``delta_scan`` on the same connection.
    """
    _require_governance(conn)
    classifications = [
        r[0]
        for r in conn.execute(
            "select classification from governance.classifications "
            "order by sensitivity_rank desc, classification"
        ).fetchall()
    ]
    groups = [
        r[0]
        for r in conn.execute(
            "select group_name from governance.groups "
            "union select group_name from governance.access_policies order by 1"
        ).fetchall()
    ]
    registry_classes = [
        r[0]
        for r in conn.execute(
            "select distinct classification from governance.classification_registry order by 1"
        ).fetchall()
    ]
    # A classification outside the vocabulary still gets a column (the coverage check should
    # have failed the build, but the page must not hide it).
    classifications += [c for c in registry_classes if c not in classifications]
    layer_rows = conn.execute(
        """
        select layer, classification, count(*) as n,
            count(*) filter (where declared) as n_declared
        from governance.classification_registry
        group by layer, classification
        """
    ).fetchall()
    report = GovernanceReport(
        generated_at=now or datetime.now(UTC),
        lakehouse=lakehouse,
        classifications=classifications,
        groups=groups,
        layers=_layer_order({r[0] for r in layer_rows}),
    )
    for layer, classification, n, n_declared in layer_rows:
        report.coverage[(layer, classification)] = int(n)
        report.declared[layer] = report.declared.get(layer, 0) + int(n_declared)
        report.undeclared[layer] = report.undeclared.get(layer, 0) + int(n) - int(n_declared)
    for group, classification, access in conn.execute(
        "select group_name, classification, lower(access) from governance.access_policies"
    ).fetchall():
        report.access[(group, classification)] = access
    report.table_access = _collect_table_access(conn, report)
    report.phi_tables = _records(
        conn,
        """
        select layer, node_type, relation_name,
            count(*) filter (where classification = 'phi') as phi_columns,
            count(*) as columns,
            any_value(row_filters) as row_filters, any_value(owner) as owner,
            any_value(model_classification) as model_classification
        from governance.classification_registry
        group by layer, node_type, relation_name
        having count(*) filter (where classification = 'phi') > 0
        order by layer, relation_name
        """,
    )
    report.runs = _collect_runs(conn, audit_path(lakehouse, RUNS_TABLE), limit)
    report.reads = _collect_reads(conn, audit_path(lakehouse, READS_TABLE), limit)
    report.totals = {
        "columns_total": sum(report.coverage.values()),
        "columns_undeclared": sum(report.undeclared.values()),
        "relations": int(
            conn.execute(
                "select count(distinct relation_name) from governance.classification_registry"
            ).fetchone()[0]
        ),
        "governed_tables": len(report.table_access),
        "phi_tables": len(report.phi_tables),
        "phi_columns_total": sum(int(t["phi_columns"]) for t in report.phi_tables),
        **_audit_totals(conn, lakehouse),
    }
    return report


def _layer_order(layers: Iterable[str]) -> list[str]:
    known = ["bronze", "silver", "gold"]
    present = set(layers)
    return [layer for layer in known if layer in present] + sorted(present - set(known))


def _collect_table_access(
    conn: duckdb.DuckDBPyConnection, report: GovernanceReport
) -> list[dict[str, Any]]:
    """Per governed table (silver and gold models): columns per group x access level.

    A (group, classification) pair without a policy row is ``denied`` (fail closed), as in
    the secure views.
    """
    tables = _records(
        conn,
        """
        select layer, relation_name, any_value(row_filters) as row_filters,
            any_value(owner) as owner, count(*) as columns,
            list(classification) as classifications
        from governance.classification_registry
        where node_type = 'model'
        group by layer, relation_name
        order by layer, relation_name
        """,
    )
    for table in tables:
        counts: dict[tuple[str, str], int] = {}
        for group in report.groups:
            for level in ACCESS_LEVELS:
                counts[(group, level)] = 0
            for classification in table["classifications"]:
                level = report.access.get((group, classification), "denied")
                counts[(group, level if level in ACCESS_LEVELS else "denied")] += 1
        table["counts"] = counts
        del table["classifications"]
    return tables


# --- rendering -------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ccd; }
p.meta { color: #556; margin-top: 0; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccd; padding: .2rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef0f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.zero { color: #99a; }
.full { background: #e3f4e6; }
.masked { background: #fff4d6; }
.denied { background: #fbe2e2; }
.bad { background: #fbe2e2; font-weight: bold; }
code { font-size: 12px; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .1rem 1rem; }
dl.summary dt { color: #556; }
"""


def _e(value: Any) -> str:
    """HTML-escape any value (None -> empty)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value)
    if isinstance(value, datetime):
        value = value.isoformat(sep=" ", timespec="seconds")
    return html.escape(str(value), quote=True)


def _attrs(attrs: Mapping[str, Any]) -> str:
    return "".join(f' data-{_e(k)}="{_e(v)}"' for k, v in attrs.items())


def _num(metric: str, value: Any, tag: str = "td", **attrs: Any) -> str:
    """A number in an element carrying ``data-metric`` (and ``data-<attr>`` per keyword)."""
    css = "num zero" if value in (0, None) and tag == "td" else "num"
    shown = "" if value is None else value
    return f'<{tag} class="{css}" data-metric="{_e(metric)}"{_attrs(attrs)}>{_e(shown)}</{tag}>'


def _heading(key: str) -> str:
    return f'<h2 id="{_e(key)}">{_e(HEADINGS[key])}</h2>'


def _table(headers: Sequence[str], rows: Iterable[str], **attrs: Any) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    return f"<table{_attrs(attrs)}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary(report: GovernanceReport) -> str:
    labels = {
        "relations": "relations in the registry",
        "columns_total": "columns in the registry",
        "columns_undeclared": "columns without a declared classification (treated as phi)",
        "governed_tables": "governed tables (silver and gold models)",
        "phi_tables": "relations holding PHI",
        "phi_columns_total": "PHI columns",
        "dbt_invocations": "audited dbt invocations",
        "dbt_failed_invocations": "audited dbt invocations that failed",
        "reads": "audited governed reads",
        "reads_refused": "governed reads refused or failed",
    }
    items = "".join(
        f"<dt>{_e(label)}</dt>{_num(key, report.totals.get(key, 0), tag='dd')}"
        for key, label in labels.items()
    )
    return _heading("summary") + f'<dl class="summary">{items}</dl>'


def _coverage(report: GovernanceReport) -> str:
    headers = ["layer", *report.classifications, "total", "declared", "undeclared"]
    rows = []
    for layer in report.layers:
        cells = [f"<th>{_e(layer)}</th>"]
        cells += [
            _num("coverage", report.coverage.get((layer, c), 0), layer=layer, classification=c)
            for c in report.classifications
        ]
        total = sum(n for (lay, _), n in report.coverage.items() if lay == layer)
        cells.append(_num("coverage_total", total, layer=layer))
        cells.append(_num("declared", report.declared.get(layer, 0), layer=layer))
        undeclared = report.undeclared.get(layer, 0)
        cell = _num("undeclared", undeclared, layer=layer)
        rows.append("".join(cells) + (cell.replace('class="num"', 'class="num bad"', 1)))
    note = (
        "<p>Columns of every bronze source, silver and gold model and seed, from "
        "<code>governance.classification_registry</code>. An undeclared column is treated as "
        "<code>phi</code> (fail closed).</p>"
    )
    return _heading("coverage") + note + _table(headers, rows, table="coverage")


def _policy(report: GovernanceReport) -> str:
    rows = []
    for group in report.groups:
        cells = [f"<th>{_e(group)}</th>"]
        for c in report.classifications:
            level = report.access.get((group, c), "denied")
            cells.append(
                f'<td class="{_e(level)}" data-metric="access"'
                f"{_attrs({'group': group, 'classification': c})}>{_e(level)}</td>"
            )
        rows.append("".join(cells))
    note = (
        "<p>From <code>governance.access_policies</code>; no policy row means "
        "<code>denied</code>. A principal in several groups gets the most permissive level. "
        "Row filters apply on top (next tables).</p>"
    )
    return (
        _heading("policy") + note + _table(["group", *report.classifications], rows, table="policy")
    )


def _tables(report: GovernanceReport) -> str:
    headers = ["layer", "relation", "columns", "row filters", "owner"]
    headers += [f"{g}: {level}" for g in report.groups for level in ACCESS_LEVELS]
    rows = []
    for t in report.table_access:
        cells = [
            f"<td>{_e(t['layer'])}</td>",
            f"<td><code>{_e(t['relation_name'])}</code></td>",
            _num("table_columns", t["columns"], relation=t["relation_name"]),
            f"<td>{_e(t['row_filters'])}</td>",
            f"<td>{_e(t['owner'])}</td>",
        ]
        for group in report.groups:
            for level in ACCESS_LEVELS:
                cells.append(
                    _num(
                        "table_access",
                        t["counts"][(group, level)],
                        relation=t["relation_name"],
                        group=group,
                        access=level,
                    )
                )
        rows.append("".join(cells))
    note = (
        "<p>Per silver and gold model: how many of its columns each group sees in full, "
        "masked, or not at all (null), by the column's classification.</p>"
    )
    return _heading("tables") + note + _table(headers, rows, table="tables")


def _phi(report: GovernanceReport) -> str:
    headers = ["layer", "kind", "relation", "PHI columns", "columns", "row filters", "owner"]
    rows = [
        f"<td>{_e(t['layer'])}</td><td>{_e(t['node_type'])}</td>"
        f"<td><code>{_e(t['relation_name'])}</code></td>"
        + _num("phi_columns", t["phi_columns"], relation=t["relation_name"])
        + _num("phi_table_columns", t["columns"], relation=t["relation_name"])
        + f"<td>{_e(t['row_filters'])}</td><td>{_e(t['owner'])}</td>"
        for t in report.phi_tables
    ]
    return _heading("phi") + _table(headers, rows, table="phi")


def _runs(report: GovernanceReport) -> str:
    if report.runs is None:
        return _heading("runs") + "<p>No <code>audit_dbt_runs</code> table yet.</p>"
    headers = [
        "invoked at (UTC)",
        "command",
        "target",
        "OS user",
        "status",
        "nodes",
        "nodes not ok",
        "rows",
    ]
    rows = [
        f"<td>{_e(r['invoked_at'])}</td><td><code>{_e(r['command'])}</code></td>"
        f"<td>{_e(r['target'])}</td><td>{_e(r['os_user'])}</td>"
        f'<td class="{"full" if r["invocation_status"] == "success" else "denied"}">'
        f"{_e(r['invocation_status'])}</td>"
        + _num("run_nodes", r["nodes"], invocation=r["invocation_id"])
        + _num("run_nodes_not_ok", r["nodes_not_ok"], invocation=r["invocation_id"])
        + _num("run_rows", r["rows_affected"], invocation=r["invocation_id"])
        for r in report.runs
    ]
    return _heading("runs") + _table(headers, rows, table="runs")


def _reads(report: GovernanceReport) -> str:
    if report.reads is None:
        return _heading("reads") + "<p>No <code>audit_reads</code> table yet.</p>"
    headers = ["read at (UTC)", "principal", "via", "status", "tables", "rows", "SQL", "message"]
    rows = [
        f"<td>{_e(r['read_at'])}</td><td>{_e(r['principal'])}</td><td>{_e(r['via'])}</td>"
        f'<td class="{"full" if r["status"] == "ok" else "denied"}">{_e(r["status"])}</td>'
        f"<td>{_e(r['tables'])}</td>"
        + _num("read_rows", r["row_count"])
        + f"<td><code>{_e(r['sql'])}</code></td><td>{_e(r['message'])}</td>"
        for r in report.reads
    ]
    return _heading("reads") + _table(headers, rows, table="reads")


def render_html(report: GovernanceReport) -> str:
    """The report as one self-contained HTML document (inline CSS, no scripts)."""
    generated = report.generated_at.astimezone(UTC)
    body = "".join(
        [
            "<h1>Governance report</h1>",
            f'<p class="meta">Lakehouse <code>{_e(report.lakehouse)}</code>; generated at '
            f'<time data-metric="generated_at" datetime="{_e(generated.isoformat())}">'
            f"{_e(generated.strftime('%Y-%m-%d %H:%M:%S'))}</time> UTC. "
            "Local emulation: the warehouse file itself is no security boundary.</p>",
            _summary(report),
            _coverage(report),
            _policy(report),
            _tables(report),
            _phi(report),
            _runs(report),
            _reads(report),
        ]
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>mmlake governance report</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )


def write_report(
    lakehouse: Path,
    out: Path | None = None,
    *,
    conn: duckdb.DuckDBPyConnection | None = None,
    limit: int = RECENT_LIMIT,
) -> Path:
    """Write the report of ``lakehouse`` to ``out`` (default ``<lakehouse>/reports/...``).

    Opens ``<lakehouse>/warehouse.duckdb`` read-only unless a connection is given (DuckDB
    refuses a second, differently configured handle to the same file in one process, so
    callers already holding one pass it in). Returns the path written.
    """
    from mmlake.duckdb_ext import connect

    target = out or default_output(lakehouse)
    if conn is None:
        warehouse = lakehouse / "warehouse.duckdb"
        if not warehouse.is_file():
            raise ReportError(f"no warehouse at {warehouse}: build the lakehouse first")
        with connect(warehouse, read_only=True) as own:
            report = collect(own, lakehouse, limit=limit)
    else:
        report = collect(conn, lakehouse, limit=limit)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(report), encoding="utf-8")
    return target
