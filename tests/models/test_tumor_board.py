"""`mmlake tumor-board` on the shared built lakehouse: provenance, masks, absence, reviews.

Every evidence item's ``data-provenance`` must name a Delta table, a version and a key that
find an existing row when read back with ``delta_scan(path, version => N)``; a researcher
(PHI masked) must not see what a clinician sees; a patient missing modalities gets a page that
names them; a review lands in Delta; bad input is one line and exit 2. Then a real headless
Chromium loads the pages: no console messages, every section present, a screenshot saved.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from mmlake.duckdb_ext import connect
from mmlake.governance.audit import READS_TABLE, audit_path
from mmlake.tumor_board.cli import app
from mmlake.tumor_board.pages import render_pages
from mmlake.tumor_board.reviews import reviews_path
from mmlake.tumor_board.sections import MODALITIES, SECTIONS
from mmlake.tumor_board.serve import make_server
from tests.models.conftest import Built

CLINICIAN = "oncologist@mmlake.local"
RESEARCHER = "researcher@mmlake.local"
runner = CliRunner()


class _Page(HTMLParser):
    """Collects data-provenance items, section ids, messages and the body's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict] = []
        self.sections: list[str] = []
        self.messages: list[str] = []
        self.body: dict[str, str] = {}
        self._in_message = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k: v or "" for k, v in attrs}
        if "data-provenance" in data:
            self.items.append(json.loads(data["data-provenance"]))
        if tag == "section" and "data-section" in data:
            self.sections.append(data["data-section"])
        if tag == "body":
            self.body = data
        self._in_message = "data-message" in data

    def handle_data(self, data: str) -> None:
        if self._in_message:
            self.messages.append(data)
            self._in_message = False


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _patients(warehouse: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """A consented patient of study 001 with the most modalities, and one with the fewest."""
    rows = warehouse.execute(
        "select m.patient_key, m.n_modalities from gold.patient_multimodal as m "
        "join silver.stg_ehr__research_consents as c on c.patient_key = m.patient_key "
        "join silver.stg_ehr__research_subjects as s on s.patient_key = m.patient_key "
        "where c.consent_status = 'active' and s.study_id = 'MMLAKE-ONC-001' "
        "order by m.n_modalities desc, m.patient_key"
    ).fetchall()
    assert rows, "no consented patient in study MMLAKE-ONC-001"
    return rows[0][0], rows[-1][0]


@pytest.fixture(scope="module")
def chosen(warehouse: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    return _patients(warehouse)


@pytest.fixture(scope="module")
def clinician_pages(built: Built, chosen: tuple[str, str], tmp_path_factory) -> list[Path]:
    return list(
        render_pages(built.lakehouse, CLINICIAN, list(chosen), tmp_path_factory.mktemp("tb"))
    )


def test_every_item_resolves_at_its_delta_version(built: Built, clinician_pages: list[Path]):
    checked = traced = 0
    with connect() as conn:
        for path in clinician_pages:
            page = _parse(path)
            assert page.items
            for item in page.items:
                assert item["delta_table"] and item["delta_version"] is not None, item
                assert item["delta_key"], item
                where = " and ".join(f'"{col}" = ?' for col in item["delta_key"])
                (found,) = conn.execute(
                    f"select count(*) from delta_scan(?, version => {int(item['delta_version'])}) "
                    f"where {where}",
                    [str(built.lakehouse / item["delta_table"]), *item["delta_key"].values()],
                ).fetchone()
                assert found >= 1, item
                checked += 1
                if item["bronze_record_hash"]:
                    (one,) = conn.execute(
                        f"select count(*) from delta_scan(?, version => {item['bronze_version']}) "
                        "where _record_hash = ?",
                        [str(built.lakehouse / item["bronze_table"]), item["bronze_record_hash"]],
                    ).fetchone()
                    assert one >= 1, item
                    assert item["source_file"] and item["ingest_batch"], item
                    traced += 1
    assert checked and traced
    methods = {i["method"] for p in clinician_pages for i in _parse(p).items}
    assert any(m.startswith("nlp:") for m in methods), methods


def test_render_is_audited(built: Built, clinician_pages: list[Path]) -> None:
    with connect() as conn:
        (n,) = conn.execute(
            "select count(*) from delta_scan(?) where via = 'mmlake tumor-board' "
            "and principal = ? and sql like 'render tumor-board pages%'",
            [str(audit_path(built.lakehouse, READS_TABLE)), CLINICIAN],
        ).fetchone()
    assert n >= 1


def test_masked_principal_sees_masks(
    built: Built, warehouse: duckdb.DuckDBPyConnection, chosen: tuple[str, str], tmp_path: Path
) -> None:
    key = chosen[0]
    mrn, family, birth = warehouse.execute(
        "select mrn, family_name, cast(birth_date as varchar) from "
        "silver.stg_ehr__patient_identifiers where patient_key = ?",
        [key],
    ).fetchone()
    clinician = (tmp_path / "c").joinpath(f"{key}.html")
    render_pages(built.lakehouse, CLINICIAN, [key], tmp_path / "c")
    assert mrn in clinician.read_text(encoding="utf-8")
    (page,) = render_pages(built.lakehouse, RESEARCHER, [key], tmp_path / "r")
    text = page.read_text(encoding="utf-8")
    for secret in (mrn, family, birth):
        assert secret not in text
    assert "[REDACTED]" in text
    assert f'data-principal="{RESEARCHER}"' in text


def test_page_names_absent_modalities(
    built: Built, warehouse: duckdb.DuckDBPyConnection, chosen: tuple[str, str], clinician_pages
) -> None:
    key = chosen[1]
    flags = warehouse.execute(
        "select has_ehr, has_genomics, has_imaging, has_notes, has_wearables "
        "from gold.patient_multimodal where patient_key = ?",
        [key],
    ).fetchone()
    absent = [m for m, has in zip(MODALITIES, flags, strict=True) if not has]
    assert absent, "the fewest-modality patient has every modality"
    page = _parse(next(p for p in clinician_pages if p.name == f"{key}.html"))
    assert page.sections == list(SECTIONS)
    assert f"Absent modalities: {', '.join(absent)}." in page.messages


def test_review_written_to_delta(built: Built, chosen: tuple[str, str]) -> None:
    args = ["review", "--patient", chosen[0], "--decision", "refer to trial"]
    args += ["--comment", "EGFR L858R; discuss trial", "--as", CLINICIAN]
    args += ["--risk-model-version", "5", "--lakehouse", str(built.lakehouse)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with connect() as conn:
        rows = conn.execute(
            "select reviewer, decision, comment, risk_model_version, reviewed_at "
            "from delta_scan(?) where patient_key = ?",
            [str(reviews_path(built.lakehouse)), chosen[0]],
        ).fetchall()
    assert ("oncologist@mmlake.local", "refer to trial", "EGFR L858R; discuss trial", "5") in [
        r[:4] for r in rows
    ]
    assert all(r[4].tzinfo is not None for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patient", "f" * 64, "--as", CLINICIAN], "unknown patient key"),
        (["--all", "--as", "nobody@nowhere"], "unknown principal"),
        (["review", "--patient", "f" * 64, "--decision", "x", "--as", CLINICIAN], "unknown"),
    ],
)
def test_bad_input_is_one_line(built: Built, tmp_path: Path, args: list[str], message: str):
    full = [*args, "--lakehouse", str(built.lakehouse)]
    if args[0] != "review":
        full += ["--out", str(tmp_path)]
    result = runner.invoke(app, full)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines


def test_missing_index_still_renders(built: Built, chosen: tuple[str, str], tmp_path: Path):
    if (built.lakehouse / "gold" / "similar_cases" / "_delta_log").is_dir():
        pytest.skip("the similar-case index exists in this lakehouse")
    args = ["--patient", chosen[0], "--as", CLINICIAN, "--lakehouse", str(built.lakehouse)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("error:")
    assert "mmlake similar build" in result.output
    assert "mmlake similar build" in (tmp_path / f"{chosen[0]}.html").read_text(encoding="utf-8")


def test_serve_accepts_the_review_form(
    built: Built, chosen: tuple[str, str], clinician_pages: list[Path]
) -> None:
    server = make_server(clinician_pages[0].parent, built.lakehouse, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
        with opener.open(f"{base}/index.html", timeout=30) as response:
            assert chosen[0][:16] in response.read().decode()
        form = {"patient_key": chosen[1], "reviewer": CLINICIAN, "decision": "discuss again"}
        form |= {"comment": "served", "page_generated_at": "2026-01-01T00:00:00+00:00"}
        body = urllib.parse.urlencode(form).encode()
        with opener.open(f"{base}/review", data=body, timeout=60) as response:
            assert response.status == 200 and "review recorded" in response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    with connect() as conn:
        rows = conn.execute(
            "select decision, page_generated_at from delta_scan(?) where comment = 'served' "
            "and patient_key = ?",
            [str(reviews_path(built.lakehouse)), chosen[1]],
        ).fetchall()
    assert rows and rows[-1][0] == "discuss again" and rows[-1][1].year == 2026


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no Chromium on PATH (`chromium` or `chromium-browser`): install Debian's `chromium`"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def test_pages_load_in_headless_chromium(clinician_pages: list[Path], tmp_path: Path) -> None:
    browser = _chromium()
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    base += ["--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    base += ["--enable-logging=stderr", "--v=0"]
    env = {**os.environ, "HOME": str(tmp_path)}
    for path in clinician_pages:
        done = subprocess.run(
            [*base, "--dump-dom", path.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        assert not console, console
        dom = _Page()
        dom.feed(done.stdout)
        assert dom.sections == list(SECTIONS)
        # The script ran to its end: it counts the items it wired for click/hover.
        assert dom.body.get("data-provenance-ready") == str(len(dom.items)), dom.body
        shot = tmp_path / f"{path.stem[:16]}.png"
        done = subprocess.run(
            [*base, "--window-size=1200,2400", f"--screenshot={shot}", path.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
        print(f"tumor-board screenshot: {shot}")
