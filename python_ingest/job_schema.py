"""Whether a file's Arrow columns may join a bronze Delta table as it stands.

Delta keeps a column's type once written, so the ingestion job checks each file against the
committed schema (and the files of its chunk) before any commit, and quarantines a file that
clashes rather than coercing it or failing the batch. Every record of such a file is accounted
for: each one the file would have landed is quarantined at its own locator, with the clash as
the reason.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from python_ingest.model import SOURCE_LOCATOR, FileOutcome, Quarantined


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
    column), so a changed type is a conflict, not a promotion. Delta and Spark also resolve
    column names case-insensitively: a VCF's ``INFO_src`` cannot sit beside another file's
    ``INFO_SRC`` (VCF keys are case-sensitive), and the write of the whole batch would fail.
    """
    clash = case_clash(list(incoming), list(accepted) if accepted is not None else [])
    if clash:
        return clash
    if accepted is None:
        return None
    for field in incoming:
        index = accepted.get_field_index(field.name)
        if index >= 0 and not fits(accepted.field(index).type, field.type):
            existing = accepted.field(index).type
            return f"column {field.name} is {field.type} here but {existing} in the table"
    return None


def case_clash(incoming: list[pa.Field], accepted: list[pa.Field], within: str = "") -> str | None:
    """Two column names (or struct field names, at any depth) that differ only in case: in the
    file's own columns, or between them and the table's (None if there are none)."""
    table = {field.name.lower(): field for field in accepted}
    mine: dict[str, str] = {}
    for field in incoming:
        key = field.name.lower()
        known = table.get(key)
        if key in mine or (known is not None and known.name != field.name):
            other, where = (mine[key], "here") if key in mine else (known.name, "in the table")
            return (
                f"column {within}{field.name} differs only in case from {within}{other} "
                f"{where} (Delta and Spark column names are case-insensitive)"
            )
        mine[key] = field.name
        inner = _struct_of(field.type)
        if inner is not None:
            held = _struct_of(known.type) if known is not None else None
            found = case_clash(list(inner), list(held or []), f"{within}{field.name}.")
            if found:
                return found
    return None


def _struct_of(kind: pa.DataType) -> pa.StructType | None:
    """The struct a column holds, directly or as list elements (Glow's genotypes)."""
    while pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return kind if pa.types.is_struct(kind) else None


def record_locators(tables: dict[str, pa.Table], records: int) -> list[str] | None:
    """The locator of each of ``records`` landed records, from the first table that holds one
    row per record (a VCF's variants, a manifest's samples); None when no table does (a
    wearables table melts a record into an event per value)."""
    for table in tables.values():
        if table.num_rows == records:
            locators = pc.unique(table.column(SOURCE_LOCATOR))
            if len(locators) == records:
                return locators.to_pylist()
    return None


def set_aside(outcome: FileOutcome, reason: str) -> FileOutcome:
    """The outcome of a file whose columns cannot join the table: nothing lands, and each
    record that would have is quarantined with ``reason`` (one row for the whole file when the
    records cannot be told apart)."""
    locators = record_locators(outcome.tables, outcome.records_landed)
    if locators is None:
        return FileOutcome(quarantined=[Quarantined("file", reason)], records_read=1)
    aside = [Quarantined(locator, reason) for locator in locators]
    return FileOutcome(
        quarantined=[*outcome.quarantined, *aside], records_read=outcome.records_read
    )
