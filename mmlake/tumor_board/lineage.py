"""Provenance of tumor-board evidence: Delta versions, bronze lineage and its masks.

Every item on a page names a row that can be found again: the Delta table it was read from
(a gold table published by dbt, or the bronze table a silver row came from), the version of
that table when the page was rendered, and the key of the row. Bronze rows are keyed by
``_record_hash`` (a hash of the landed record, classified ``derived``): it identifies the row
without repeating an identifier on the page.

The bronze lineage columns (``_source_file``, ``_source_locator``, ``_ingest_batch_id``) are not
exposed through the consumer views, and bronze is readable through ``governed_read`` only by
unrestricted principals. They are read here with ``delta_scan`` for rows whose keys came out of
the principal's governed reads (so only patients the principal may see), and each lineage
value is masked with the principal's access to that column's classification
(``governance.classification_registry``), the same rule the consumer views apply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmlake.delta import delta_version
from mmlake.duckdb_ext import connect
from mmlake.pseudonym import pseudonym_key

LINEAGE_COLUMNS = ("_source_file", "_source_locator", "_ingest_batch_id")


@dataclass(frozen=True)
class Provenance:
    """Where one evidence item came from; serialized into ``data-provenance``."""

    source_table: str
    record_key: Mapping[str, Any]
    delta_table: str | None
    delta_version: int | None
    delta_key: Mapping[str, Any]
    method: str = "structured"
    source_file: str | None = None
    source_locator: str | None = None
    ingest_batch: str | None = None
    bronze_table: str | None = None
    bronze_version: int | None = None
    bronze_record_hash: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        payload = {
            "source_table": self.source_table,
            "record_key": dict(self.record_key),
            "delta_table": self.delta_table,
            "delta_version": self.delta_version,
            "delta_key": dict(self.delta_key),
            "method": self.method,
            "source_file": self.source_file,
            "source_locator": self.source_locator,
            "ingest_batch": self.ingest_batch,
            "bronze_table": self.bronze_table,
            "bronze_version": self.bronze_version,
            "bronze_record_hash": self.bronze_record_hash,
        }
        payload.update(self.extra)
        return json.dumps(payload, default=str, sort_keys=True)


@dataclass(frozen=True)
class BronzeRow:
    """The lineage of one landed bronze record (already masked for the principal)."""

    table: str
    version: int | None
    record_hash: str
    source_file: str | None
    source_locator: str | None
    ingest_batch: str | None


def apply_mask(value: Any, access: str, mask: str | None) -> Any:
    """The value as a principal with ``access`` sees it (mirrors governance.mask_string)."""
    if value is None or access == "full":
        return value
    if access != "masked":
        return None
    text = str(value)
    if mask == "redact":
        return "[REDACTED]"
    if mask == "hash":
        return hashlib.sha256(text.encode()).hexdigest()
    if mask == "last4":
        return "***" + text[-4:]
    if mask == "year_only":
        return text[:4]
    return None


class BronzeTracer:
    """Looks up bronze rows by key for a set of patients; one scan per table and key kind.

    ``column_access`` maps ``bronze.<table>.<column>`` to ``(access, mask)`` for the rendering
    principal; lineage columns without an entry are treated as denied (fail closed).
    """

    def __init__(self, lakehouse: Path, column_access: Mapping[str, tuple[str, str | None]]):
        self.lakehouse = lakehouse
        self.column_access = column_access
        self.versions: dict[str, int | None] = {}
        self._conn = connect()
        # The same keyed hash silver applies (macros/privacy/pseudonymize.sql), so a silver key
        # can be matched to the bronze row it was derived from without storing any mapping.
        self._conn.execute("set variable mmlake_pseudonym_key = ?", [pseudonym_key(lakehouse)])
        self._conn.execute(
            "create macro pk(x) as sha256(getvariable('mmlake_pseudonym_key') || ':' "
            "|| upper(trim(x)))"
        )

    def close(self) -> None:
        self._conn.close()

    def version(self, layer: str, table: str) -> int | None:
        name = f"{layer}/{table}"
        if name not in self.versions:
            self.versions[name] = delta_version(self.lakehouse / layer / table)
        return self.versions[name]

    def _masked(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for column in LINEAGE_COLUMNS:
            access, mask = self.column_access.get(f"bronze.{table}.{column}", ("denied", None))
            out[column] = apply_mask(row.get(column), access, mask)
        return out

    def lookup(
        self, table: str, key_sql: str, keys: Iterable[str], where: str = "true"
    ) -> dict[str, BronzeRow]:
        """Bronze rows of ``table`` whose ``key_sql`` expression is one of ``keys``.

        The latest landing wins when a record was landed more than once (as in silver).
        """
        wanted = sorted({k for k in keys if k})
        version = self.version("bronze", table)
        if not wanted or version is None:
            return {}
        path = str(self.lakehouse / "bronze" / table)
        rows = self._conn.execute(
            f"""
            with keyed as (
                select {key_sql} as k, _record_hash, {", ".join(LINEAGE_COLUMNS)},
                    row_number() over (
                        partition by {key_sql} order by _ingested_at desc, _record_hash desc
                    ) as rn
                from delta_scan(?, version => {int(version)})
                where {where}
            )
            select * exclude (rn) from keyed where rn = 1 and k in (select unnest(?))
            """,
            [path, wanted],
        ).fetch_arrow_table()
        found: dict[str, BronzeRow] = {}
        for row in rows.to_pylist():
            masked = self._masked(table, row)
            found[row["k"]] = BronzeRow(
                table=f"bronze/{table}",
                version=version,
                record_hash=row["_record_hash"],
                source_file=masked["_source_file"],
                source_locator=masked["_source_locator"],
                ingest_batch=masked["_ingest_batch_id"],
            )
        return found

    def by_hash(self, table: str, hashes: Iterable[str]) -> dict[str, BronzeRow]:
        """Bronze rows by ``_record_hash`` (silver models that carry it)."""
        return self.lookup(table, "_record_hash", hashes)


def provenance(
    source_table: str,
    record_key: Mapping[str, Any],
    *,
    delta_table: str | None,
    delta_version: int | None,
    delta_key: Mapping[str, Any] | None = None,
    method: str = "structured",
    bronze: BronzeRow | None = None,
    source_file: str | None = None,
    source_locator: str | None = None,
    ingest_batch: str | None = None,
    **extra: Any,
) -> Provenance:
    """Build a :class:`Provenance`, taking lineage from ``bronze`` when it was traced."""
    return Provenance(
        source_table=source_table,
        record_key=record_key,
        delta_table=delta_table,
        delta_version=delta_version,
        delta_key=delta_key if delta_key is not None else record_key,
        method=method,
        source_file=bronze.source_file if bronze else source_file,
        source_locator=bronze.source_locator if bronze else source_locator,
        ingest_batch=bronze.ingest_batch if bronze else ingest_batch,
        bronze_table=bronze.table if bronze else None,
        bronze_version=bronze.version if bronze else None,
        bronze_record_hash=bronze.record_hash if bronze else None,
        extra=extra,
    )
