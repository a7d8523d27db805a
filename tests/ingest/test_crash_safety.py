"""A real ingestion process killed mid-way, then re-run, equals one clean run; and the killed
job's pool workers do not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmlake.duckdb_ext import connect
from mmlake.generate.cohort import ModalityRates
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.job import PAUSE_ENV

MMLAKE = str(Path(sys.executable).parent / "mmlake")
TABLES = ("wearables_events", "wearables_enrollment", "_quarantine")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    config = GenerationConfig(
        patients=40,
        seed=31,
        dirty_rate=0.02,
        modalities=("ehr", "wearables"),
        rates=ModalityRates(wearables=0.6),
    )
    generate_cohort(config, out)
    return out / "wearables"


def _ingest(source: Path, lakehouse: Path, pause: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
    if pause:
        env[PAUSE_ENV] = pause
    return subprocess.Popen(
        [
            MMLAKE,
            "ingest",
            "--source",
            str(source),
            "--modality",
            "wearables",
            "--lakehouse",
            str(lakehouse),
            "--quiet",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=600)
    assert process.returncode in (0, 3), out + err


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # exited while listed
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has exited: it only waits to be reaped)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _snapshot(lakehouse: Path) -> dict[str, list[str]]:
    """Per table, the sorted record hashes (or locators for the quarantine)."""
    snapshot = {}
    with connect() as conn:
        for table in TABLES:
            column = "_source_locator || _source_file" if table == "_quarantine" else "_record_hash"
            rows = conn.execute(
                f"select {column} from delta_scan('{lakehouse / 'bronze' / table}') order by 1"
            ).fetchall()
            snapshot[table] = [r[0] for r in rows]
    return snapshot


@pytest.mark.parametrize("step", ["started", "data"])
def test_killed_run_then_rerun_equals_a_clean_run(source: Path, tmp_path: Path, step: str) -> None:
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    _finish(_ingest(source, clean))
    process = _ingest(source, crashed, pause=step)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert f"paused after {step}" in line, line
    workers = _children(process.pid)
    assert workers, "the paused job has no pool workers to check"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    # Forked workers would wait for their next task for ever: they must die with the job.
    deadline = time.monotonic() + 30
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(workers), f"pool workers {_alive(workers)} outlived the killed job"
    _finish(_ingest(source, crashed))
    expected = _snapshot(clean)
    assert expected["wearables_events"], "the clean run landed nothing"
    assert _snapshot(crashed) == expected
    # And once more: a re-run of a finished ingestion changes nothing.
    _finish(_ingest(source, crashed))
    assert _snapshot(crashed) == expected
