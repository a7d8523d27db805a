"""Bronze tables written through Spark: Delta when the session has Delta Lake, else parquet.

The pip ``pyspark`` ships without Delta Lake, and a session without the jars cannot write Delta.
Rather than fail, the spark engine then writes plain parquet to the same paths and says so once
per session. Parquet has no transaction log, so the exactly-once order of the ledger (see
``python_ingest.ledger``) is kept by a small commit protocol instead of Delta's atomic commits:

1. a commit writes its rows with Spark into a hidden directory ``<table>/_pending-<tag>-<id>/``
   (Spark and Hive-style readers skip names starting with ``_``, and a ``<table>/*.parquet``
   glob, DuckDB's say, does not descend into it);
2. when that write has succeeded, it records its plan, ``_PLAN.json`` (the part files of the
   table it replaces), written to a temporary name and renamed, so it exists whole or not at all;
3. it moves its part files into ``<table>/`` (each move an atomic rename), then deletes the
   replaced part files, then the pending directory.

A run killed before step 2 leaves a pending directory without a plan: the next run of the same
modality deletes it (nothing of it was visible). A run killed during step 3 leaves a plan: the
next run finishes it (every step is idempotent). In between, a reader may see a re-landed
file's rows twice for the few milliseconds of the renames; it never sees a half-written file.

Replacing the rows of some source files (a changed file, a half-landed one) rewrites the part
files that hold them: their other rows are copied into the new commit (copy-on-write), then the
old part files go. The table stays a flat folder of parquet files, which every engine reads;
files of one table may have different columns (schema evolution): read them with
``mergeSchema`` (Spark), ``union_by_name`` (DuckDB).

The parquet fallback assumes the lakehouse is a POSIX path the driver can rename in (a laptop,
CI, a shared mount), like the rest of the project. On a cluster, use Delta.
"""

from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import pyarrow as pa

from mmlake.delta import is_delta_table
from python_ingest.model import SOURCE_FILE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DELTA, PARQUET = "delta", "parquet"
PLAN = "_PLAN.json"
PENDING = "_pending-"
# What Spark answers when no data source of that name is registered (Spark 3.4+), and before.
_NOT_FOUND = ("DATA_SOURCE_NOT_FOUND", "Failed to find data source")
_DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"


class EngineMismatchError(ValueError):
    """A bronze table exists in the other format (Delta vs parquet) than this session writes."""


def notify_once(spark: SparkSession, message: str) -> bool:
    """Print ``message`` to stderr the first time it is given for this session."""
    shown: set[str] = spark.__dict__.setdefault("_mmlake_notices", set())
    if message in shown:
        return False
    shown.add(message)
    print(message, file=sys.stderr, flush=True)
    return True


def has_data_source(spark: SparkSession, name: str) -> bool:
    """Whether ``spark.read.format(name)`` resolves on this session.

    Probed by resolving a path that does not exist: a registered source fails on the path
    (``PATH_NOT_FOUND``, "not a Delta table"...), a missing one with ``DATA_SOURCE_NOT_FOUND``.
    No JVM internals, so it also works on Spark Connect.
    """
    probe = f"/nonexistent/mmlake-probe-{uuid.uuid4().hex}"
    try:
        _ = spark.read.format(name).load(probe).columns
    except Exception as exc:
        return not any(marker in str(exc) for marker in _NOT_FOUND)
    return True


def table_format(spark: SparkSession, bronze: Path) -> str:
    """``delta`` if this session can write Delta, else ``parquet`` (announced once)."""
    cached = spark.__dict__.get("_mmlake_format")
    if cached is None:
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
        delta_ok = _DELTA_EXTENSION in extensions and has_data_source(spark, DELTA)
        cached = DELTA if delta_ok else PARQUET
        spark.__dict__["_mmlake_format"] = cached
    if cached == PARQUET:
        notify_once(
            spark,
            f"Delta Lake jars not found on the Spark classpath: writing parquet to {bronze}; "
            f"add io.delta:delta-spark_2.13 (and {_DELTA_EXTENSION}) for Delta",
        )
    return cached


def spark_string(value: str) -> str:
    """A Spark SQL string literal (Spark escapes with backslashes, not doubled quotes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SparkTables:
    """Reads, appends and replaces bronze tables through one Spark session, in one format."""

    def __init__(self, spark: SparkSession, fmt: str) -> None:
        self.spark = spark
        self.format = fmt

    # -- reading -----------------------------------------------------------------------------

    def exists(self, path: Path) -> bool:
        return is_delta_table(path) if self.format == DELTA else self.exists_as_parquet(path)

    @staticmethod
    def exists_as_parquet(path: Path) -> bool:
        return path.is_dir() and any(_visible_parts(path))

    def check(self, path: Path) -> None:
        """Refuse to mix formats in one table (parquet files in a Delta folder, or the reverse)."""
        if self.format == PARQUET and is_delta_table(path):
            raise EngineMismatchError(
                f"{path} is a Delta table, but this Spark session has no Delta Lake: land it "
                "with --engine local, or add the Delta Lake jars to the session"
            )
        if self.format == DELTA and not is_delta_table(path) and self.exists_as_parquet(path):
            raise EngineMismatchError(
                f"{path} holds parquet files from a Spark session without Delta Lake; "
                "move it aside (or keep using a session without Delta) before writing Delta"
            )

    def read(self, path: Path) -> DataFrame | None:
        if not self.exists(path):
            return None
        if self.format == DELTA:
            return self.spark.read.format(DELTA).load(str(path))
        return self.spark.read.option("mergeSchema", "true").parquet(str(path))

    def arrow_schema(self, path: Path) -> pa.Schema | None:
        """The table's schema as Arrow types (what the type-conflict check compares)."""
        from pyspark.sql.pandas.types import to_arrow_schema

        frame = self.read(path)
        return None if frame is None else to_arrow_schema(frame.schema, timezone="UTC")

    # -- writing -----------------------------------------------------------------------------

    def append(self, path: Path, frame: DataFrame, tag: str) -> None:
        if self.format == DELTA:
            frame.write.format(DELTA).mode("append").option("mergeSchema", "true").save(str(path))
        else:
            self._commit(path, frame, [], tag)

    def replace(
        self,
        path: Path,
        frame: DataFrame | None,
        keys: list[str],
        tag: str,
        column: str = SOURCE_FILE,
    ) -> None:
        """Swap the rows whose ``column`` is in ``keys`` for ``frame`` (None: just remove them).

        ``column`` is the source file for reader tables; ``imaging_features`` replaces by
        Series Instance UID, since several series may share one folder (its source file).
        """
        if not self.exists(path):
            if frame is not None:
                self.append(path, frame, tag)
            return
        from pyspark.sql import functions as sf

        if self.format == DELTA:
            # Delta's own replaceWhere / DELETE: one atomic commit each, as on the local engine.
            # SQL rather than delta-spark's Python API, which the jars alone do not provide.
            predicate = f"{column} IN ({', '.join(spark_string(k) for k in keys)})"
            if frame is None:
                self.spark.sql(f"DELETE FROM delta.`{path}` WHERE {predicate}")
                return
            (
                frame.write.format(DELTA)
                .mode("overwrite")
                .option("replaceWhere", predicate)
                .option("mergeSchema", "true")
                .save(str(path))
            )
            return
        holding = (
            self.read(path)
            .where(sf.col(column).isin(keys))
            .select(sf.col("_metadata.file_path").alias("uri"))
            .distinct()
            .collect()
        )
        replaced = sorted({local_path(row.uri) for row in holding})
        if not replaced and frame is None:
            return
        if replaced:
            kept = (
                self.spark.read.option("mergeSchema", "true")
                .parquet(*(str(p) for p in replaced))
                .where(~sf.col(column).isin(keys))
            )
            frame = kept if frame is None else frame.unionByName(kept, allowMissingColumns=True)
        self._commit(path, frame, replaced, tag)

    def _commit(self, path: Path, frame: DataFrame, replaced: list[Path], tag: str) -> None:
        """Steps 1-3 of the module docstring."""
        path.mkdir(parents=True, exist_ok=True)
        pending = path / f"{PENDING}{tag}-{uuid.uuid4().hex[:12]}"
        frame.write.mode("errorifexists").parquet(str(pending))
        for old in replaced:
            if old.parent != path:
                raise RuntimeError(f"{old} is not a part file of {path}; refusing to delete it")
        plan = pending / PLAN
        temporary = pending / f".{PLAN}.tmp"
        temporary.write_text(json.dumps({"replaced": [p.name for p in replaced]}))
        temporary.replace(plan)
        _apply(path, pending)

    def recover(self, path: Path, tag: str) -> None:
        """Finish or undo the commits of ``tag`` (one modality) that a killed run left."""
        if self.format != PARQUET or not path.is_dir():
            return
        for pending in sorted(path.glob(f"{PENDING}{tag}-*")):
            if (pending / PLAN).is_file():
                _apply(path, pending)
            else:
                shutil.rmtree(pending, ignore_errors=True)


def _visible_parts(path: Path) -> list[Path]:
    return [p for p in path.glob("*.parquet") if not p.name.startswith(("_", "."))]


def local_path(uri: str) -> Path:
    """``file:///a/b%20c.parquet`` -> ``/a/b c.parquet`` (Spark reports URIs)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise RuntimeError(f"the parquet fallback needs a local lakehouse, not {uri}")
    return Path(unquote(parsed.path))


def _apply(table: Path, pending: Path) -> None:
    """Step 3: move the new part files in, delete the replaced ones, drop the pending folder.

    Hadoop's local file system keeps a ``.<name>.crc`` checksum beside each part file; it
    travels (or goes) with its file so no stale checksum is left behind.
    """
    plan = json.loads((pending / PLAN).read_text())
    for part in sorted(pending.glob("part-*")):
        part.replace(table / part.name)
        crc = pending / f".{part.name}.crc"
        if crc.exists():
            crc.replace(table / crc.name)
    for name in plan["replaced"]:
        (table / name).unlink(missing_ok=True)
        (table / f".{name}.crc").unlink(missing_ok=True)
    shutil.rmtree(pending, ignore_errors=True)
