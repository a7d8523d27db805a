"""`mmlake similar build`: the HNSW index, then gold ``similar_cases`` for every patient.

Gold ``similar_cases`` holds the top-k of every patient in both modes, for pages and SQL
consumers that should not run a vector search themselves. Rows are replaced per (mode,
source_version): re-running on the same gold versions rewrites the same rows in one Delta
commit per mode (idempotent), while rows computed from older versions stay readable side by
side; consumers take ``max(source_version)`` per mode for the current neighbours.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from pathlib import Path

import pyarrow as pa

from mmlake.delta import is_delta_table, sql_string, write_delta
from mmlake.similar.index import IndexInfo, build_index, open_index
from mmlake.similar.model import (
    DEFAULT_K,
    GOLD_TABLE,
    IMAGING,
    MULTIMODAL,
    MULTIMODAL_TABLE,
    Neighbour,
    SimilarCaseError,
    gold_path,
    latest_version,
    utc_now,
)
from mmlake.similar.search import imaging_neighbours, load_multimodal, to_neighbours

SCHEMA = pa.schema(
    [
        pa.field("patient_key", pa.string(), nullable=False),
        pa.field("mode", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("neighbour_key", pa.string(), nullable=False),
        pa.field("distance", pa.float64(), nullable=False),
        pa.field("similarity", pa.float64(), nullable=False),
        pa.field("shared_modalities", pa.string(), nullable=False),
        pa.field("contributions", pa.string(), nullable=False),
        pa.field("cancer_type", pa.string()),
        pa.field("neighbour_cancer_type", pa.string()),
        pa.field("source_table", pa.string(), nullable=False),
        pa.field("source_version", pa.int64(), nullable=False),
        pa.field("computed_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


@dataclass(frozen=True)
class BuildResult:
    index: IndexInfo
    path: Path  # gold similar_cases
    rows: dict[str, int]  # mode -> rows written
    versions: dict[str, int]  # mode -> source_version


def _table(rows: list[Neighbour]) -> pa.Table:
    names = [f.name for f in fields(Neighbour)]
    columns = list(zip(*(astuple(r) for r in rows), strict=True)) if rows else [[]] * len(names)
    return pa.table(dict(zip(names, (list(c) for c in columns), strict=True)), schema=SCHEMA)


def _write(path: Path, mode: str, version: int, rows: list[Neighbour]) -> None:
    table = _table(rows)
    if is_delta_table(path):
        predicate = f"mode = {sql_string(mode)} and source_version = {version}"
        write_delta(path, table, mode="overwrite", predicate=predicate, schema_mode=None)
    else:
        write_delta(path, table, mode="append", schema_mode=None)


def imaging_rows(lakehouse: Path, k: int) -> tuple[list[Neighbour], int]:
    """Every indexed patient's imaging top-k, through the persisted index."""
    con, info = open_index(lakehouse)
    try:
        keys = [r[0] for r in con.execute("select patient_key from vectors order by 1").fetchall()]
        if len(keys) < 2:
            return [], info.source_version
        rows: list[Neighbour] = []
        for key in keys:
            rows += imaging_neighbours(con, info.source_version, key, None, k)
        return rows, info.source_version
    finally:
        con.close()


def multimodal_rows(lakehouse: Path, k: int) -> tuple[list[Neighbour], int]:
    """Every patient's multimodal top-k over gold patient_multimodal."""
    version = latest_version(lakehouse, MULTIMODAL_TABLE)
    space = load_multimodal(lakehouse, version)
    now = utc_now()
    rows: list[Neighbour] = []
    for row, matches in space.top_k_all(k):
        rows += to_neighbours(space, row, matches, version, now)
    return rows, version


def build(lakehouse: Path, k: int = DEFAULT_K, *, force: bool = False) -> BuildResult:
    """Build or reuse the index, then (re)write gold similar_cases for both modes."""
    if k < 1:
        raise SimilarCaseError(f"k must be at least 1 (got {k})")
    info = build_index(lakehouse, force=force)
    path = gold_path(lakehouse, GOLD_TABLE)
    counts: dict[str, int] = {}
    versions: dict[str, int] = {}
    for mode, compute in ((IMAGING, imaging_rows), (MULTIMODAL, multimodal_rows)):
        rows, version = compute(lakehouse, k)
        _write(path, mode, version, rows)
        counts[mode], versions[mode] = len(rows), version
    return BuildResult(info, path, counts, versions)
