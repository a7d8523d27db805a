"""Partial and incremental FHIR bulk exports: Patient references across exports and runs.

A bulk export asked for ``_type=Observation`` carries no Patient at all, and an incremental
``_since`` export carries only the Patients that changed, while its Observations reference the
others. Both are normal deliveries, so neither may be quarantined for it: a reference resolves
to a Patient of the export or to one an earlier run landed (on either engine), and an export
without any Patient is not checked. A reference to a Patient found in neither is still
quarantined when the export does carry Patients (the generated cohort's dangling references,
tested in ``test_ehr.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from python_ingest.ehr import EhrReader
from python_ingest.job import IngestJob
from python_ingest.spark_engine import SparkIngestJob
from tests.ingest.support import Duck, scan


def _patient(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"lastUpdated": "2024-03-01T10:00:00Z"},
        "gender": "female",
        "birthDate": "1960-05-17",
    }


def _observation(oid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"lastUpdated": "2024-03-02T10:00:00Z"},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2024-03-02T09:00:00Z",
        "valueQuantity": {"value": 12.9, "unit": "g/dL", "code": "g/dL"},
    }


def _export(folder: Path, resources: list[dict[str, Any]]) -> Path:
    """One NDJSON file per resource type, as a bulk export writes them."""
    folder.mkdir(parents=True)
    by_type: dict[str, list[bytes]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def _observations(duck: Duck, bronze: Path) -> list[tuple[str, str]]:
    return duck.query(f"select id, patient_ref from {scan(bronze, 'ehr_observations')} order by id")


def _quarantine(duck: Duck, bronze: Path) -> list[tuple[str, str]]:
    return duck.query(
        f"select _source_locator, reason from {scan(bronze, '_quarantine')} order by all"
    )


def test_an_export_without_patients_lands_unchecked(duck: Duck, tmp_path: Path) -> None:
    source = _export(
        tmp_path / "observations-only",
        [_observation("o1", "p1"), _observation("o2", "p2")],
    )
    summary = IngestJob(EhrReader(), tmp_path / "lakehouse").run(source)
    bronze = tmp_path / "lakehouse" / "bronze"
    assert (summary.records_read, summary.records_landed, summary.records_quarantined) == (2, 2, 0)
    assert _observations(duck, bronze) == [("o1", "p1"), ("o2", "p2")]


def test_an_incremental_export_resolves_patients_landed_before(duck: Duck, tmp_path: Path) -> None:
    lakehouse = tmp_path / "lakehouse"
    full = _export(
        tmp_path / "2024-03-01",
        [_patient("p1"), _patient("p2"), _observation("o1", "p1")],
    )
    IngestJob(EhrReader(), lakehouse).run(full)
    # The next delivery: one new Patient; Observations of an old one, the new one, and one
    # that names a Patient no export ever carried.
    since = _export(
        tmp_path / "2024-03-08",
        [
            _patient("p3"),
            _observation("o2", "p2"),
            _observation("o3", "p3"),
            _observation("o4", "p9"),
        ],
    )
    summary = IngestJob(EhrReader(), lakehouse).run(since)
    bronze = lakehouse / "bronze"
    assert (summary.records_read, summary.records_landed, summary.records_quarantined) == (4, 3, 1)
    assert _observations(duck, bronze) == [("o1", "p1"), ("o2", "p2"), ("o3", "p3")]
    [(locator, reason)] = _quarantine(duck, bronze)
    assert locator == "line 3 Observation/o4"
    assert reason == (
        "Observation.subject -> Patient/p9, which is not a Patient in this export nor landed "
        "by an earlier run"
    )


@pytest.mark.spark
def test_the_spark_engine_resolves_patients_landed_before(spark: Any, tmp_path: Path) -> None:
    lakehouse = tmp_path / "lakehouse"
    full = _export(tmp_path / "2024-03-01", [_patient("p1"), _observation("o1", "p1")])
    SparkIngestJob(EhrReader(), lakehouse, spark).run(full)
    since = _export(
        tmp_path / "2024-03-08",
        [_patient("p3"), _observation("o2", "p1"), _observation("o4", "p9")],
    )
    summary = SparkIngestJob(EhrReader(), lakehouse, spark).run(since)
    assert (summary.records_read, summary.records_landed, summary.records_quarantined) == (3, 2, 1)
