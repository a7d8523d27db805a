"""Similar-case search on a cohort with planted near twins (tests/similar/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmlake.duckdb_ext import connect
from mmlake.similar import SimilarCaseError, search
from mmlake.similar.index import build_index, index_info
from mmlake.similar.model import index_path
from tests.similar.conftest import Cohort

# Float32 cosine distances of two embeddings equal to the last bit come out as exact ties.
TIE = 1e-6


def _cli(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """``mmlake similar ARGS`` in a subprocess; ``columns`` sets the terminal width rich sees."""
    code = "from mmlake.similar.cli import app; app()"
    env = os.environ | ({"COLUMNS": str(columns)} if columns else {})
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env
    )


def test_planted_twins_are_the_nearest_imaging_neighbours(cohort: Cohort, built) -> None:
    pairs = cohort.twin_pairs()
    assert len(pairs) >= 3, "the cohort should hold a few planted near twins"
    strict = 0
    for twin, source in pairs:
        for query, expected in ((twin, source), (source, twin)):
            found = search(cohort.lakehouse, query, modality="imaging", k=10)
            distance = {n.neighbour_key: n.distance for n in found}
            assert expected in distance, f"twin of {query} not in its imaging top-10"
            # First, or tied with the first to float32 precision (one-voxel chest
            # segmentations carry almost nothing but spacing, so a few scans coincide).
            assert distance[expected] <= found[0].distance + TIE
            strict += found[0].neighbour_key == expected
    assert strict >= 2 * len(pairs) - 2


def test_planted_twins_rank_high_in_multimodal_mode(cohort: Cohort, built) -> None:
    ranks = []
    for twin, source in cohort.twin_pairs():
        found = search(cohort.lakehouse, twin, modality="multimodal", k=10)
        keys = [n.neighbour_key for n in found]
        assert source in keys, "a near twin must be among the multimodal top-10"
        ranks.append(keys.index(source) + 1)
        top = found[0]
        shares = top.contribution_map
        assert set(shares) == set(top.shared_modalities.split("+"))
        assert top.similarity == pytest.approx(np.mean(list(shares.values())), abs=1e-5)
    assert np.median(ranks) <= 3


def test_cohort_filter_is_respected(cohort: Cohort, built) -> None:
    twin, _ = cohort.twin_pairs()[0]
    other = next(
        t for t in sorted(set(cohort.cancer_of.values()) - {None}) if t != cohort.cancer_of[twin]
    )
    for modality in ("imaging", "multimodal"):
        found = search(cohort.lakehouse, twin, modality=modality, cohort=other.upper(), k=10)
        assert found and all(n.neighbour_cancer_type == other for n in found)
        assert twin not in {n.neighbour_key for n in found}
        assert [n.rank for n in found] == list(range(1, len(found) + 1))


def test_cohort_filter_falls_back_to_exact_search(cohort: Cohort, built) -> None:
    """Whatever HNSW returns, the cohort result equals brute force over the cohort."""
    twin, _ = cohort.twin_pairs()[0]
    cancer = cohort.cancer_of[twin]
    found = search(cohort.lakehouse, twin, modality="imaging", cohort=cancer, k=5)
    with connect(index_path(cohort.lakehouse), read_only=True) as con:
        rows = con.execute(
            "select patient_key, vec from vectors where cancer_type = ? and patient_key <> ?",
            [cancer, twin],
        ).fetchall()
        query = np.array(
            con.execute("select vec from vectors where patient_key = ?", [twin]).fetchone()[0]
        )
    vecs = np.array([r[1] for r in rows], dtype=float)
    sims = vecs @ query / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(query))
    best = np.sort(1 - sims)[: len(found)]
    assert [n.distance for n in found] == pytest.approx(best.tolist(), abs=1e-5)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--patient", "nope"], "unknown patient key 'nope'"),
        (["--patient", "nope", "--modality", "multimodal"], "unknown patient key"),
        (["--cohort", "no such cancer"], "is empty"),
    ],
)
def test_errors_are_one_line(cohort: Cohort, built, args: list[str], needle: str) -> None:
    if "--patient" not in args:
        args = ["--patient", cohort.twin_pairs()[0][0], *args]
    result = _cli(*args, "--lakehouse", str(cohort.lakehouse))
    assert result.returncode == 2
    out = result.stdout.strip()
    assert needle in out and "\n" not in out and "Traceback" not in result.stderr


def test_patient_without_imaging_is_told_to_use_multimodal(cohort: Cohort, built) -> None:
    with connect(index_path(cohort.lakehouse), read_only=True) as con:
        key = con.execute(
            "select patient_key from patients where not has_imaging order by 1 limit 1"
        ).fetchone()[0]
    with pytest.raises(SimilarCaseError, match=r"no imaging embedding.*multimodal"):
        search(cohort.lakehouse, key, modality="imaging")
    assert search(cohort.lakehouse, key, modality="multimodal", k=3)


def test_missing_index_says_to_build(tmp_path: Path) -> None:
    result = _cli("--patient", "x", "--lakehouse", str(tmp_path))
    assert result.returncode == 2
    assert "run `mmlake similar build`" in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("output", ["table", "tsv", "json"])
def test_cli_prints_whole_keys_on_a_narrow_terminal(cohort: Cohort, built, output: str) -> None:
    """Keys are copied into the next command, so even 60 columns wide none is shortened."""
    query = cohort.twin_pairs()[0][0]
    expected = [n.neighbour_key for n in search(cohort.lakehouse, query, k=3)]
    assert len(expected) == 3 and all(len(key) == 64 for key in expected)
    args = ["--patient", query, "-k", "3", "--format", output]
    result = _cli(*args, "--lakehouse", str(cohort.lakehouse), columns=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "…" not in result.stdout
    lines = result.stdout.splitlines()
    if output == "json":
        assert [json.loads(line)["patient_key"] for line in lines] == expected
    elif output == "tsv":
        assert lines[0].split("\t")[:2] == ["rank", "patient_key"]
        assert [line.split("\t")[1] for line in lines[1:]] == expected
    else:
        assert query in lines[0]  # the title names the query patient, whole too
        rows = [line for line in lines if any(key in line for key in expected)]
        assert [next(k for k in expected if k in row) for row in rows] == expected


def test_index_is_persisted_and_reused(cohort: Cohort, built) -> None:
    info = index_info(cohort.lakehouse)
    assert info is not None and info.dim == 64 and info.n_vectors > 100
    assert index_path(cohort.lakehouse).is_file()
    mtime = index_path(cohort.lakehouse).stat().st_mtime_ns
    again = build_index(cohort.lakehouse)
    assert again.reused and again.source_version == info.source_version
    assert index_path(cohort.lakehouse).stat().st_mtime_ns == mtime
    with connect(index_path(cohort.lakehouse), read_only=True) as con:
        indexes = con.execute("select sql from duckdb_indexes()").fetchall()
        metric = con.execute("select metric from index_info").fetchone()[0]
        vec = con.execute("select vec from vectors limit 1").fetchone()[0]
        plan = con.execute(
            "explain select patient_key from vectors "
            "order by array_cosine_distance(vec, $v::FLOAT[64]) limit 3",
            {"v": vec},
        ).fetchall()
    assert any("USING HNSW" in sql for (sql,) in indexes) and metric == "cosine"
    assert "HNSW_INDEX_SCAN" in plan[0][1]


def test_gold_similar_cases(cohort: Cohort, built) -> None:
    assert built.rows["imaging"] > 0 and built.rows["multimodal"] > 0
    with connect() as con:
        rows = con.execute(
            "select mode, patient_key, count(*), min(rank), max(rank), "
            "bool_and(abs(similarity - (1 - distance)) < 1e-9), "
            "bool_and(patient_key <> neighbour_key), "
            "any_value(source_table), any_value(contributions) "
            f"from delta_scan('{built.path}') group by all"
        ).fetchall()
        n_multimodal = con.execute(
            "select count(*) from delta_scan(?)",
            [str(cohort.lakehouse / "gold" / "patient_multimodal")],
        ).fetchone()[0]
    by_mode: dict[str, int] = {}
    for mode, _key, n, low, high, consistent, no_self, table, contributions in rows:
        by_mode[mode] = by_mode.get(mode, 0) + 1
        assert (n, low, high) == (10, 1, 10) and consistent and no_self
        assert (
            table == f"gold.{'imaging_embeddings' if mode == 'imaging' else 'patient_multimodal'}"
        )
        assert isinstance(json.loads(contributions), dict)
    assert by_mode["multimodal"] == n_multimodal
    assert by_mode["imaging"] == index_info(cohort.lakehouse).n_vectors
    # Idempotent: rebuilding on the same gold versions replaces rows instead of adding them.
    from mmlake.similar import build

    build(cohort.lakehouse, k=10)
    with connect() as con:
        total = con.execute(f"select count(*) from delta_scan('{built.path}')").fetchone()[0]
    assert total == 10 * sum(by_mode.values())


def test_databricks_index_definition_renders() -> None:
    from mmlake.similar.model import databricks_index_definition

    body = databricks_index_definition("main", "mmlake-vs")
    spec = body["delta_sync_index_spec"]
    assert body["name"] == "main.gold.imaging_embeddings_index"
    assert body["index_type"] == "DELTA_SYNC" and body["primary_key"] == "series_key"
    assert spec["source_table"] == "main.gold.imaging_embeddings"
    assert spec["embedding_vector_columns"] == [{"name": "embedding", "embedding_dimension": 64}]
    assert "{catalog}" not in json.dumps(body) and body["endpoint_name"] == "mmlake-vs"
