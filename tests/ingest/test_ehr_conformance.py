"""FHIR R4 as real senders write it: transactions, R4-only types, names no longer in use, and
primitives of the wrong JSON type (which the R4B models coerce and the typed columns would
turn into silent nulls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from python_ingest.ehr import EhrReader

UUID = "urn:uuid:2b90dd2b-2dab-4c75-9bb9-a355e07401e8"


def _write(path: Path, document: Any) -> Path:
    path.write_bytes(orjson.dumps(document))
    return path


def test_a_transaction_s_new_resources_land_under_their_fullurl(tmp_path: Path) -> None:
    """POSTed entries have no id yet: the urn:uuid stands in, and the references that use it
    resolve to that id, so silver can key and link them."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": UUID,
                "resource": {"resourceType": "Patient", "gender": "male"},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:7f2a0c1e-0000-4000-8000-000000000001",
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "Hemoglobin"},
                    "subject": {"reference": UUID},
                    "valueQuantity": {"value": 13.2, "unit": "g/dL"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    outcome = EhrReader().read(_write(tmp_path / "transaction.json", bundle))
    assert (outcome.records_read, outcome.records_landed) == (2, 2)
    patient = outcome.tables["ehr_patients"].to_pylist()[0]
    observation = outcome.tables["ehr_observations"].to_pylist()[0]
    assert patient["id"] == UUID.removeprefix("urn:uuid:")
    assert observation["id"] == "7f2a0c1e-0000-4000-8000-000000000001"
    assert observation["patient_ref"] == patient["id"]
    raw = outcome.tables["ehr_resources"].to_pylist()[0]["raw_json"]
    assert '"id"' not in raw  # the resource lands as it was sent


def test_the_name_and_address_shown_are_those_in_use(tmp_path: Path) -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [
            {"use": "old", "family": "Shaw", "given": ["Amy"]},
            {"family": "Baxter", "given": ["Amy"]},
        ],
        "address": [
            {"use": "old", "line": ["49 Meadow St"], "postalCode": "74047"},
            {"use": "work", "line": ["1 Clinic Way"], "postalCode": "74001"},
            {"line": ["183 Mountain View St"], "postalCode": "74048"},
        ],
    }
    row = EhrReader().read(_write(tmp_path / "p1.json", patient)).tables["ehr_patients"]
    (patient_row,) = row.to_pylist()
    assert patient_row["family"] == "Baxter"
    assert (patient_row["address_line"], patient_row["postal_code"]) == ("1 Clinic Way", "74001")


def test_primitives_of_the_wrong_json_type_are_quarantined(tmp_path: Path) -> None:
    lines = [
        {"resourceType": "Patient", "id": "p1", "deceasedBoolean": "false"},
        {"resourceType": "Patient", "id": "p2", "multipleBirthInteger": 2, "active": True},
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"text": "Glucose"},
            "subject": {"reference": "Patient/p2"},
            "valueQuantity": {"value": "6.3", "unit": "mmol/l"},
        },
        {"resourceType": "Patient", "id": "p3", "name": [{"given": ["Ann", 7]}]},
    ]
    path = tmp_path / "Mixed.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    outcome = EhrReader().read(path)
    assert (outcome.records_read, outcome.records_landed) == (4, 1)
    assert {q.locator: q.reason for q in outcome.quarantined} == {
        "line 1 Patient/p1": "Patient.deceasedBoolean is 'false', but FHIR JSON writes it as a "
        "boolean (true or false)",
        "line 3 Observation/o1": "Observation.valueQuantity.value is '6.3', but FHIR JSON writes "
        "it as a number",
        # A number for a string the model itself refuses.
        "line 4 Patient/p3": "the Patient does not conform to the FHIR R4B model: "
        "Patient.name.0.given.1: Input should be a valid string",
    }


def test_r4_types_that_r4b_withdrew_still_land(tmp_path: Path) -> None:
    lines = [
        {"resourceType": "MedicinalProduct", "id": "mp1", "name": [{"productName": "Abc 5 mg"}]},
        {"resourceType": "SubstanceProtein", "id": "sp1"},
        {"resourceType": "MedicinalThing", "id": "x1"},
    ]
    path = tmp_path / "Products.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    outcome = EhrReader().read(path)
    assert (outcome.records_read, outcome.records_landed) == (3, 2)
    types = outcome.tables["ehr_resources"].column("resource_type").to_pylist()
    assert types == ["MedicinalProduct", "SubstanceProtein"]
    (bad,) = outcome.quarantined
    assert bad.reason == "resourceType 'MedicinalThing' is not a FHIR R4 (or R4B) resource type"


def test_a_coverage_belongs_to_its_beneficiary(tmp_path: Path) -> None:
    lines = [
        {"resourceType": "Patient", "id": "child"},
        {"resourceType": "Patient", "id": "parent"},
        {
            "resourceType": "Coverage",
            "id": "c1",
            "status": "active",
            "beneficiary": {"reference": "Patient/child"},
            "subscriber": {"reference": "Patient/parent"},
            "payor": [{"display": "Acme Health"}],
        },
    ]
    path = tmp_path / "Coverage.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    rows = EhrReader().read(path).tables["ehr_resources"].to_pylist()
    assert [(r["resource_type"], r["patient_ref"]) for r in rows][-1] == ("Coverage", "child")
