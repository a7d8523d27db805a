"""Top-k similar cases of one patient, by imaging (HNSW) or over every shared modality.

Cohort filter with HNSW: the filter (``cohort = ?``) goes into the same query as the
``order by array_cosine_distance(...) limit k``; DuckDB vss pushes it into the index scan
(filtered HNSW search). HNSW can still come back short when the cohort is a small part of
the graph (the search explores ``hnsw_ef_search`` candidates and the filter discards most),
so whenever it returns fewer than ``min(k, cohort size)`` rows, the search is redone exactly
(brute force over the cohort's vectors), which is cheap precisely because the cohort is small.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from mmlake.similar.index import open_index
from mmlake.similar.model import (
    DEFAULT_K,
    IMAGING,
    MODES,
    MULTIMODAL,
    MULTIMODAL_TABLE,
    SOURCE_TABLES,
    Neighbour,
    SimilarCaseError,
    cohort_key,
    contributions_json,
    latest_version,
    read_gold,
    utc_now,
)
from mmlake.similar.multimodal import Match, MultimodalSpace


def search(
    lakehouse: Path,
    patient_key: str,
    modality: str = IMAGING,
    cohort: str | None = None,
    k: int = DEFAULT_K,
) -> list[Neighbour]:
    """The ``k`` cases most similar to ``patient_key`` (never the patient itself)."""
    if modality not in MODES:
        raise SimilarCaseError(f"unknown modality {modality!r}; choose imaging or multimodal")
    if k < 1:
        raise SimilarCaseError(f"k must be at least 1 (got {k})")
    if modality == IMAGING:
        con, info = open_index(lakehouse)
        try:
            return imaging_neighbours(con, info.source_version, patient_key, cohort, k)
        finally:
            con.close()
    version = latest_version(lakehouse, MULTIMODAL_TABLE)
    space = load_multimodal(lakehouse, version)
    return multimodal_neighbours(space, version, patient_key, cohort, k)


def _cohort_size(
    con: duckdb.DuckDBPyConnection, patient_key: str, cohort: str | None, text: str | None
) -> int:
    """Candidates in the cohort (other imaged patients), or a one-line error when none."""
    if cohort is None:
        return int(con.execute("select count(*) - 1 from vectors").fetchone()[0])
    n = int(
        con.execute(
            "select count(*) from vectors where cohort = ? and patient_key <> ?",
            [cohort, patient_key],
        ).fetchone()[0]
    )
    if n == 0:
        known = [
            r[0]
            for r in con.execute(
                "select distinct cancer_type from patients where cancer_type is not null order by 1"
            ).fetchall()
        ]
        raise SimilarCaseError(
            f"cohort {text!r} is empty: no other imaged patient has that cancer type "
            f"(cancer types: {', '.join(known) or 'none'})"
        )
    return n


def imaging_neighbours(
    con: duckdb.DuckDBPyConnection,
    source_version: int,
    patient_key: str,
    cohort_text: str | None,
    k: int,
) -> list[Neighbour]:
    """Top-k by cosine distance between baseline embeddings, through the HNSW index."""
    row = con.execute(
        "select vec, cancer_type from vectors where patient_key = ?", [patient_key]
    ).fetchone()
    if row is None:
        known = con.execute(
            "select cancer_type from patients where patient_key = ?", [patient_key]
        ).fetchone()
        if known is None:
            raise SimilarCaseError(f"unknown patient key {patient_key!r}")
        raise SimilarCaseError(
            f"patient {patient_key} has no imaging embedding; try --modality multimodal"
        )
    vec, cancer_type = row
    dim = len(vec)
    cohort = cohort_key(cohort_text)
    wanted = min(k, _cohort_size(con, patient_key, cohort, cohort_text))
    where = "patient_key <> $key" + (" and cohort = $cohort" if cohort else "")
    params: dict[str, object] = {"key": patient_key, "vec": vec}
    if cohort:
        params["cohort"] = cohort
    # The exact form of this query (order by array_cosine_distance ... limit) is what vss
    # rewrites into an HNSW index scan.
    found = con.execute(
        f"select patient_key, cancer_type, array_cosine_distance(vec, $vec::FLOAT[{dim}]) as d "
        f"from vectors where {where} order by d limit {int(k)}",
        params,
    ).fetchall()
    if len(found) < wanted:
        found = exact_imaging(con, dim, where, params, k)
    now = utc_now()
    return [
        Neighbour(
            patient_key=patient_key,
            mode=IMAGING,
            rank=rank,
            neighbour_key=key,
            distance=float(d),
            similarity=1.0 - float(d),
            shared_modalities=IMAGING,
            contributions=contributions_json({IMAGING: 1.0 - float(d)}),
            cancer_type=cancer_type,
            neighbour_cancer_type=other_type,
            source_table=SOURCE_TABLES[IMAGING],
            source_version=source_version,
            computed_at=now,
        )
        for rank, (key, other_type, d) in enumerate(found, start=1)
    ]


def exact_imaging(
    con: duckdb.DuckDBPyConnection, dim: int, where: str, params: dict[str, object], k: int
) -> list[tuple[str, str | None, float]]:
    """Brute-force cosine top-k (1 - similarity is not the pattern vss rewrites to HNSW)."""
    return con.execute(
        f"select patient_key, cancer_type, "
        f"1.0 - array_cosine_similarity(vec, $vec::FLOAT[{dim}]) as d "
        f"from vectors where {where} order by d, patient_key limit {int(k)}",
        params,
    ).fetchall()


_MULTIMODAL_SQL = "select * from {t}"


def load_multimodal(lakehouse: Path, version: int) -> MultimodalSpace:
    frame = read_gold(lakehouse, MULTIMODAL_TABLE, _MULTIMODAL_SQL, version)
    if frame.empty:
        raise SimilarCaseError(f"gold {MULTIMODAL_TABLE} is empty at version {version}")
    return MultimodalSpace(frame)


def multimodal_neighbours(
    space: MultimodalSpace,
    source_version: int,
    patient_key: str,
    cohort_text: str | None,
    k: int,
) -> list[Neighbour]:
    """Top-k by mean per-modality similarity over the modalities both patients have."""
    row = space.row_of.get(patient_key)
    if row is None:
        raise SimilarCaseError(f"unknown patient key {patient_key!r}")
    cohort = cohort_key(cohort_text)
    others = (space.cohorts == cohort).sum() - int(space.cohorts[row] == cohort)
    if cohort is not None and others == 0:
        known = sorted({t for t in space.cancer_types if t})
        raise SimilarCaseError(
            f"cohort {cohort_text!r} is empty: no other patient has that cancer type "
            f"(cancer types: {', '.join(known) or 'none'})"
        )
    return to_neighbours(space, row, space.top_k(row, k, cohort), source_version, utc_now())


def to_neighbours(
    space: MultimodalSpace, row: int, matches: list[Match], version: int, now: datetime
) -> list[Neighbour]:
    """Matches of one query row as result rows."""
    out = []
    for rank, match in enumerate(matches, start=1):
        out.append(
            Neighbour(
                patient_key=str(space.keys[row]),
                mode=MULTIMODAL,
                rank=rank,
                neighbour_key=str(space.keys[match.row]),
                distance=1.0 - match.similarity,
                similarity=match.similarity,
                shared_modalities="+".join(space.shared_modalities(row, match.row)),
                contributions=contributions_json(match.contributions),
                cancer_type=space.cancer_types[row],
                neighbour_cancer_type=space.cancer_types[match.row],
                source_table=SOURCE_TABLES[MULTIMODAL],
                source_version=version,
                computed_at=now,
            )
        )
    return out
