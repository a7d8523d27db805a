"""Keep every data file of a Delta table on the table's nested types when a struct grows.

Delta allows a struct column to gain fields (schema evolution), and older data files then
simply lack them. DuckDB's delta extension does not support that yet for structs
(duckdb/duckdb-delta#59); with lists of structs, such as a VCF's ``genotypes``, whose fields are
the FORMAT keys of the files landed so far, it crashes the process as soon as a query looks
inside the list (``unnest``, ``list_filter``, ``genotypes[1].phased``). Landing VCFs from two
callers in two runs was enough to take down ``dbt build`` on the local target.

So a write that would add a field to a nested struct rewrites the table instead: the rows
already there (less those the write replaces) and the new rows, all cast to the merged schema,
in one overwrite commit. Readers see the old version or the new one, never a mix. This costs
a rewrite each time the set of nested fields grows, which stops happening once the FORMAT keys
of a lakehouse's sources have all been seen; a write that adds no nested field is untouched.
The rows already there are read from the table's active Parquet files with DuckDB's
``read_parquet(union_by_name)``, which fills missing struct fields correctly, so a table whose
files already disagree is repaired by the next such write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

READ_BATCH_ROWS = 64 * 1024


def _has_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _has_struct(kind.value_type)
    if pa.types.is_map(kind):
        return _has_struct(kind.key_type) or _has_struct(kind.item_type)
    return False


def has_struct(schema: pa.Schema) -> bool:
    """Whether any column holds a struct, at any depth (only then can a write grow one)."""
    return any(_has_struct(field.type) for field in schema)


def _adds_fields(old: pa.DataType, new: pa.DataType) -> bool:
    """Whether ``new`` has a struct field, at any depth, that ``old`` lacks."""
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        known = {old.field(i).name: old.field(i).type for i in range(old.num_fields)}
        return any(
            new.field(i).name not in known
            or _adds_fields(known[new.field(i).name], new.field(i).type)
            for i in range(new.num_fields)
        )
    listish = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    if any(is_list(old) for is_list in listish) and any(is_list(new) for is_list in listish):
        return _adds_fields(old.value_type, new.value_type)
    if pa.types.is_map(old) and pa.types.is_map(new):
        return _adds_fields(old.key_type, new.key_type) or _adds_fields(
            old.item_type, new.item_type
        )
    return False


def grows_nested(current: pa.Schema, data: pa.Schema) -> bool:
    """Whether writing ``data`` to a table of schema ``current`` would add a nested field."""
    return any(
        field.name in current.names and _adds_fields(current.field(field.name).type, field.type)
        for field in data
    )


def _conformed(batch: pa.RecordBatch | pa.Table, target: pa.Schema) -> Iterator[pa.RecordBatch]:
    """``batch`` with every column of ``target``, in its order and types (missing ones null)."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in target
    ]
    yield from pa.Table.from_arrays(columns, schema=target).to_batches()


def merged_rows(
    path: Path, current: pa.Schema, data: pa.Table, predicate: str | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """(merged schema, the table's rows not matching ``predicate`` then ``data``'s, all in it).

    The merged schema is the table's (``current``) with ``data``'s fields merged in (struct
    fields added, types promoted as a Delta merge would).
    """
    target = pa.unify_schemas([current, data.schema], promote_options="permissive")
    files = DeltaTable(str(path)).file_uris()

    def rows() -> Iterator[pa.RecordBatch]:
        if files:
            conn = duckdb.connect()
            conn.execute("set TimeZone = 'UTC'")
            keep = f"where ({predicate}) is not true" if predicate else ""
            reader = conn.execute(
                f"select * from read_parquet(?, union_by_name = true) {keep}", [files]
            ).fetch_record_batch(READ_BATCH_ROWS)
            for batch in reader:
                yield from _conformed(batch, target)
            conn.close()
        yield from _conformed(data, target)

    return target, rows()
