"""What the job's pool workers get from it: shared memory for large tables, loaded modules.

A spooled table must come back equal and leave no file behind; a folder left by a killed job is
swept by the next one; a job whose every table goes through the spool lands exactly what a
single-process job lands; and the workers start with what pyarrow loads on first use.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

import python_ingest.ipc_spool as spool
from python_ingest.genomics import GenomicsReader
from python_ingest.job import IngestJob
from tests.ingest.support import bronze_state, generate

needs_shm = pytest.mark.skipif(not spool.SHM_ROOT.is_dir(), reason="no /dev/shm on this OS")


def _ours() -> list[Path]:
    """The spool folders this test process owns."""
    return sorted(spool.SHM_ROOT.glob(f"{spool.SPOOL_PREFIX}{os.getpid()}-*"))


GENOMICS_TABLES = ("genomics_variants", "genomics_samples", "_quarantine")


@pytest.fixture
def genotypes() -> pa.Table:
    calls = pa.array([[[0, 1], [1, 1]], [[0, 0], None]], pa.list_(pa.list_(pa.int32())))
    return pa.table({"contigName": ["1", "2"], "calls": calls}).slice(1, 1)


@needs_shm
def test_a_large_table_is_spooled_and_comes_back_equal(
    genotypes: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool, "SPOOL_MIN_BYTES", 0)
    with spool.spool_folder() as folder:
        assert folder is not None and _ours() == [Path(folder)]
        spool.use(folder)
        try:
            packed = spool.pack(genotypes)
        finally:
            spool.use(None)
        assert isinstance(packed, str) and Path(packed).parent == Path(folder)
        back = spool.unpack(packed)
        assert back.equals(genotypes)
        assert not Path(packed).exists()  # unlinked once mapped; the table still reads
        assert back.column("calls").to_pylist() == [[[0, 0], None]]
    assert _ours() == []


@needs_shm
def test_without_a_folder_or_below_the_bound_a_table_crosses_as_bytes(
    genotypes: pa.Table,
) -> None:
    assert isinstance(spool.pack(genotypes), bytes)  # this process was given no folder
    with spool.spool_folder() as folder:
        spool.use(folder)
        try:
            packed = spool.pack(genotypes)  # far below SPOOL_MIN_BYTES
        finally:
            spool.use(None)
        assert isinstance(packed, bytes) and spool.unpack(packed).equals(genotypes)


@needs_shm
def test_the_folder_of_a_killed_job_is_swept_and_a_running_ones_kept() -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = spool.SHM_ROOT / f"{spool.SPOOL_PREFIX}{gone.stdout.strip()}-deadbeef"
    dead.mkdir()
    (dead / "left.arrow").write_bytes(b"a task's table nobody unpacked")
    try:
        spool.sweep_stale()
        assert dead.is_dir()  # its process is gone, but it was busy a moment ago
        idle = time.time() - spool.STALE_SECONDS - 1
        os.utime(dead, (idle, idle))
        with spool.spool_folder() as folder:
            assert not dead.exists()
            assert folder is not None and Path(folder).is_dir()
            os.utime(folder, (idle, idle))
            spool.sweep_stale()
            assert Path(folder).is_dir()  # idle too, but this process still runs
    finally:
        if dead.exists():
            for child in dead.iterdir():
                child.unlink()
            dead.rmdir()


@needs_shm
def test_a_job_handing_every_table_over_spooled_lands_what_one_process_lands(
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cohort = generate(tmp_path_factory, seed=23, modalities=("ehr", "genomics"), patients=12)
    source = cohort / "genomics"
    alone = IngestJob(GenomicsReader(), tmp_path / "alone", workers=1).run(source)

    handed: list[str] = []
    real_unpack = spool.unpack

    def counting_unpack(packed: bytes | str) -> pa.Table:
        if isinstance(packed, str):
            handed.append(packed)
        return real_unpack(packed)

    # Every table is spooled (the pool's workers are forked after this), and the job's own
    # unpacking is counted, so the test knows the shared-memory path was taken.
    monkeypatch.setattr(spool, "SPOOL_MIN_BYTES", 0)
    monkeypatch.setattr("python_ingest.model.unpack", counting_unpack)
    pooled = IngestJob(GenomicsReader(), tmp_path / "pooled", workers=2).run(source)

    assert handed and not any(Path(p).exists() for p in handed)
    assert _ours() == []
    assert pooled.records_quarantined > 0
    counted = ("records_read", "records_landed", "records_quarantined", "files_landed")
    assert [getattr(pooled, c) for c in counted] == [getattr(alone, c) for c in counted]
    assert bronze_state(tmp_path / "pooled" / "bronze", GENOMICS_TABLES) == bronze_state(
        tmp_path / "alone" / "bronze", GENOMICS_TABLES
    )


PROBE = """
import sys
import time
from pathlib import Path

from python_ingest.job import IngestJob
from python_ingest.notes import NotesReader


class Probe(NotesReader):
    def read(self, path):
        if "pandas" not in sys.modules:
            raise RuntimeError("this worker had to load pandas itself")
        return super().read(path)

    def read_many(self, paths):
        return [self.read(p) for p in paths]


assert "pandas" not in sys.modules, "importing the job loaded pandas: nothing to prove"
summary = IngestJob(Probe(), Path(sys.argv[2]), workers=2).run(Path(sys.argv[1]))
print(summary.records_read, summary.records_quarantined)
"""


def test_pool_workers_start_with_what_pyarrow_loads_on_first_use(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """pyarrow loads pandas on its first conversion, ~0.25 s: paid once before the fork, not
    by every worker on every run. Checked in a fresh interpreter, where nothing loaded it yet."""
    pytest.importorskip("pandas")
    cohort = generate(tmp_path_factory, seed=29, modalities=("ehr", "notes"), patients=6)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cohort / "notes"), str(tmp_path / "lake")],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    read, quarantined = map(int, done.stdout.split())
    assert read > 0 and quarantined == 0, done.stderr
