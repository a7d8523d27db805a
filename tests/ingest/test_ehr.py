"""EHR bronze ingestion: a generated FHIR bulk export and real FHIR files, landed exactly once.

The generated cohort says which records it damaged (``_truth/dirty_records.csv``); the reader
must quarantine exactly those (but for dangling Encounter references: bronze resolves Patient
references only, silver the rest), land every other resource once with its bytes unchanged,
and keep doing so across re-runs and a rewritten file. The real files (HL7 examples, Synthea
bundles, a SMART bulk export) are checked against their ``EXPECTED_FACTS.md``.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmlake.delta import is_delta_table
from python_ingest.ehr import BOM, VALIDATION_ENV, EhrReader
from python_ingest.ehr_schemas import SCHEMAS, TABLES
from python_ingest.job import IngestJob
from tests.ingest.support import Duck, dirty_records, generate, land, land_copy, rerun, scan
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "fhir"
TYPED = {
    "Patient": "ehr_patients",
    "Encounter": "ehr_encounters",
    "Condition": "ehr_conditions",
    "Observation": "ehr_observations",
    "MedicationRequest": "ehr_medication_requests",
    "Procedure": "ehr_procedures",
}
LINE = re.compile(r"^line (\d+)(?: |$)")
# The generator's dangling Encounter references: bronze resolves Patient references only
# (the index it can afford to ship to every worker); silver checks the others.
ENCOUNTER_DANGLING = re.compile(r"\.encounter -> Encounter/")
STAGE_CODES = {"258215001": 1, "258219007": 2, "258224005": 3, "258228008": 4, "396925001": 4}


def _lines(folder: Path) -> dict[tuple[str, int], bytes]:
    """Every non-blank NDJSON line of the folder, by (absolute file, line number)."""
    out = {}
    for path in sorted(folder.glob("*.ndjson")):
        for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            if line.strip():
                out[(str(path.resolve()), number)] = line
    return out


def _table_state(duck: Duck, bronze: Path) -> dict[str, tuple[int, Counter[str]]]:
    """Row count and the multiset of record hashes of every EHR table the run landed (and our
    quarantine); a table no resource of the export fills (the cohort sends no
    DocumentReference) is not created."""
    state = {}
    for table in TABLES:
        if not is_delta_table(bronze / table):
            continue
        rows = duck.query(f"select _record_hash from {scan(bronze, table)}")
        state[table] = (len(rows), Counter(r[0] for r in rows))
    rows = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where modality = 'ehr'"
    )
    state["_quarantine"] = (len(rows), Counter("|".join(r) for r in rows))
    return state


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory, seed=4242, modalities=("ehr", "imaging"))


@pytest.fixture(scope="module")
def bronze(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bronze, summary = land(EhrReader(), cohort / "ehr", tmp_path_factory.mktemp("lakehouse"))
    assert summary.files_landed == summary.files_seen > 0
    return bronze


def test_discovery_skips_the_bulk_manifest(cohort: Path) -> None:
    files = EhrReader().discover(cohort / "ehr")
    assert (cohort / "ehr" / "manifest.json").exists()
    assert sorted(files) == files and sorted(files) == sorted((cohort / "ehr").glob("*.ndjson"))


def test_valid_records_land_once_and_dirty_ones_are_quarantined(
    duck: Duck, cohort: Path, bronze: Path
) -> None:
    lines = _lines(cohort / "ehr")
    dirty = {
        (str((cohort / r["file"]).resolve()), int(LINE.match(r["locator"])[1])): r
        for r in dirty_records(cohort, "ehr")
    }
    assert {r["kind"] for r in dirty.values()} >= {"invalid_json", "missing_required_field"}
    leftover = {k for k, r in dirty.items() if ENCOUNTER_DANGLING.search(r["reason"])}
    quarantined = {}
    for file, locator, reason in duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where modality = 'ehr'"
    ):
        key = (file, int(LINE.match(locator)[1]))
        assert key not in quarantined, f"{key} quarantined twice"
        assert len(reason) > 20
        quarantined[key] = (locator, reason)
    assert set(quarantined) == set(dirty) - leftover
    for key, (locator, reason) in quarantined.items():
        # The locator names the damaged resource as the truth does (a cut line may lose its id).
        assert dirty[key]["locator"].startswith(locator), (locator, dirty[key])
        if dirty[key]["kind"] == "unresolvable_reference":
            assert re.search(
                r"\w+\.subject -> Patient/[0-9a-f-]{36}, which is not a Patient", reason
            )
    landed = duck.query(
        f"select _source_file, _source_locator, raw_json, _record_hash, resource_type, id "
        f"from {scan(bronze, 'ehr_resources')}"
    )
    keys = [(f, int(LINE.match(loc)[1])) for f, loc, *_ in landed]
    assert len(keys) == len(set(keys)), "a record landed twice"
    assert set(keys) == set(lines) - set(quarantined)
    for (_, locator, raw, digest, rtype, rid), key in zip(landed, keys, strict=True):
        assert raw.encode() == lines[key]  # exactly as received
        assert digest == hashlib.sha256(lines[key]).hexdigest()
        assert locator == f"line {key[1]} {rtype}/{rid}"
    # The dangling-Encounter records are in bronze for silver's reference check to catch.
    assert leftover and leftover <= set(keys)


def test_typed_rows_mirror_their_resource_rows(duck: Duck, bronze: Path) -> None:
    resources = duck.query(
        f"select resource_type, _source_locator, _record_hash, id, patient_ref "
        f"from {scan(bronze, 'ehr_resources')}"
    )
    for rtype, table in TYPED.items():
        expected = {(loc, h, i) for t, loc, h, i, _ in resources if t == rtype}
        rows = duck.query(f"select _source_locator, _record_hash, id from {scan(bronze, table)}")
        assert len(rows) == len(expected) > 0 and set(rows) == expected, table
        names = [r[0] for r in duck.query(f"describe select * from {scan(bronze, table)}")]
        assert names[: len(SCHEMAS[table]) - 2] == SCHEMAS[table].names[:-2]
    patients = {i for t, _, _, i, _ in resources if t == "Patient"}
    # ResearchStudy belongs to no patient; every other resource of the export names one.
    linked = [p for t, *_, p in resources if t not in ("Patient", "ResearchStudy")]
    assert linked and all(p in patients for p in linked)  # every landed record has its patient


def test_typed_columns_recompute_the_cohort_truth(duck: Duck, cohort: Path, bronze: Path) -> None:
    with (cohort / "_truth" / "patients.csv").open(encoding="utf-8") as handle:
        truth = {r["patient_id"]: r for r in csv.DictReader(handle)}
    patients = {
        r[0]: r[1:]
        for r in duck.query(
            f"select id, mrn, gender, family, birth_date, city from {scan(bronze, 'ehr_patients')}"
        )
    }
    assert set(patients) == set(truth)
    for pid, (mrn, gender, family, birth_date, city) in patients.items():
        assert mrn == truth[pid]["mrn"] and gender == truth[pid]["sex"]
        assert family and city and isinstance(birth_date, dt.date)
    cancers = duck.query(
        f"select patient_ref, onset_date, stage_summary_code, icd10cm_code, snomed_code "
        f"from {scan(bronze, 'ehr_conditions')} where stage_summary_code is not null"
    )
    assert {c[0] for c in cancers} == set(truth)
    for pid, onset, stage_code, icd, snomed in cancers:
        assert onset.isoformat() == truth[pid]["diagnosis_date"]
        assert STAGE_CODES[stage_code] == int(truth[pid]["stage"]) and icd and snomed
    ecog = duck.query(
        f"select patient_ref, value_integer from {scan(bronze, 'ehr_observations')} "
        "where loinc_code = '89247-1'"
    )
    assert dict(ecog) == {p: int(t["ecog"]) for p, t in truth.items()}
    # The outcome label, from the typed tables alone: a "worsened" disease status (SNOMED
    # 271299001, LOINC 97509-4) within 365 days of the cancer Condition's onset date.
    labels = duck.query(
        f"""
        select c.patient_ref, bool_or(o.value_code = '271299001'
            and o.effective_date <= c.onset_date + interval 365 day)
        from {scan(bronze, "ehr_conditions")} c
        join {scan(bronze, "ehr_observations")} o
            on o.patient_ref = c.patient_ref and o.loinc_code = '97509-4'
        where c.stage_summary_code is not null
        group by 1
        """
    )
    assert {p: int(v) for p, v in labels} == {p: int(t["label"]) for p, t in truth.items()}
    bp = duck.query(
        f"select components from {scan(bronze, 'ehr_observations')} where loinc_code = '85354-9'"
    )
    assert bp and all({c["code"] for c in row[0]} == {"8480-6", "8462-4"} for row in bp)
    # Imaging Procedures carry the study's accession number (v2-0203 ACSN), the link to DICOM.
    imaging = duck.query(
        f"select identifiers from {scan(bronze, 'ehr_procedures')} "
        "where code in ('77477000', '113091000')"
    )
    assert imaging and all(any(i["type_code"] == "ACSN" for i in row[0]) for row in imaging)
    meds = duck.query(
        f"select count(*), count(rxnorm_code), count(authored_on), count(dosage_text) "
        f"from {scan(bronze, 'ehr_medication_requests')}"
    )[0]
    assert meds[0] > 0 and len(set(meds)) == 1


def test_ingest_log_accounts_for_every_record(duck: Duck, cohort: Path, bronze: Path) -> None:
    lines = Counter(f for f, _ in _lines(cohort / "ehr"))
    log = duck.query(
        f"select path, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed' and modality = 'ehr'"
    )
    assert {row[0] for row in log} == set(lines)  # manifest.json is not an EHR record file
    landed = Counter(
        r[0] for r in duck.query(f"select _source_file from {scan(bronze, 'ehr_resources')}")
    )
    bad = Counter(
        r[0] for r in duck.query(f"select _source_file from {scan(bronze, '_quarantine')}")
    )
    for path, read, n_landed, n_bad in log:
        assert read == n_landed + n_bad == lines[path]
        assert (n_landed, n_bad) == (landed[path], bad[path])


def test_reruns_change_nothing(duck: Duck, cohort: Path, bronze: Path) -> None:
    before = _table_state(duck, bronze)
    for summary in rerun(EhrReader(), cohort / "ehr", bronze):
        assert summary.files_skipped == summary.files_seen and summary.files_landed == 0
        assert _table_state(duck, bronze) == before


def test_a_rewritten_file_relands_without_duplicates(
    duck: Duck, cohort: Path, tmp_path: Path
) -> None:
    source, bronze, _ = land_copy(EhrReader(), cohort / "ehr", tmp_path)
    before = _table_state(duck, bronze)
    target = source / "Procedure.000.ndjson"
    lines = target.read_bytes().split(b"\n")
    target.write_bytes(b"\n".join(lines[5:]))  # five resources fewer, every locator shifted
    summary = IngestJob(EhrReader(), bronze.parent).run(source)
    assert summary.files_landed == 1 and summary.files_skipped == summary.files_seen - 1
    after = _table_state(duck, bronze)
    file_rows = duck.query(
        f"select _source_locator, _record_hash from {scan(bronze, 'ehr_resources')} "
        "where _source_file = ?",
        str(target.resolve()),
    )
    assert len(file_rows) == len(set(file_rows))
    bad = duck.query(
        f"select count(*) from {scan(bronze, '_quarantine')} where _source_file = ?",
        str(target.resolve()),
    )[0][0]
    assert len(file_rows) + bad == sum(1 for line in lines[5:] if line.strip())
    removed = before["ehr_resources"][0] - after["ehr_resources"][0]
    removed += before["_quarantine"][0] - after["_quarantine"][0]
    assert removed == 5
    procedures = duck.query(
        f"select count(*) from {scan(bronze, 'ehr_procedures')} where _source_file = ?",
        str(target.resolve()),
    )[0][0]
    assert procedures == len(file_rows)


# ---------------------------------------------------------------- real files (shared/realdata)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if not REALDATA.is_dir():
        pytest.skip(f"real FHIR files not found at {REALDATA} (shared/realdata is not mounted)")
    bronze, _ = land(EhrReader(), REALDATA, tmp_path_factory.mktemp("real"))
    facts = json.loads((REALDATA / "expected_facts.json").read_text(encoding="utf-8"))
    return bronze, facts


def _per_file(
    duck: Duck, bronze: Path, table: str, where: str = "", column: str = "_source_file"
) -> dict[str, int]:
    rows = duck.query(f"select {column}, count(*) from {scan(bronze, table)} {where} group by 1")
    return {str(Path(f).relative_to(REALDATA)): n for f, n in rows}


def test_real_bulk_export_lands_whole(duck: Duck, real: tuple[Path, dict[str, Any]]) -> None:
    bronze, facts = real
    landed = _per_file(duck, bronze, "ehr_resources")
    quarantined = _per_file(duck, bronze, "_quarantine")
    for name, fact in facts["bulk_ndjson_10_patients"].items():
        if name.endswith("log.ndjson"):  # export log events, not FHIR resources
            assert quarantined[name] == fact["lines"] == 4 and name not in landed
            continue
        assert landed[name] == fact["lines"] and name not in quarantined, name
        types = duck.query(
            f"select resource_type, count(*), count(distinct id), count(distinct patient_ref) "
            f"from {scan(bronze, 'ehr_resources')} where _source_file = ? group by 1",
            str(REALDATA / name),
        )
        assert {t: n for t, n, *_ in types} == fact["resourceTypes"]
        assert types[0][2] == fact["distinct_ids"]
        if "distinct_subject_or_patient_refs" in fact:
            assert types[0][3] == fact["distinct_subject_or_patient_refs"], name
    patient_fact = facts["bulk_ndjson_10_patients"]["bulk-ndjson-10-patients/Patient.000.ndjson"]
    patients = duck.query(
        f"select id, gender, deceased from {scan(bronze, 'ehr_patients')} "
        "where _source_file like '%bulk-ndjson-10-patients%' order by id"
    )
    assert [p[0] for p in patients] == patient_fact["patient_ids"]
    assert dict(Counter(p[1] for p in patients)) == patient_fact["genders"]
    assert sum(bool(p[2]) for p in patients) == patient_fact["deceased"] == 3
    reason = duck.query(
        f"select distinct reason from {scan(bronze, '_quarantine')} where _source_file like ?",
        "%log.ndjson",
    )
    assert len(reason) == 1 and "no resourceType" in reason[0][0]
    # DocumentReference attachments carry the note text base64-encoded, kept verbatim.
    raw = duck.query(
        f"select raw_json from {scan(bronze, 'ehr_resources')} "
        "where resource_type = 'DocumentReference' limit 1"
    )[0][0]
    attachment = orjson.loads(raw)["content"][0]["attachment"]
    assert attachment["contentType"].startswith("text/plain")
    assert len(base64.b64decode(attachment["data"]).decode("utf-8")) > 20


def test_real_synthea_bundles_land_every_entry(
    duck: Duck, real: tuple[Path, dict[str, Any]]
) -> None:
    bronze, facts = real
    for name, fact in facts["synthea_r4_bundles"].items():
        path = REALDATA / name
        rows = duck.query(
            f"select resource_type, id, patient_ref, raw_json, _source_locator "
            f"from {scan(bronze, 'ehr_resources')} where _source_file = ?",
            str(path),
        )
        assert len(rows) == fact["entries"], name
        assert dict(Counter(r[0] for r in rows)) == fact["resource_counts"]
        bundle = json.loads(path.read_text(encoding="utf-8"))
        by_locator = {
            f"entry {i} {e['resource']['resourceType']}/{e['resource']['id']}": e
            for i, e in enumerate(bundle["entry"], start=1)
        }
        for rtype, rid, patient_ref, raw, locator in rows:
            assert json.loads(raw) == by_locator[locator]["resource"]  # the entry, as written
            if rtype not in ("Organization", "Practitioner"):
                assert patient_ref == fact["patient_id"], (name, rtype, rid)
        patient = duck.query(
            f"select id, family, given, gender, birth_date, deceased, deceased_at "
            f"from {scan(bronze, 'ehr_patients')} where _source_file = ?",
            str(path),
        )
        assert len(patient) == 1
        pid, family, given, gender, birth, deceased, deceased_at = patient[0]
        assert (pid, family, given) == (
            fact["patient_id"],
            fact["patient_name"]["family"],
            " ".join(fact["patient_name"]["given"]),
        )
        assert (gender, birth.isoformat()) == (fact["gender"], fact["birthDate"])
        if fact["deceasedDateTime"]:
            expected = dt.datetime.fromisoformat(fact["deceasedDateTime"])
            assert deceased is True and deceased_at == expected
        else:
            assert deceased is None and deceased_at is None
    assert "Mejía" in {
        r[0] for r in duck.query(f"select family from {scan(bronze, 'ehr_patients')}")
    }
    assert not _per_file(duck, bronze, "_quarantine", "where _source_file like '%synthea-r4%'")


def test_real_hl7_examples_land_or_are_quarantined_with_a_reason(
    duck: Duck,
    real: tuple[Path, dict[str, Any]],
) -> None:
    bronze, facts = real
    landed = _per_file(duck, bronze, "ehr_resources")
    quarantined = _per_file(duck, bronze, "_quarantine")
    logged = _per_file(duck, bronze, "_ingest_log", "where status = 'landed'", column="path")
    for name, fact in facts["hl7_r4_examples"].items():
        entries = fact.get("entries", 1)
        assert landed.get(name, 0) + quarantined.get(name, 0) == entries, name
    assert not [n for n in logged if n.endswith((".xml", "expected_facts.json"))]
    peter = duck.query(
        f"select family, given, gender, birth_date, deceased from {scan(bronze, 'ehr_patients')} "
        "where id = 'example'"
    )
    assert peter == [("Chalmers", "Peter James", "male", dt.date(1974, 12, 25), False)]
    weight = duck.query(
        f"select patient_ref, loinc_code, value_quantity, value_unit, effective_date "
        f"from {scan(bronze, 'ehr_observations')} where id = 'example'"
    )
    assert weight == [("example", "29463-7", 185.0, "lbs", dt.date(2016, 3, 28))]
    reasons = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where _source_file like '%/examples/%'"
    )
    by_file = Counter(Path(f).name for f, _, _ in reasons)
    assert by_file["diagnosticreport-example.json"] == 18  # every entry names Patient/pat2
    assert all(" -> Patient/" in r and "not a Patient in this export" in r for *_, r in reasons)
    assert {"Condition", "Encounter"} <= {
        r[0] for r in duck.query(f"select resource_type from {scan(bronze, 'ehr_resources')}")
    }


# ---------------------------------------------------------------- format edge cases


def _patient(pid: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "gender": "female"} | extra


def _observation(oid: str, subject: str, **extra: Any) -> dict[str, Any]:
    code = {"coding": [{"system": "http://loinc.org", "code": "718-7"}]}
    base = {"resourceType": "Observation", "id": oid, "status": "final", "code": code}
    return base | {"subject": {"reference": subject}} | extra


def test_format_edge_cases_land_or_quarantine_precisely(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    lines = [
        orjson.dumps(_patient("p1", birthDate="1950")),  # year-only birth date (Safe Harbor)
        b"",  # blank line: not a record
        orjson.dumps(_patient("p2", gender="woman")),  # not a code of AdministrativeGender
        orjson.dumps({"resourceType": "Observaton", "id": "typo"}),
        orjson.dumps(_observation("o1", "urn:uuid:0c3a1c1e")),  # urn outside a Bundle
        b"[1, 2]",
    ]
    (export / "Mixed.000.ndjson.gz").write_bytes(gzip.compress(b"\r\n".join(lines) + b"\r\n"))
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "fullUrl": "http://x/fhir/Observation/o2",
                "resource": _observation("o2", "Patient/p1"),
            },
            {
                "fullUrl": "http://x/fhir/Observation/o3",
                "resource": _observation("o3", "Patient/p9"),
            },
            {"request": {"method": "DELETE", "url": "Observation/o4"}},
        ],
    }
    (export / "page1.json").write_bytes(BOM + json.dumps(bundle, indent=2).encode())
    (export / "broken.json").write_bytes(b'{"resourceType": "Patient", "id": ')
    (export / "manifest.json").write_bytes(orjson.dumps({"transactionTime": "x", "output": []}))
    (export / "notes.xml").write_text("<Patient/>", encoding="utf-8")
    (export / ".hidden.ndjson").write_bytes(orjson.dumps(_patient("h")))
    (export / "bad.ndjson.gz").write_bytes(b"not gzip")

    reader = EhrReader()
    files = reader.discover(export)
    assert [f.name for f in files] == [
        "Mixed.000.ndjson.gz",
        "bad.ndjson.gz",
        "broken.json",
        "page1.json",
    ]
    mixed = reader.read(export / "Mixed.000.ndjson.gz")
    assert (mixed.records_read, mixed.records_landed) == (5, 1)
    patient = mixed.tables["ehr_patients"].to_pylist()[0]
    assert (patient["birth_date"], patient["birth_year"]) == (None, 1950)
    reasons = {q.locator: q.reason for q in mixed.quarantined}
    assert "'woman', which is not a code" in reasons["line 3 Patient/p2"]
    assert "'Observaton' is not a FHIR R4 (or R4B)" in reasons["line 4 Observaton/typo"]
    assert "it is not in a Bundle" in reasons["line 5 Observation/o1"]
    assert "not an object" in reasons["line 6"]
    page = reader.read(export / "page1.json")
    assert (page.records_read, page.records_landed) == (3, 1)
    landed = page.tables["ehr_resources"].to_pylist()[0]
    assert landed["_source_locator"] == "entry 1 Observation/o2" and landed["patient_ref"] == "p1"
    assert json.loads(landed["raw_json"]) == bundle["entry"][0]["resource"]
    assert landed["raw_json"].startswith("{\n")  # the entry's own bytes, indentation and all
    reasons = {q.locator: q.reason for q in page.quarantined}
    assert "Observation.subject -> Patient/p9" in reasons["entry 2 Observation/o3"]
    assert "DELETE Observation/o4" in reasons["entry 3"]
    for name in ("broken.json", "bad.ndjson.gz"):
        whole = reader.read(export / name)
        assert whole.records_read == 1 and whole.quarantined[0].locator == "file"


def test_full_model_validation_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The typed resources get the R4B model by default, which quarantines malformed nested
    values; ``MMLAKE_EHR_VALIDATION=rules`` opts out and lets them land verbatim."""
    lines = [
        orjson.dumps(_patient("p1", birthDate="1950-13-45")),  # not a FHIR date
        orjson.dumps(_patient("p2", name=[{"family": 42}])),  # a number where a string goes
        orjson.dumps(_patient("p3", gender="woman")),  # a rule: quarantined in every mode
    ]
    (tmp_path / "Patient.000.ndjson").write_bytes(b"\n".join(lines))
    monkeypatch.delenv(VALIDATION_ENV, raising=False)
    assert EhrReader().validation == "typed"
    outcomes = {}
    for mode in ("rules", "typed", "all"):
        monkeypatch.setenv(VALIDATION_ENV, mode)
        reader = EhrReader()
        reader.discover(tmp_path)
        outcomes[mode] = reader.read(tmp_path / "Patient.000.ndjson")
    rules = outcomes["rules"]
    assert (rules.records_read, rules.records_landed) == (3, 2)
    assert rules.tables["ehr_patients"].column("birth_date").to_pylist() == [None, None]
    for mode in ("typed", "all"):
        reasons = {q.locator: q.reason for q in outcomes[mode].quarantined}
        assert outcomes[mode].records_landed == 0, mode
        assert "Patient.birthDate" in reasons["line 1 Patient/p1"]
        assert "Patient.name.0.family" in reasons["line 2 Patient/p2"]
        assert "'woman', which is not a code" in reasons["line 3 Patient/p3"]
    with pytest.raises(ValueError, match="validation must be one of"):
        EhrReader("strict")
