"""Mirror a local lakehouse's bronze Delta tables as plain parquet folders.

A Spark session without the Delta Lake jars (this project's CI: Maven is unreachable) cannot
read the Delta tables the local engine lands. The mirror writes each table's *current snapshot*
(DuckDB's ``delta_scan``: removed files and older versions are not copied) as parquet under the
same relative path of another lakehouse, where the ``spark`` dbt target registers it like the
output of ``mmlake ingest --engine spark``. It is how the dbt graph is built on Spark from the same
bronze as the local build, so the two engines' silver and gold can be compared row for row.
The pseudonymisation key file is copied too, so both builds produce the same patient keys.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mmlake.duckdb_ext import connect
from mmlake.pseudonym import KEY_FILE


def mirror_bronze_as_parquet(source: Path, target: Path) -> list[str]:
    """Write every Delta table under ``source/bronze`` as parquet under ``target/bronze``.

    Returns the mirrored table names. Existing target folders are replaced.
    """
    tables = sorted(p.parent.name for p in (source / "bronze").glob("*/_delta_log"))
    (target / "bronze").mkdir(parents=True, exist_ok=True)
    with connect() as conn:
        for name in tables:
            out = target / "bronze" / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            src = str((source / "bronze" / name).resolve()).replace("'", "''")
            dst = str(out / "part-00000.parquet").replace("'", "''")
            conn.execute(f"copy (select * from delta_scan('{src}')) to '{dst}' (format parquet)")
    key = source / KEY_FILE
    if key.is_file():
        (target / KEY_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(key, target / KEY_FILE)
    return tables
