"""A chunk's tables as the job writes them: lineage columns added, then one Delta commit each.

Shared by both engines' local steps (``spark_parse`` stages its tables with ``with_lineage``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa

from mmlake.delta import delete_where, is_delta_table, write_delta
from python_ingest.model import BATCH_ID, INGESTED_AT, LINEAGE_COLUMNS, SOURCE_FILE

COMBINE_MAX_BYTES = 256 * 1024 * 1024  # see few_chunks


def with_lineage(table: pa.Table, source: str, batch_id: str, at: dt.datetime) -> pa.Table:
    n = table.num_rows
    table = table.append_column(SOURCE_FILE, pa.array([source] * n, pa.string()))
    table = table.append_column(BATCH_ID, pa.array([batch_id] * n, pa.string()))
    table = table.append_column(INGESTED_AT, pa.array([at] * n, pa.timestamp("us", tz="UTC")))
    content = [c for c in table.column_names if c not in LINEAGE_COLUMNS]
    return table.select([*content, *LINEAGE_COLUMNS])


def with_lineage_all(parts: list[tuple[str, pa.Table]], batch_id: str, at: dt.datetime) -> pa.Table:
    """``with_lineage`` of each (source, table) part, concatenated, built once per chunk.

    Same result as concatenating per-file ``with_lineage`` tables, column order included
    (a column first seen in a later file comes after the lineage columns, as it did then).
    """
    tables = [table for _, table in parts]
    # Consecutive tables of one schema (the common case: every file of a chunk) are joined
    # without promotion, ~10x cheaper per table; only the runs are unified with promotion.
    runs: list[list[pa.Table]] = []
    for table in tables:
        if runs and table.schema.equals(runs[-1][0].schema):
            runs[-1].append(table)
        else:
            runs.append([table])
    order: dict[str, None] = {}
    for run in runs:
        for name in run[0].column_names:
            if name not in LINEAGE_COLUMNS:
                order.setdefault(name)
        for name in LINEAGE_COLUMNS:
            order.setdefault(name)
    joined = [pa.concat_tables(run) if len(run) > 1 else run[0] for run in runs]
    data = pa.concat_tables(joined, promote_options="permissive")
    n = data.num_rows
    counts = np.fromiter((t.num_rows for t in tables), dtype=np.int64, count=len(tables))
    indices = pa.array(np.repeat(np.arange(len(tables), dtype=np.int32), counts))
    sources = pa.array([source for source, _ in parts], pa.string())
    lineage = {
        SOURCE_FILE: pa.DictionaryArray.from_arrays(indices, sources).cast(pa.string()),
        BATCH_ID: pa.repeat(pa.scalar(batch_id, pa.string()), n),
        INGESTED_AT: pa.repeat(pa.scalar(at, pa.timestamp("us", tz="UTC")), n),
    }
    for name, column in lineage.items():
        data = data.append_column(name, column)
    return data.select(list(order))


def few_chunks(data: pa.Table) -> pa.Table:
    """One chunk per column when the table is small: a chunk of small files is thousands of
    Arrow chunks (one per file), which the Parquet writer pays for one by one (~4x the write
    of the same rows). A large table keeps its chunks: copying it costs more than it saves,
    and one string column over 2 GB cannot be a single Arrow chunk at all. The size is that of
    the buffers the table references (each once): ``nbytes`` walks every slice of every chunk,
    which costs more than the copy for a chunk of 16,000 files."""
    if (
        data.num_rows
        and data.column(0).num_chunks > 1
        and data.get_total_buffer_size() <= COMBINE_MAX_BYTES
    ):
        return data.combine_chunks()
    return data


def land(path: Path, parts: list[pa.Table], predicate: str | None) -> None:
    """Append, or replace the chunk's files' rows when some may already be there."""
    if parts:
        data = few_chunks(pa.concat_tables(parts, promote_options="permissive"))
        mode = "overwrite" if predicate and is_delta_table(path) else "append"
        write_delta(path, data, mode=mode, predicate=predicate if mode == "overwrite" else None)
    elif predicate:
        delete_where(path, predicate)
