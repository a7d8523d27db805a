"""Run dbt commands of this project from Python, with the repository kept clean.

``run_dbt(["build"])`` is what ``mmlake`` calls for the demo. It pins the project and
profiles directory to the repository root, points ``LAKEHOUSE_ROOT`` at an absolute path
and sends dbt's ``target/`` and ``logs/`` into ``<lakehouse>/dbt/`` - whatever the caller's
working directory is.

The ``spark`` target runs Spark in-process (dbt-spark ``method: session``): the first spark
command starts a JVM inside the calling interpreter that lives until it exits. Run it in a
subprocess (``python -m mmlake.dbt_runner build --target spark``) when that matters, e.g.
from tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mmlake.paths import lakehouse_root, project_root
from mmlake.pseudonym import ENV_VAR as PSEUDONYM_ENV_VAR
from mmlake.pseudonym import pseudonym_key

REPO_ROOT = project_root()


class DbtRunError(RuntimeError):
    """A dbt command failed; the message names the failing nodes and the log file."""


def landed_bronze_tables(root: Path) -> list[str]:
    """Bronze table folders under ``root`` that hold data (Delta log or parquet files)."""
    bronze = root / "bronze"
    if not bronze.is_dir():
        return []
    return sorted(
        folder.name
        for folder in bronze.iterdir()
        if folder.is_dir()
        and ((folder / "_delta_log").is_dir() or next(folder.rglob("*.parquet"), None) is not None)
    )


def dbt_env(target: str | None = None, lakehouse: Path | None = None) -> dict[str, str]:
    """Environment variables that make a dbt invocation of this project self-contained."""
    root = lakehouse_root(lakehouse)
    env = {
        "DBT_PROJECT_DIR": str(REPO_ROOT),
        "DBT_PROFILES_DIR": str(REPO_ROOT),
        "LAKEHOUSE_ROOT": str(root),
        "DBT_TARGET_PATH": str(root / "dbt" / "target"),
        "DBT_LOG_PATH": str(root / "dbt" / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        PSEUDONYM_ENV_VAR: pseudonym_key(root),
        # The bronze folders holding data: on Spark, a source whose folder is not listed is
        # registered as an empty view of its declared columns (macros/bronze).
        "MMLAKE_BRONZE_LANDED": ",".join(landed_bronze_tables(root)),
    }
    if target is not None:
        # profiles.yml selects its target from MMLAKE_TARGET; an explicit --target in the
        # dbt arguments still wins.
        env["MMLAKE_TARGET"] = target
    return env


@contextmanager
def _environ(overrides: Mapping[str, str]) -> Iterator[None]:
    """Set env vars for one dbt invocation and restore the caller's values afterwards."""
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open after the invocation.

    dbt-duckdb holds the warehouse file open for the life of the process (``keep_open``),
    which would block the caller from opening ``warehouse.duckdb`` itself afterwards.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    try:
        env = DuckDBConnectionManager.env()
    except Exception:  # no DuckDB environment was created (other target, parse only)
        return
    DuckDBConnectionManager.close_all_connections()
    env.close()


def _failure_summary(result: object) -> str:
    """Names and messages of the failed nodes of a dbtRunnerResult."""
    lines = []
    for node_result in getattr(getattr(result, "result", None), "results", None) or []:
        status = str(getattr(node_result, "status", "")).lower()
        if status in {"error", "fail", "runtime error"}:
            node = getattr(node_result, "node", None)
            name = getattr(node, "unique_id", "?")
            lines.append(f"  {name}: {status}: {getattr(node_result, 'message', '')}")
    return "\n".join(lines)


def _audit_invocation(
    env: Mapping[str, str],
    args: Sequence[str],
    target: str | None,
    success: bool,
    started: datetime,
) -> None:
    """Append the invocation to the Delta audit table <lakehouse>/governance/audit_dbt_runs.

    Done here, after dbt returns, because DuckDB cannot write Delta from the on-run-end hook;
    so only invocations through run_dbt are audited (docs/governance.md).
    """
    from mmlake.governance.audit import flush_pending_reads, record_dbt_invocation

    if (
        args
        and args[0] == "run-operation"
        and (target or os.environ.get("MMLAKE_TARGET", "local")) == "local"
    ):
        # governed_query leaves its audit rows in DuckDB (it cannot write Delta).
        flush_pending_reads(Path(env["LAKEHOUSE_ROOT"]))
    record_dbt_invocation(
        Path(env["LAKEHOUSE_ROOT"]),
        Path(env["DBT_TARGET_PATH"]),
        command=list(args),
        target=target,
        success=success,
        started=started,
    )


def run_dbt(args: Sequence[str], target: str | None = None, lakehouse: Path | None = None) -> None:
    """Run ``dbt <args>`` in-process on ``target`` (default: profile default, i.e. local).

    Raises :class:`DbtRunError` if dbt reports failure, with the failing nodes and the
    path of the dbt log in the message.
    """
    from dbt.cli.main import dbtRunner  # heavy import; keep `import mmlake...` cheap

    env = dbt_env(target, lakehouse)
    Path(env["LAKEHOUSE_ROOT"]).mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    with _environ(env):
        try:
            result = dbtRunner().invoke(list(args))
        finally:
            _release_duckdb()
    _audit_invocation(env, args, target, bool(result.success), started)
    if result.success:
        return
    message = f"dbt {' '.join(args)} failed"
    if target is not None:
        message += f" on target {target}"
    if result.exception is not None:
        message += f": {result.exception}"
    summary = _failure_summary(result)
    if summary:
        message += "\n" + summary
    message += f"\nSee {env['DBT_LOG_PATH']}/dbt.log"
    raise DbtRunError(message) from result.exception


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmlake.dbt_runner <dbt args>``: run_dbt from a shell or a subprocess."""
    try:
        run_dbt(list(sys.argv[1:] if argv is None else argv))
    except DbtRunError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
