"""Arrow tables handed from a pool worker to the job's process through shared memory.

A pool task's result crosses the process boundary pickled: a large table (a task's VCF
genotypes are a few hundred MB) was serialised to an IPC stream, copied into a bytes object,
pickled (another copy), written through a pipe and read back (two more). Each copy lands in
freshly allocated memory, and first-touch page faults made that path cost more CPU than the
Parquet write of the same rows.

A large table is instead written once, as an Arrow IPC file on a RAM-backed file system, and
the job's process memory-maps it: no further copy. The file is unlinked as soon as it is mapped
(the mapping stays valid). Each pool gets its own folder (named after the job's process id),
removed when the pool is done and swept by the next job if a kill left it behind, so a crashed
run cannot hold memory for long. Where there is no RAM-backed folder (not Linux), tables
cross as bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

# /dev/shm is tmpfs on Linux: a file there is memory, never written to disk.
SHM_ROOT = Path("/dev/shm")
SPOOL_PREFIX = "mmlake-ipc-"
# Smaller tables cross as bytes: a file per table would cost more than the copies it saves.
SPOOL_MIN_BYTES = 8 << 20
STALE_SECONDS = 600


# The folder this pool worker spools into (set by ``use`` when the pool starts it), if any.
_folder: str | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def sweep_stale() -> None:
    """Remove the spool folders of job processes that no longer run (killed mid-way).

    A folder is only taken for stale once it has also been idle for STALE_SECONDS: a process
    id says nothing across PID namespaces (containers sharing /dev/shm), while a live pool
    creates and removes files in its folder with every chunk.
    """
    if not SHM_ROOT.is_dir():
        return
    idle_since = time.time() - STALE_SECONDS
    for folder in SHM_ROOT.glob(f"{SPOOL_PREFIX}*"):
        pid = folder.name.removeprefix(SPOOL_PREFIX).split("-", 1)[0]
        with contextlib.suppress(OSError):
            if pid.isdigit() and not _alive(int(pid)) and folder.stat().st_mtime < idle_since:
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def spool_folder() -> Iterator[str | None]:
    """A shared-memory folder for one pool's hand-overs (None where there is none), removed
    with whatever is left in it when the pool is done."""
    sweep_stale()
    folder = SHM_ROOT / f"{SPOOL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(mode=0o700)
    except OSError:  # no /dev/shm (not Linux) or not writable: tables cross as bytes
        yield None
        return
    try:
        yield str(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def use(folder: str | None) -> None:
    """Pool initializer: spool this worker's large tables into ``folder``."""
    global _folder
    _folder = folder


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def pack(table: pa.Table) -> bytes | str:
    """The table as IPC bytes, or as the path of a spooled IPC file when it is large and this
    worker was given a spool folder."""
    if _folder is not None and table.get_total_buffer_size() >= SPOOL_MIN_BYTES:
        path = Path(_folder) / f"{uuid.uuid4().hex}.arrow"
        try:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            return str(path)
        except OSError:  # shared memory full: the bytes still work
            path.unlink(missing_ok=True)
    return _ipc_bytes(table)


def unpack(packed: bytes | str) -> pa.Table:
    """The table ``pack`` gave, zero-copy from the mapping when it was spooled."""
    if isinstance(packed, bytes):
        return pa.ipc.open_stream(packed).read_all()
    try:
        with pa.memory_map(packed) as source:
            return pa.ipc.open_file(source).read_all()
    finally:
        Path(packed).unlink(missing_ok=True)
