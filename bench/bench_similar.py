"""HNSW (DuckDB vss) against exact search: recall@10 and queries per second.

Synthetic 64-d vectors drawn around cluster centres (like embeddings of a few cancer types,
each with sub-phenotypes), at 10k and 100k vectors. For a sample of held-out queries drawn from
the same mixture, each size reports:

- recall@10: share of the exact top-10 (brute-force cosine in the same DuckDB table) that the
  HNSW index scan returns;
- queries/s of HNSW and of exact search, and their ratio (HNSW qps / exact qps), the speed-up
  bought with that recall;
- the index build time.

Both run in one DuckDB in-memory database with the same query shape as ``mmlake similar``
(``order by array_cosine_distance(...) limit k``, which vss rewrites into an index scan; exact
search orders by ``1 - array_cosine_similarity``, which it does not):

    .venv/bin/python bench/bench_similar.py --sizes 10000,100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa

from mmlake.duckdb_ext import connect

DIM = 64
K = 10


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """``n`` vectors around randomly chosen centres, with spread comparable to their spacing."""
    which = rng.integers(0, len(centres), n)
    return (centres[which] + rng.normal(0.0, 0.35, (n, DIM))).astype(np.float32)


def run_size(n: int, n_queries: int, seed: int, ef_search: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (48, DIM))
    data = clustered(n, rng, centres)
    queries = clustered(n_queries, rng, centres)
    con = connect()
    try:
        table = pa.table(
            {
                "id": np.arange(n, dtype=np.int64),
                "vec": pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), DIM),
            }
        )
        con.register("incoming", table)
        con.execute(f"create table v as select id, vec::FLOAT[{DIM}] as vec from incoming")
        started = time.perf_counter()
        con.execute("create index v_hnsw on v using hnsw (vec) with (metric = 'cosine')")
        build_s = time.perf_counter() - started
        con.execute(f"SET hnsw_ef_search = {ef_search}")
        hnsw_sql = (
            f"select id from v order by array_cosine_distance(vec, $q::FLOAT[{DIM}]) limit {K}"
        )
        exact_sql = (
            f"select id from v order by 1 - array_cosine_similarity(vec, $q::FLOAT[{DIM}]), id "
            f"limit {K}"
        )
        plan = con.execute("explain " + hnsw_sql, {"q": queries[0].tolist()}).fetchall()
        assert "HNSW_INDEX_SCAN" in plan[0][1], "the HNSW query did not use the index"
        timings: dict[str, float] = {}
        results: dict[str, list[set[int]]] = {}
        for name, sql in (("hnsw", hnsw_sql), ("exact", exact_sql)):
            started = time.perf_counter()
            results[name] = [
                {row[0] for row in con.execute(sql, {"q": q.tolist()}).fetchall()} for q in queries
            ]
            timings[name] = time.perf_counter() - started
    finally:
        con.close()
    recall = float(
        np.mean([len(h & e) / K for h, e in zip(results["hnsw"], results["exact"], strict=True)])
    )
    hnsw_qps, exact_qps = n_queries / timings["hnsw"], n_queries / timings["exact"]
    return {
        "vectors": n,
        "queries": n_queries,
        "recall_at_10": round(recall, 4),
        "hnsw_qps": round(hnsw_qps, 1),
        "exact_qps": round(exact_qps, 1),
        "qps_ratio_hnsw_over_exact": round(hnsw_qps / exact_qps, 2),
        "index_build_s": round(build_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated vector counts")
    parser.add_argument("--queries", type=int, default=200, help="queries per size")
    parser.add_argument("--ef-search", type=int, default=64, help="vss hnsw_ef_search")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [
        run_size(int(n), args.queries, args.seed, args.ef_search) for n in args.sizes.split(",")
    ]
    print(json.dumps(rows, indent=2))
    print(f"{'vectors':>8} {'recall@10':>10} {'hnsw q/s':>10} {'exact q/s':>10} {'ratio':>7}")
    for r in rows:
        print(
            f"{r['vectors']:>8} {r['recall_at_10']:>10.3f} {r['hnsw_qps']:>10.1f} "
            f"{r['exact_qps']:>10.1f} {r['qps_ratio_hnsw_over_exact']:>7.2f}"
        )


if __name__ == "__main__":
    main()
