"""The HNSW index over imaging embeddings (DuckDB vss), persisted in the lakehouse.

One vector per patient: the embedding of the patient's baseline series (the earliest study
after the index date; series key breaks ties), because a case is compared as it presented,
and one vector per patient keeps top-k free of a patient's own follow-up scans.

The index lives in ``<lakehouse>/vector/similar_cases.duckdb`` together with the Delta
versions it was built from. ``build_index`` reuses it while those versions are current and
otherwise rebuilds it into a temporary file that replaces the old one in one rename, so a
search never opens a half-written index.

Persisting an HNSW index needs ``SET hnsw_enable_experimental_persistence = true``: vss keeps
the graph in memory and serialises it at checkpoint, and a crash between a write and the
next checkpoint can leave the index out of step with its table (upstream's caveat). The index
here is write-once (built, checkpointed, renamed into place; searches open it read-only), which
is exactly the use that caveat leaves safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from mmlake.duckdb_ext import connect
from mmlake.similar.model import (
    EMBEDDINGS_TABLE,
    IMAGING,
    MULTIMODAL_TABLE,
    SOURCE_TABLES,
    SimilarCaseError,
    cohort_key,
    index_path,
    latest_version,
    read_gold,
    utc_now,
)

METRIC = "cosine"
# Over-fetch for cohort-filtered searches; the exact search takes over when HNSW falls short.
HNSW_EF_SEARCH = 128

_BASELINE_SQL = """
select patient_key, series_key, embedding, embedding_dim
from {t}
qualify row_number() over (
    partition by patient_key order by days_from_index asc nulls last, series_key
) = 1
"""
_PATIENTS_SQL = (
    "select patient_key, cancer_type, coalesce(has_imaging, false) as has_imaging from {t}"
)


@dataclass(frozen=True)
class IndexInfo:
    """What an index file was built from (the ``index_info`` row)."""

    path: Path
    source_version: int  # gold.imaging_embeddings Delta version indexed
    patients_version: int  # gold.patient_multimodal version the cancer types came from
    dim: int
    n_vectors: int
    built_at: datetime
    reused: bool = False


def _read_info(con: duckdb.DuckDBPyConnection, path: Path) -> IndexInfo:
    row = con.execute(
        "select source_version, patients_version, dim, n_vectors, built_at from index_info"
    ).fetchone()
    if row is None:
        raise SimilarCaseError(
            f"similar-case index {path} is incomplete: run `mmlake similar build`"
        )
    return IndexInfo(path, int(row[0]), int(row[1]), int(row[2]), int(row[3]), row[4])


def index_info(lakehouse: Path) -> IndexInfo | None:
    """The persisted index's provenance, or None when there is no usable index."""
    path = index_path(lakehouse)
    if not path.is_file():
        return None
    try:
        with connect(path, read_only=True) as con:
            return _read_info(con, path)
    except (duckdb.Error, SimilarCaseError):
        return None


def build_index(lakehouse: Path, *, force: bool = False) -> IndexInfo:
    """Build (or reuse) the HNSW index for the current gold versions."""
    source_version = latest_version(lakehouse, EMBEDDINGS_TABLE)
    patients_version = latest_version(lakehouse, MULTIMODAL_TABLE)
    current = index_info(lakehouse)
    if (
        not force
        and current is not None
        and (current.source_version, current.patients_version) == (source_version, patients_version)
    ):
        return IndexInfo(**{**current.__dict__, "reused": True})
    vectors = read_gold(lakehouse, EMBEDDINGS_TABLE, _BASELINE_SQL, source_version)
    patients = read_gold(lakehouse, MULTIMODAL_TABLE, _PATIENTS_SQL, patients_version)
    if vectors.empty:
        raise SimilarCaseError(f"gold {EMBEDDINGS_TABLE} has no embeddings to index")
    dims = set(vectors["embedding_dim"].astype(int))
    if len(dims) != 1:
        raise SimilarCaseError(f"gold {EMBEDDINGS_TABLE} mixes embedding sizes {sorted(dims)}")
    dim = dims.pop()
    cancer = dict(zip(patients["patient_key"], patients["cancer_type"], strict=True))
    types = [cancer.get(k) for k in vectors["patient_key"]]
    matrix = np.stack(vectors["embedding"].to_numpy()).astype(np.float32)
    table = pa.table(
        {
            "patient_key": vectors["patient_key"].astype(str).tolist(),
            "series_key": vectors["series_key"].astype(str).tolist(),
            "cancer_type": types,
            "cohort": [cohort_key(t) for t in types],
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim),
        }
    )
    roster = pa.table(
        {
            "patient_key": patients["patient_key"].astype(str).tolist(),
            "cancer_type": patients["cancer_type"].tolist(),
            "cohort": [cohort_key(t) for t in patients["cancer_type"]],
            "has_imaging": patients["has_imaging"].astype(bool).tolist(),
        }
    )
    path = index_path(lakehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".building")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    built_at = utc_now()
    con = connect(tmp)
    try:
        con.execute("SET hnsw_enable_experimental_persistence = true")
        con.register("incoming", table)
        con.register("roster", roster)
        con.execute(
            "create table vectors as select patient_key, series_key, cancer_type, cohort, "
            f"vec::FLOAT[{dim}] as vec from incoming"
        )
        con.execute("create table patients as select * from roster")
        con.execute(
            f"create index vectors_hnsw on vectors using hnsw (vec) with (metric = '{METRIC}')"
        )
        con.execute(
            "create table index_info as select ? as source_table, ?::bigint as source_version, "
            "?::bigint as patients_version, ?::int as dim, ?::bigint as n_vectors, "
            "?::varchar as metric, ?::timestamptz as built_at",
            [
                SOURCE_TABLES[IMAGING],
                source_version,
                patients_version,
                dim,
                len(vectors),
                METRIC,
                built_at,
            ],
        )
        con.execute("checkpoint")
    finally:
        con.close()
    tmp.replace(path)
    return IndexInfo(path, source_version, patients_version, dim, len(vectors), built_at)


def open_index(lakehouse: Path) -> tuple[duckdb.DuckDBPyConnection, IndexInfo]:
    """A read-only connection to the persisted index, or a one-line error to build it."""
    path = index_path(lakehouse)
    if not path.is_file():
        raise SimilarCaseError(f"no similar-case index at {path}: run `mmlake similar build` first")
    try:
        con = connect(path, read_only=True)
    except duckdb.Error as exc:
        raise SimilarCaseError(
            f"cannot open similar-case index {path} ({exc}): run `mmlake similar build`"
        ) from exc
    try:
        con.execute(f"SET hnsw_ef_search = {HNSW_EF_SEARCH}")
        return con, _read_info(con, path)
    except (duckdb.Error, SimilarCaseError) as exc:
        con.close()
        raise SimilarCaseError(
            f"similar-case index {path} is unusable ({exc}): run `mmlake similar build`"
        ) from exc
