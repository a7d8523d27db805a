"""`mmlake governance report`: the steward page's numbers match the registry, and it renders.

The report is generated from the shared built lakehouse; its numbers (every element with a
``data-metric`` attribute) are compared with queries on ``governance.classification_registry``,
the policy seeds and the Delta audit tables. Then a real browser (Debian's ``chromium``,
headless) loads the file and dumps its DOM, and the same numbers are read back from that DOM.
Without Chromium the browser test skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from mmlake.cli import app
from mmlake.duckdb_ext import connect
from mmlake.governance.audit import READS_TABLE, RUNS_TABLE, audit_path
from mmlake.governance.query import governed_read
from mmlake.governance.report import HEADINGS, default_output, write_report
from tests.governance.conftest import Policy
from tests.models.conftest import Built

MARKER = f"<script>alert('{uuid.uuid4().hex[:8]}')</script>"
LEVELS = ("full", "masked", "denied")


class _Metrics(HTMLParser):
    """Collects every element with ``data-metric`` (attributes + text) and all h2 headings."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[dict[str, str], str]] = []
        self.headings: list[str] = []
        self.tags: Counter[str] = Counter()
        self._open: list[tuple[str, dict[str, str] | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        data = {k: v or "" for k, v in attrs}
        self._open.append((tag, data if "data-metric" in data or tag == "h2" else None, []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            open_tag, data, text = self._open.pop()
            if data is not None:
                content = "".join(text).strip()
                if open_tag == "h2":
                    self.headings.append(content)
                else:
                    self.metrics.append((data, content))
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def find(self, metric: str, **attrs: str) -> list[str]:
        """Texts of the elements with data-metric=metric and the given data-* attributes."""
        return [
            text
            for data, text in self.metrics
            if data.get("data-metric") == metric
            and all(data.get(f"data-{k}") == v for k, v in attrs.items())
        ]

    def one(self, metric: str, **attrs: str) -> str:
        found = self.find(metric, **attrs)
        assert len(found) == 1, (metric, attrs, found)
        return found[0]


def _parse(text: str) -> _Metrics:
    parser = _Metrics()
    parser.feed(text)
    parser.close()
    return parser


@pytest.fixture(scope="session")
def report_file(
    built: Built,
    warehouse: duckdb.DuckDBPyConnection,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The report of the built lakehouse, after one governed read whose SQL needs escaping.

    ``warehouse`` (a read-only handle) is open in this process: write_report opens its own
    handle with the same read-only config, which DuckDB allows (a different config would not).
    """
    governed_read(
        "researcher@mmlake.local", f"select 1 as x from features_notes -- {MARKER}", built.lakehouse
    )
    return write_report(built.lakehouse, tmp_path_factory.mktemp("report") / "governance.html")


@pytest.fixture(scope="session")
def report(report_file: Path) -> _Metrics:
    return _parse(report_file.read_text(encoding="utf-8"))


def _expected_table_access(
    warehouse: duckdb.DuckDBPyConnection, policy: Policy
) -> dict[str, Counter[tuple[str, str]]]:
    groups = {g for g, _ in policy.access_rows}
    expected: dict[str, Counter[tuple[str, str]]] = {}
    for relation, classification in warehouse.execute(
        "select relation_name, classification from governance.classification_registry "
        "where node_type = 'model'"
    ).fetchall():
        counts = expected.setdefault(relation, Counter())
        for group in groups:
            counts[(group, policy.access_rows.get((group, classification), "denied"))] += 1
    return expected


def test_coverage_matches_registry(report: _Metrics, warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = warehouse.execute(
        "select layer, classification, count(*), count(*) filter (where declared) "
        "from governance.classification_registry group by 1, 2"
    ).fetchall()
    assert rows
    shown = {
        (d["data-layer"], d["data-classification"]): int(text)
        for d, text in report.metrics
        if d.get("data-metric") == "coverage"
    }
    expected = {(layer, cls): n for layer, cls, n, _ in rows}
    assert {k: v for k, v in shown.items() if v} == expected
    for layer in {r[0] for r in rows}:
        total = sum(r[2] for r in rows if r[0] == layer)
        declared = sum(r[3] for r in rows if r[0] == layer)
        assert int(report.one("coverage_total", layer=layer)) == total
        assert int(report.one("declared", layer=layer)) == declared
        assert int(report.one("undeclared", layer=layer)) == total - declared
    (n_columns,) = warehouse.execute(
        "select count(*) from governance.classification_registry"
    ).fetchone()
    assert int(report.one("columns_total")) == n_columns
    assert {"bronze", "silver", "gold"} <= {layer for layer, _ in shown}


def test_group_access_matches_policy_seed(report: _Metrics, policy: Policy) -> None:
    assert policy.access_rows
    for (group, classification), access in policy.access_rows.items():
        assert report.one("access", group=group, classification=classification) == access


def test_columns_per_group_per_table_match_registry(
    report: _Metrics, warehouse: duckdb.DuckDBPyConnection, policy: Policy
) -> None:
    expected = _expected_table_access(warehouse, policy)
    assert expected
    assert int(report.one("governed_tables")) == len(expected)
    for relation, counts in expected.items():
        for group in {g for g, _ in policy.access_rows}:
            for level in LEVELS:
                shown = report.one("table_access", relation=relation, group=group, access=level)
                assert int(shown) == counts[(group, level)], (relation, group, level)


def test_phi_tables_match_registry(report: _Metrics, warehouse: duckdb.DuckDBPyConnection) -> None:
    rows = warehouse.execute(
        "select relation_name, count(*) filter (where classification = 'phi') "
        "from governance.classification_registry group by 1 "
        "having count(*) filter (where classification = 'phi') > 0"
    ).fetchall()
    assert rows, "the built lakehouse has PHI (bronze patients at least)"
    assert int(report.one("phi_tables")) == len(rows)
    for relation, n_phi in rows:
        assert int(report.one("phi_columns", relation=relation)) == n_phi
    assert len(report.find("phi_columns")) == len(rows)
    assert int(report.one("phi_columns_total")) == sum(n for _, n in rows)


def test_audit_sections_match_delta_tables(report: _Metrics, built: Built) -> None:
    with connect() as conn:
        invocations = conn.execute(
            "select count(distinct invocation_id) from delta_scan(?)",
            [str(audit_path(built.lakehouse, RUNS_TABLE))],
        ).fetchone()[0]
        reads, refused = conn.execute(
            "select count(*), count(*) filter (where status <> 'ok') from delta_scan(?)",
            [str(audit_path(built.lakehouse, READS_TABLE))],
        ).fetchone()
    assert invocations >= 1  # the fixture's dbt build and docs generate
    assert int(report.one("dbt_invocations")) == invocations
    assert int(report.one("reads")) == reads
    assert int(report.one("reads_refused")) == refused
    assert 1 <= len(report.find("run_nodes")) <= min(invocations, 20)
    assert 1 <= len(report.find("read_rows")) <= min(reads, 20)


def test_page_is_self_contained_and_escaped(report_file: Path, report: _Metrics) -> None:
    text = report_file.read_text(encoding="utf-8")
    assert report.tags["script"] == 0
    assert report.tags["link"] == 0 and report.tags["img"] == 0
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text
    assert "&lt;script&gt;alert(" in text  # the audited SQL, shown escaped
    assert report.headings == list(HEADINGS.values())
    assert len(report.find("generated_at")) == 1


def test_cli_writes_default_and_explicit_paths(built: Built, tmp_path: Path, warehouse) -> None:
    out = tmp_path / "nested" / "steward.html"
    args = ["governance", "report", "--lakehouse", str(built.lakehouse)]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "Governance report" in out.read_text(encoding="utf-8")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert default_output(built.lakehouse) == built.lakehouse / "reports" / "governance.html"
    assert default_output(built.lakehouse).is_file()


def test_cli_fails_cleanly_without_warehouse(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["governance", "report", "--lakehouse", str(tmp_path)])
    assert result.exit_code == 1
    assert "no warehouse" in result.output


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = (
        "no Chromium on PATH (`chromium` or `chromium-browser`): install Debian's `chromium` "
        "package (`.ci/run` does when run as root) to render the governance report headless"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def test_report_renders_in_headless_chromium(
    report_file: Path, report: _Metrics, tmp_path: Path
) -> None:
    browser = _chromium()
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report_file.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    dom = _parse(done.stdout)
    # The browser built the document: headings and every metric survive its parser.
    assert dom.headings == list(HEADINGS.values()), done.stdout[:2000]
    for title in HEADINGS.values():
        assert title in done.stdout
    assert len(dom.metrics) == len(report.metrics)
    assert sorted(map(_key, dom.metrics)) == sorted(map(_key, report.metrics))
    assert dom.one("phi_tables") == report.one("phi_tables")
    assert dom.tags["script"] == 0


def _key(metric: tuple[dict[str, str], str]) -> tuple[tuple[tuple[str, str], ...], str]:
    data, text = metric
    return tuple(sorted((k, v) for k, v in data.items() if k.startswith("data-"))), text
