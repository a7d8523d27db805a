"""Load DuckDB extensions from the ``duckdb-extension-*`` wheels, never from the network.

DuckDB normally installs extensions by downloading them from extensions.duckdb.org on first
use. The lakehouse must work offline and reproducibly, so the ``delta`` and ``vss`` extensions
are pinned as Python wheels (``duckdb-extension-delta==1.5.5`` ...) and loaded here from the
wheel's file by absolute path. dbt (through :mod:`mmlake.dbt_plugin`) and plain Python code
share this module so both see the same extension binaries.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import duckdb

DEFAULT_EXTENSIONS: tuple[str, ...] = ("delta", "vss")

# Connection config that forbids DuckDB from fetching extensions on its own; anything the
# lakehouse needs is loaded explicitly by load_bundled_extensions().
OFFLINE_CONFIG: dict[str, str | bool] = {"autoinstall_known_extensions": False}


class BundledExtensionError(RuntimeError):
    """An extension wheel is missing or was built for a different DuckDB version."""


def bundled_extension_path(name: str) -> Path:
    """Return the extension file shipped in the ``duckdb-extension-<name>`` wheel.

    The wheel lays files out as ``extensions/v<duckdb version>/<name>.duckdb_extension``; an
    extension only loads into the DuckDB build it was compiled for, so the directory must
    match the running ``duckdb.__version__`` exactly.
    """
    package = f"duckdb_extension_{name}"
    wheel = f"duckdb-extension-{name}=={duckdb.__version__}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BundledExtensionError(
            f"DuckDB extension '{name}' is not installed: the Python package '{package}' is "
            f"missing. Install the wheel with `pip install {wheel}` (it is part of the project "
            "requirements); the lakehouse never downloads extensions at runtime."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        available = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        raise BundledExtensionError(
            f"DuckDB extension '{name}' has no build for DuckDB {duckdb.__version__}: expected "
            f"{path}; the wheel provides {available or 'nothing'}. Install `{wheel}`."
        )
    return path


def load_bundled_extensions(
    conn: duckdb.DuckDBPyConnection, names: Iterable[str] = DEFAULT_EXTENSIONS
) -> None:
    """LOAD each extension in ``names`` into ``conn`` from its wheel.

    Extensions are loaded into the database instance, so cursors derived from ``conn`` see
    them too. Already-loaded extensions are skipped, which keeps repeated calls (one per dbt
    connection) cheap.
    """
    loaded = {
        row[0]
        for row in conn.execute(
            "select extension_name from duckdb_extensions() where loaded"
        ).fetchall()
    }
    for name in names:
        if name in loaded:
            continue
        path = str(bundled_extension_path(name)).replace("'", "''")
        conn.execute(f"LOAD '{path}'")


def connect(
    database: str | Path = ":memory:",
    *,
    read_only: bool = False,
    extensions: Iterable[str] = DEFAULT_EXTENSIONS,
) -> duckdb.DuckDBPyConnection:
    """Open DuckDB offline with the bundled extensions loaded.

    Use this (not bare ``duckdb.connect``) to open ``warehouse.duckdb``: the gold relations are
    views over ``delta_scan`` and fail to bind unless the delta extension is loaded.
    """
    conn = duckdb.connect(str(database), read_only=read_only, config=dict(OFFLINE_CONFIG))
    try:
        load_bundled_extensions(conn, extensions)
    except Exception:
        conn.close()
        raise
    return conn
