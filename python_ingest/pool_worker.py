"""Set-up of the job's pool workers: where large results go, and dying with the job.

A killed job (``kill -9``, the OOM killer, a CI runner that stops) must not leave its pool
workers behind. They are forked, so each holds its own copy of the write end of the pool's task
pipe: the pipe never reads as closed, and a worker waiting for its next task would wait for
ever, holding its memory. On Linux the kernel is asked to kill the worker when the job's
process dies (``PR_SET_PDEATHSIG``); elsewhere a daemon thread notices the new parent and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

from python_ingest.ipc_spool import use as use_spool

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 1.0


def init_worker(spool_folder: str | None, job_pid: int) -> None:
    """Pool initializer: spool large tables into ``spool_folder``; die with ``job_pid``."""
    use_spool(spool_folder)
    if not _kernel_kills_orphan():
        threading.Thread(target=_exit_when_orphaned, args=(job_pid,), daemon=True).start()
    if os.getppid() != job_pid:  # the job died before this worker was set up
        os._exit(1)


def _kernel_kills_orphan() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    return False


def _exit_when_orphaned(job_pid: int) -> None:
    while os.getppid() == job_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)
