"""Pool workers die with the job that forked them (``python_ingest.pool_worker``).

The kernel's parent-death signal is checked end to end by the crash drill
(``test_crash_safety.py``: after ``kill -9`` of a paused job, its workers are gone). This checks
the watchdog used where that signal does not exist: a worker whose parent is not the job exits,
and one whose parent is the job keeps running.
"""

from __future__ import annotations

import multiprocessing
import os
import time

from python_ingest.pool_worker import POLL_SECONDS, _exit_when_orphaned


def test_the_watchdog_exits_once_the_job_is_not_the_parent() -> None:
    fork = multiprocessing.get_context("fork")
    orphan = fork.Process(target=_exit_when_orphaned, args=(-1,))  # -1: never anyone's pid
    orphan.start()
    orphan.join(timeout=10)
    assert orphan.exitcode == 1
    kept = fork.Process(target=_exit_when_orphaned, args=(os.getpid(),))
    kept.start()
    time.sleep(3 * POLL_SECONDS)
    assert kept.is_alive()
    kept.kill()
    kept.join(timeout=10)
