"""Trial eligibility (gold trial_eligibility / trial_matches) against the generator's truth.

Every criterion's expected status is recomputed here from `_truth` (patients.csv: cancer,
stage, ECOG, driver, genomics tested, brain metastases; the planted note mentions with the
dates of their notes) wherever the truth holds the fact. Two facts are not in the truth - lab
values repeated between diagnosis and the landmark (features.csv has the value at diagnosis
only) and the date a drug was ordered - and are recomputed from silver instead, so that the
model's SQL is still checked by an independent implementation.
The notes-only criterion gets the strictest checks: a negated brain metastasis must never
exclude a patient, an affirmed one always must, and "rule out" decides nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict

import duckdb
import pytest

from mmlake.paths import project_root
from tests.models.conftest import Built

LANDMARK_DAYS = 30
FLAGS = ("negated", "uncertain", "historical", "hypothetical", "family")


def _seed(name: str) -> list[dict[str, str]]:
    with (project_root() / "seeds" / "trials" / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _dicts(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _compare(lhs: float, operator: str, value: str) -> bool:
    rhs = float(value)
    return {
        ">=": lhs >= rhs,
        ">": lhs > rhs,
        "<=": lhs <= rhs,
        "<": lhs < rhs,
        "=": lhs == rhs,
    }[operator]


def _landmark(truth: dict[str, str]) -> dt.date:
    return dt.date.fromisoformat(truth["diagnosis_date"]) + dt.timedelta(days=LANDMARK_DAYS)


@pytest.fixture(scope="module")
def eligibility(warehouse: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], dict]:
    rows = _dicts(warehouse, "select * from gold.trial_eligibility")
    return {(r["patient_key"], r["criterion_id"]): r for r in rows}


@pytest.fixture(scope="module")
def brain_mentions(built: Built) -> dict[str, list[tuple[dt.date, dict[str, str]]]]:
    """Planted brain-metastasis mentions per truth patient_id, with their note's date."""
    with (built.raw / "notes" / "manifest.csv").open(newline="", encoding="utf-8") as f:
        dated = {
            r["note_id"]: dt.datetime.fromisoformat(r["note_datetime"]) for r in csv.DictReader(f)
        }
    out: dict[str, list[tuple[dt.date, dict[str, str]]]] = defaultdict(list)
    for m in built.truth_rows("note_mentions.csv"):
        if m["concept"] == "brain metastases":
            out[m["patient_id"]].append((dated[m["note_id"]].date(), m))
    return out


@pytest.fixture(scope="module")
def silver_facts(warehouse: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Latest labs and the oncology orders per patient_key as of the landmark, from silver."""
    facts: dict[str, dict] = defaultdict(lambda: {"labs": {}, "orders": []})
    for r in _dicts(
        warehouse,
        "select o.patient_key, o.analyte, o.value_canonical from silver.stg_ehr__observations o"
        " join silver.int_ehr__index_dates as i on o.patient_key = i.patient_key"
        " where o.analyte is not null and o.value_canonical is not null"
        " and o.effective_date <= i.landmark_date"
        " order by o.effective_at, o.observation_id",
    ):
        facts[r["patient_key"]]["labs"][r["analyte"]] = r["value_canonical"]  # the latest wins
    drugs = {r["rxnorm_code"]: r for r in _oncology_drugs()}
    for r in _dicts(
        warehouse,
        "select m.patient_key, m.rxnorm_code from silver.stg_ehr__medications as m"
        " join silver.int_ehr__index_dates as i on m.patient_key = i.patient_key"
        " where coalesce(m.status, '') != 'cancelled' and m.authored_date <= i.landmark_date",
    ):
        if r["rxnorm_code"] in drugs:
            facts[r["patient_key"]]["orders"].append(drugs[r["rxnorm_code"]])
    return facts


def _oncology_drugs() -> list[dict[str, str]]:
    with (project_root() / "seeds" / "ehr" / "oncology_drugs.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _brain_fact(mentions: list[tuple[dt.date, dict[str, str]]], landmark: dt.date) -> bool | None:
    """Brain metastases as the notes written by the landmark tell it (None: undecided)."""
    known = [m for day, m in mentions if day <= landmark]
    if any(not any(m[f] == "1" for f in FLAGS) for m in known):
        return True
    if any(m["negated"] == "1" and m["family"] == "0" and m["hypothetical"] == "0" for m in known):
        return False
    return None


def _expected(
    criterion: dict[str, str],
    truth: dict[str, str],
    silver: dict,
    mentions: list[tuple[dt.date, dict[str, str]]],
) -> str:
    """Status of one criterion for one patient, from the truth (and silver where noted)."""
    kind, code, op, value = (criterion[k] for k in ("kind", "code", "operator", "value"))
    accepted = value.split(";")
    holds: bool | None
    if kind == "diagnosis":
        holds = truth["cancer"] in accepted
    elif kind == "stage":
        holds = _compare(int(truth["stage"]), op, value)
    elif kind == "ecog":
        holds = _compare(int(truth["ecog"]), op, value)
    elif kind == "biomarker":
        driver = truth["driver"]
        if truth["has_genomics"] != "1":
            holds = None
        elif code == "gene_symbol":
            holds = bool(driver) and driver.split()[0] in accepted
        else:
            holds = driver in accepted
    elif kind == "lab":
        level = silver["labs"].get(code)
        holds = None if level is None else _compare(level, op, value)
    elif kind == "prior_therapy":
        holds = any(order[code] in accepted for order in silver["orders"])
    else:
        holds = _brain_fact(mentions, _landmark(truth))
    if holds is None:
        return "unknown"
    return "met" if holds == (criterion["criterion_type"] == "inclusion") else "not_met"


@pytest.fixture(scope="module")
def expected(
    truth_by_key: dict[str, dict[str, str]],
    silver_facts: dict[str, dict],
    brain_mentions: dict,
) -> dict[tuple[str, str], str]:
    criteria = _seed("trial_criteria.csv")
    return {
        (key, c["criterion_id"]): _expected(
            c,
            truth,
            silver_facts[key],
            brain_mentions.get(truth["patient_id"], []),
        )
        for key, truth in truth_by_key.items()
        for c in criteria
    }


def test_every_patient_is_screened_for_every_criterion(
    eligibility: dict, truth_by_key: dict[str, dict[str, str]]
) -> None:
    criteria = {c["criterion_id"] for c in _seed("trial_criteria.csv")}
    assert len(eligibility) == len(truth_by_key) * len(criteria)
    assert {k for k, _ in eligibility} == set(truth_by_key)


def test_each_criterion_matches_the_truth(eligibility: dict, expected: dict) -> None:
    wrong = [
        (key[1], eligibility[key]["status"], status, eligibility[key]["evidence_value"])
        for key, status in expected.items()
        if eligibility[key]["status"] != status
    ]
    assert not wrong, wrong[:10]
    # The cohort exercises every status of every kind that has missing data.
    seen = {(r["criterion_kind"], r["status"]) for r in eligibility.values()}
    for kind in ("biomarker", "notes_fact"):
        assert {(kind, s) for s in ("met", "not_met", "unknown")} <= seen, kind


def test_negated_brain_metastases_never_exclude(
    eligibility: dict, truth_by_key: dict[str, dict[str, str]], brain_mentions: dict
) -> None:
    notes = [r for r in eligibility.values() if r["criterion_kind"] == "notes_fact"]
    by_status: dict[str, set[str]] = defaultdict(set)
    for r in notes:
        by_status[r["status"]].add(r["patient_key"])
    # Excluded patients truly have brain metastases, and an affirmed mention shows it.
    assert by_status["not_met"], "no patient is excluded for brain metastases"
    for key in by_status["not_met"]:
        assert truth_by_key[key]["brain_metastases"] == "1", key
    # Patients cleared by the notes truly have none: the deciding mention was negated.
    assert by_status["met"]
    for r in notes:
        if r["status"] == "met":
            assert truth_by_key[r["patient_key"]]["brain_metastases"] == "0"
            assert r["evidence_value"].endswith("[negated]") and r["method"].startswith("nlp:")
    # Every patient with brain metastases documented by the landmark is excluded.
    for key, truth in truth_by_key.items():
        fact = _brain_fact(brain_mentions.get(truth["patient_id"], []), _landmark(truth))
        if fact:
            assert key in by_status["not_met"], key
    # "rule out brain metastases" decides nothing.
    uncertain = [r for r in notes if (r["evidence_value"] or "").endswith("[uncertain]")]
    assert uncertain and all(r["status"] == "unknown" for r in uncertain)


def test_matches_follow_the_criteria(
    warehouse: duckdb.DuckDBPyConnection, expected: dict[tuple[str, str], str]
) -> None:
    trial_of = {c["criterion_id"]: c["trial_id"] for c in _seed("trial_criteria.csv")}
    statuses: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (key, criterion), status in expected.items():
        statuses[(key, trial_of[criterion])].append(status)
    matches = {
        (r["patient_key"], r["trial_id"]): r
        for r in _dicts(warehouse, "select * from gold.trial_matches")
    }
    assert set(matches) == set(statuses)
    verdicts = defaultdict(set)
    for pair, found in statuses.items():
        if "not_met" in found:
            verdict = "not_eligible"
        else:
            verdict = "possibly_eligible" if "unknown" in found else "eligible"
        row = matches[pair]
        assert row["status"] == verdict, pair
        assert row["n_criteria"] == len(found) == row["n_met"] + row["n_not_met"] + row["n_unknown"]
        assert row["n_unknown"] == found.count("unknown")
        verdicts[pair[1]].add(verdict)
    # Planted eligible and ineligible patients exist for the trials this cohort can fill.
    assert "eligible" in verdicts["MMT-IO-05"] and "not_eligible" in verdicts["MMT-IO-05"]
    assert sum("eligible" in v for v in verdicts.values()) >= 3


def test_decided_criteria_carry_their_evidence(eligibility: dict) -> None:
    for r in eligibility.values():
        if r["status"] == "unknown" or r["criterion_kind"] == "prior_therapy":
            continue  # nothing decided it, or the absence of an order did
        assert r["evidence_table"] and r["evidence_key"] and r["evidence_value"], r
        if r["criterion_kind"] == "notes_fact":
            assert r["method"].startswith("nlp:DGX"), r
            assert r["evidence_date"] <= r["eligibility_date"], r
