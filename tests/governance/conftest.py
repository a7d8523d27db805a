"""Fixtures of the governance tests: the shared built warehouse and the policy, from the seeds.

`built` and `warehouse` are the model tests' session fixtures (one pipeline run per session).
`governed` is a private copy of the built warehouse opened read-write: when the consent and
study-enrolment models are still empty (their bronze FHIR resources not generated yet), it
plants consents and enrolments there so every row filter is exercised on real model rows.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from mmlake.duckdb_ext import connect
from tests.models.conftest import Built, built, warehouse  # noqa: F401

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "governance"
RANK = {"denied": 0, "masked": 1, "full": 2}


def _rows(name: str) -> list[dict[str, str]]:
    with (SEEDS / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _meta(node: dict) -> dict:
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


@dataclass
class Policy:
    """The declaration as the tests read it: seeds + manifest meta, independent of the macros."""

    groups_of: dict[str, set[str]] = field(default_factory=dict)
    access_rows: dict[tuple[str, str], str] = field(default_factory=dict)
    covered_groups: set[str] = field(default_factory=set)
    studies_of: dict[str, set[str]] = field(default_factory=dict)
    default_mask: dict[str, str] = field(default_factory=dict)
    models: dict[str, dict] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)

    @property
    def principals(self) -> list[str]:
        return sorted(self.groups_of)

    def access(self, principal: str, classification: str) -> str:
        levels = [
            self.access_rows.get((group, classification), "denied")
            for group in self.groups_of[principal]
        ]
        return max(levels, key=RANK.__getitem__, default="denied")

    def covered(self, principal: str) -> bool:
        return bool(self.groups_of[principal] & self.covered_groups)

    def studies(self, principal: str) -> set[str]:
        return set().union(*(self.studies_of.get(g, set()) for g in self.groups_of[principal]))

    def column(self, model: str, column: str) -> tuple[str, str]:
        """(classification, effective mask) of a model column; undeclared = phi."""
        columns = {k.lower(): v for k, v in (self.models[model].get("columns") or {}).items()}
        meta = _meta(columns.get(column.lower(), {}))
        classification = meta.get("classification", "phi")
        return classification, meta.get("mask") or self.default_mask.get(classification, "null")

    def row_filters(self, model: str) -> set[str]:
        meta = _meta(self.models[model])
        filters = {str(f).lower() for f in meta.get("row_filters") or []}
        if meta.get("classification") == "genomic_28cfr202":
            filters.add("cfr202")
        return filters

    def unprivileged(self) -> list[str]:
        return [p for p in self.principals if self.access(p, "phi") != "full"]


@pytest.fixture(scope="session")
def policy(built: Built) -> Policy:  # noqa: F811
    result = Policy()
    for row in _rows("principals"):
        result.groups_of.setdefault(row["principal"], set()).add(row["group_name"])
    for row in _rows("access_policies"):
        result.access_rows[(row["group_name"], row["classification"])] = row["access"]
    for row in _rows("groups"):
        if row["covered_person"].strip().lower() == "true":
            result.covered_groups.add(row["group_name"])
    for row in _rows("group_studies"):
        result.studies_of.setdefault(row["group_name"], set()).add(row["study_id"])
    for row in _rows("classifications"):
        result.default_mask[row["classification"]] = row["default_mask"]
    manifest = json.loads(
        (built.lakehouse / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8")
    )
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["config"].get("schema") in ("silver", "gold"):
            result.models[node["name"]] = node
    result.sources = list(manifest["sources"].values())
    return result


def _plant_consents(conn: duckdb.DuckDBPyConnection) -> None:
    """Consents and study enrolments for the built patients, when the models gave none.

    Every third patient rejected consent; consented patients are split over both studies,
    some enrolled in none, so each filter lets some rows through and holds others back.
    """
    if conn.execute("select count(*) from silver.stg_ehr__research_consents").fetchone()[0]:
        return
    conn.execute(
        """
        insert into silver.stg_ehr__research_consents by name
        with p as (
            select patient_key, row_number() over (order by patient_key) as i
            from silver.stg_ehr__patients
        )
        select patient_key, case when i % 3 = 0 then 'rejected' else 'active' end
            as consent_status, 'research' as scope, date '2024-01-01' as decided_on
        from p
        """
    )
    conn.execute(
        """
        insert into silver.stg_ehr__research_subjects by name
        with p as (
            select patient_key, row_number() over (order by patient_key) as i
            from silver.stg_ehr__patients
        )
        select patient_key,
            case when i % 4 in (0, 1) then 'MMLAKE-ONC-001' else 'MMLAKE-ONC-002' end
                as study_id
        from p where i % 4 <> 3
        """
    )


@pytest.fixture(scope="session")
def governed(
    built: Built,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-write connection to a copy of the built warehouse, consents planted if missing."""
    copy = tmp_path_factory.mktemp("governed") / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, copy)
    with connect(copy) as conn:
        _plant_consents(conn)
        yield conn


def visible_keys(
    conn: duckdb.DuckDBPyConnection, policy: Policy, principal: str, filters: set[str]
) -> set[str] | None:
    """patient_keys the principal may see under `filters` (None: no restriction by patient)."""
    keys: set[str] | None = None
    if "consent" in filters:
        keys = {
            r[0]
            for r in conn.execute(
                "select patient_key from silver.stg_ehr__research_consents "
                "where consent_status = 'active'"
            ).fetchall()
        }
    if "study" in filters and "*" not in policy.studies(principal):
        enrolled = conn.execute(
            "select patient_key from silver.stg_ehr__research_subjects "
            "where list_contains(?, study_id)",
            [sorted(policy.studies(principal))],
        ).fetchall()
        study_keys = {r[0] for r in enrolled}
        keys = study_keys if keys is None else keys & study_keys
    return keys
