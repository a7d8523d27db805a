"""`mmlake ingest --watch`: a landing folder that fills up while the command polls it."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mmlake.duckdb_ext import connect
from tests.ingest.support import generate, scan

MMLAKE = str(Path(sys.executable).parent / "mmlake")


def _landed_files(bronze: Path) -> int:
    if not (bronze / "_ingest_log" / "_delta_log").is_dir():
        return 0
    with connect() as conn:
        sql = (
            f"select count(distinct path) from {scan(bronze, '_ingest_log')} where status='landed'"
        )
        return conn.execute(sql).fetchone()[0]


def _wait_for(predicate: Callable[[], bool], timeout: float = 600.0) -> None:
    """Poll until ``predicate`` holds; generous, since a loaded CI box starts Python slowly."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the watcher did not catch up in time"
        time.sleep(0.5)


def test_watch_lands_files_as_they_arrive(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cohort = generate(tmp_path_factory, seed=41, modalities=("ehr", "wearables"), patients=30)
    files = sorted((cohort / "wearables" / "landing").rglob("*.jsonl"))
    assert len(files) > 4
    landing = tmp_path / "landing"
    first, later = files[: len(files) // 2], files[len(files) // 2 :]
    for f in first:
        target = landing / f.relative_to(cohort / "wearables" / "landing")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    bronze = tmp_path / "lakehouse" / "bronze"
    watcher = subprocess.Popen(
        [
            MMLAKE,
            "ingest",
            "--source",
            str(landing),
            "--modality",
            "wearables",
            "--lakehouse",
            str(bronze.parent),
            "--watch",
            "--interval",
            "1",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: _landed_files(bronze) == len(first))
        for f in later:  # new micro-batches arrive while the command keeps polling
            target = landing / f.relative_to(cohort / "wearables" / "landing")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
        _wait_for(lambda: _landed_files(bronze) == len(files))
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=300)
    assert "stopped watching" in out, out + err
    with connect() as conn:
        read = conn.execute(
            f"select sum(records_read) from {scan(bronze, '_ingest_log')} where status='landed'"
        ).fetchone()[0]
        landed = conn.execute(f"select count(*) from {scan(bronze, 'wearables_events')}").fetchone()
        quarantined = conn.execute(f"select count(*) from {scan(bronze, '_quarantine')}").fetchone()
    lines = sum(1 for f in files for line in f.read_bytes().splitlines() if line.strip())
    assert read == lines  # every line of every file was read exactly once ...
    assert landed[0] + quarantined[0] == lines  # ... and landed or quarantined exactly once
