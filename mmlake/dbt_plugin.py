"""dbt-duckdb plugin of the ``local`` target: offline extensions and Delta publishing of gold.

Registered in ``profiles.yml`` (``plugins: [{module: mmlake.dbt_plugin, alias: mmlake}]``).
It does two things dbt-duckdb cannot do on its own:

1. Loads the ``delta`` and ``vss`` DuckDB extensions from the pinned wheels on every new
   DuckDB instance (``configure_connection``), so nothing is ever downloaded, and hands the
   pseudonymisation key to every cursor as the session variable ``mmlake_pseudonym_key``
   (``configure_cursor``), so it never appears in compiled SQL (mmlake/pseudonym.py).
2. Writes a gold model's rows as a new version of a real Delta table (``store``). The
   ``duckdb__publish_delta`` post-hook (macros/publish_delta.sql) stages the freshly built
   table as Parquet inside dbt's transaction, hands it over with ``adapter.store_relation``,
   and then swaps the DuckDB table for a view over ``delta_scan`` in the same transaction.

The plugin only ever *writes* Delta with ``deltalake``. Reading Delta through deltalake's
Arrow readers in the same process as DuckDB's delta extension has been seen to abort the
interpreter at exit (exit code 134), so every read of a Delta table goes through DuckDB.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from dbt.adapters.duckdb.credentials import DuckDBCredentials
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig

from mmlake.delta import write_delta
from mmlake.duckdb_ext import OFFLINE_CONFIG, load_bundled_extensions
from mmlake.pseudonym import ENV_VAR as PSEUDONYM_ENV_VAR

# Name of the scratch directory next to the DuckDB file; publish_delta.sql uses the same name.
STAGING_DIR = "_staging"


class Plugin(BasePlugin):
    """One instance per dbt-duckdb environment, shared by all dbt threads (stateless)."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """Read plugin options: ``extensions`` (wheel-bundled extensions to load)."""
        self._extensions: tuple[str, ...] = tuple(
            plugin_config.get("extensions") or ("delta", "vss")
        )

    def update_connection_config(self, creds: DuckDBCredentials, config: dict[str, Any]) -> None:
        """Prepare ``duckdb.connect``: create the lakehouse directories and forbid downloads.

        DuckDB creates neither the parent directory of its database file (a fresh
        LAKEHOUSE_ROOT is the normal case for a first build) nor the directory a ``COPY``
        writes into, so the staging directory used by publish_delta is created here too.
        """
        if creds.path and creds.path != ":memory:" and "://" not in creds.path:
            root = Path(creds.path).expanduser().resolve().parent
            (root / STAGING_DIR).mkdir(parents=True, exist_ok=True)
        for key, value in OFFLINE_CONFIG.items():
            config.setdefault(key, value)

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Load the bundled extensions once per DuckDB instance; cursors inherit them."""
        load_bundled_extensions(conn, self._extensions)

    def configure_cursor(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Set the pseudonymisation key on each cursor (session variables are per cursor)."""
        key = os.environ.get(PSEUDONYM_ENV_VAR, "").strip()
        if key:
            cursor.execute("set variable mmlake_pseudonym_key = ?", [key])

    def store(self, target_config: TargetConfig) -> None:
        """Write the staged Parquet file as a new version of the Delta table it names.

        ``target_config.location.path`` is the staging file; ``target_config.config`` is
        the hook's request dict with ``delta_location`` (may be relative to the working
        directory). ``adapter.store_relation`` has no return value, so the absolute table
        path is reported back by adding ``delta_uri`` to that same dict (dbt-duckdb hands
        the object through unchanged in-process); the hook builds the view from it.
        The overwrite keeps the Delta history: every build adds exactly one version.
        """
        request = target_config.config
        if target_config.location is None or not isinstance(request, dict):
            raise ValueError("publish_delta: store_relation needs a staging path and a dict")
        if "delta_location" not in request:
            raise ValueError("publish_delta: the request has no 'delta_location'")
        staging = Path(target_config.location.path)
        delta_path = Path(request["delta_location"]).expanduser().resolve()
        model = target_config.relation.identifier
        try:
            with pq.ParquetFile(staging) as parquet_file:
                # Streamed batch by batch: a large gold table is never held in memory at once.
                reader = pa.RecordBatchReader.from_batches(
                    parquet_file.schema_arrow, parquet_file.iter_batches()
                )
                write_delta(
                    delta_path,
                    reader,
                    mode="overwrite",
                    schema_mode="overwrite",
                    description=f"dbt model {model}, published by mmlake",
                )
        except Exception as exc:
            # deltalake's errors (e.g. "Os { code: 20 ... }") do not say what was written where.
            raise RuntimeError(
                f"publish_delta: writing model {model} as Delta table {delta_path} failed: {exc}"
            ) from exc
        finally:
            staging.unlink(missing_ok=True)
        request["delta_uri"] = str(delta_path)
