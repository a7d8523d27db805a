"""Whether a file's Arrow columns may join a bronze Delta table as it stands.

Delta keeps a column's type once written, so the ingestion job checks each file against the
committed schema (and the files of its chunk) before any commit, and quarantines a file that
clashes rather than coercing it or failing the batch.
"""

from __future__ import annotations

import pyarrow as pa


def fits(existing: pa.DataType, incoming: pa.DataType) -> bool:
    """Whether values of ``incoming`` type can be written to a column of ``existing`` type.

    Structs may gain fields (schema evolution, e.g. a VCF with more FORMAT keys) and integers
    or floats may widen; anything else must match exactly.
    """
    if existing == incoming or pa.types.is_null(existing) or pa.types.is_null(incoming):
        return True
    if pa.types.is_struct(existing) and pa.types.is_struct(incoming):
        for field in incoming:
            index = existing.get_field_index(field.name)
            if index >= 0 and not fits(existing.field(index).type, field.type):
                return False
        return True
    lists = (pa.types.is_list, pa.types.is_large_list)
    if any(f(existing) for f in lists) and any(f(incoming) for f in lists):
        return fits(existing.value_type, incoming.value_type)
    for family in (pa.types.is_signed_integer, pa.types.is_floating):
        if family(existing) and family(incoming):
            return incoming.bit_width <= existing.bit_width
    return False


def type_conflict(accepted: pa.Schema | None, incoming: pa.Schema) -> str | None:
    """Why ``incoming`` cannot join a table of schema ``accepted`` (None if it can).

    Delta keeps a column's type once written (delta-rs would even truncate a double into an int
    column), so a changed type is a conflict, not a promotion.
    """
    if accepted is None:
        return None
    for field in incoming:
        index = accepted.get_field_index(field.name)
        if index >= 0 and not fits(accepted.field(index).type, field.type):
            existing = accepted.field(index).type
            return f"column {field.name} is {field.type} here but {existing} in the table"
    return None
