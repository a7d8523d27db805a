"""Notes silver and gold against bronze and the generator's `_truth/note_mentions.csv`.

Planted mentions are matched to extracted entities by note, surface text and order of
occurrence, then their assertion flags are compared. The truth log names note ids and MRNs;
their keyed pseudonyms are recomputed here with the lakehouse's key.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter, defaultdict

import duckdb
import pytest

from mmlake.nlp.lexicon import lexicon_rules
from mmlake.nlp.pipeline import NotePipeline
from mmlake.pseudonym import pseudonym_key
from tests.models.conftest import Built

FLAGS = ("negated", "uncertain", "historical", "hypothetical", "family")
NOTES_RELATIONS = (
    "silver.stg_notes__notes",
    "silver.int_notes__entities",
    "silver.int_notes__timeline",
    "gold.features_notes",
    "gold.note_events",
)


def _key(built: Built, identifier: str) -> str:
    secret = pseudonym_key(built.lakehouse)
    return hashlib.sha256(f"{secret}:{identifier.strip().upper()}".encode()).hexdigest()


def _dicts(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def matched(built: Built, warehouse: duckdb.DuckDBPyConnection) -> dict:
    """Planted mentions paired with extracted entities (k-th surface in a note to k-th)."""
    entities = _dicts(
        warehouse,
        "select note_key, patient_key, entity_text, concept, category, value, start_char, "
        + ", ".join(FLAGS)
        + " from silver.int_notes__entities order by note_key, start_char",
    )
    by_surface: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in entities:
        by_surface[(row["note_key"], row["entity_text"].lower())].append(row)
    seen: Counter = Counter()
    pairs, missed = [], []
    for mention in built.truth_rows("note_mentions.csv"):
        note_key = _key(built, "note:" + mention["note_id"])
        surface = (note_key, mention["text"].lower())
        k = seen[surface]
        seen[surface] += 1
        rows = by_surface.get(surface, [])
        (pairs if k < len(rows) else missed).append((mention, rows[k] if k < len(rows) else None))
    return {"pairs": pairs, "missed": missed, "entities": entities}


def test_every_bronze_note_is_in_silver(warehouse: duckdb.DuckDBPyConnection) -> None:
    bronze = warehouse.execute("select count(distinct note_id) from bronze.notes").fetchone()[0]
    silver = warehouse.execute("select count(*) from silver.stg_notes__notes").fetchone()[0]
    assert bronze == silver > 0


def test_no_raw_text_or_identifier_leaves_bronze(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    forbidden = {"text", "note_id", "patient_mrn", "author", "_source_file", "_source_locator"}
    identifiers = re.compile(r"MRN\d|NOTE-\d")
    for relation in NOTES_RELATIONS:
        cursor = warehouse.execute(f"select * from {relation}")
        columns = [d[0] for d in cursor.description]
        assert not forbidden & set(columns), relation
        for row in cursor.fetchall():
            for value in row:
                assert not (isinstance(value, str) and identifiers.search(value)), relation
    # Every entity is exactly a lexicon phrase (or a regex match) of the rule that found it.
    rules = {r.rule_id: r for r in lexicon_rules()}
    for rule_id, text in warehouse.execute(
        "select distinct rule_id, entity_text from silver.int_notes__entities"
    ).fetchall():
        rule = rules[rule_id]
        if rule.pattern:
            assert re.fullmatch(rule.pattern, text, re.IGNORECASE), (rule_id, text)
        else:
            assert " ".join(text.lower().split()) == rule.literal.lower(), (rule_id, text)


def test_planted_mentions_are_found(matched: dict) -> None:
    symptoms = [m for m, _ in matched["pairs"] if m["category"] == "symptom"]
    missed = [m for m, _ in matched["missed"] if m["category"] == "symptom"]
    assert len(symptoms) / (len(symptoms) + len(missed)) >= 0.98, missed[:10]
    found = len(matched["pairs"]) / (len(matched["pairs"]) + len(matched["missed"]))
    assert found >= 0.9


def test_assertion_flags_match_the_planted_truth(matched: dict) -> None:
    pairs = matched["pairs"]
    negated = [(m, r) for m, r in pairs if m["negated"] == "1"]
    affirmed = [(m, r) for m, r in pairs if not any(m[f] == "1" for f in FLAGS)]
    negated_ok = sum(r["negated"] for _, r in negated) / len(negated)
    affirmed_ok = sum(not any(r[f] for f in FLAGS) for _, r in affirmed) / len(affirmed)
    said_negated = [m for m, r in pairs if r["negated"]]
    precision = sum(m["negated"] == "1" for m in said_negated) / len(said_negated)
    print(  # the numbers docs/notes_nlp.md quotes
        f"negation precision {precision:.3f} recall {negated_ok:.3f} (n={len(negated)}); "
        f"affirmed accuracy {affirmed_ok:.3f} (n={len(affirmed)})"
    )
    assert negated_ok >= 0.95 and precision >= 0.95
    assert affirmed_ok >= 0.9
    # The other flags on the distractors that matter (planted family mentions are conditions).
    for flag in ("uncertain", "historical", "hypothetical", "family"):
        planted = [
            (m, r)
            for m, r in pairs
            if m[flag] == "1" and (m["category"] == "symptom" or flag == "family")
        ]
        assert planted and sum(r[flag] for _, r in planted) / len(planted) >= 0.95, flag


def _landmarks(warehouse: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    """note_key -> (patient_key, note on or before the patient's landmark)."""
    return {
        note_key: (patient_key, before)
        for note_key, patient_key, before in warehouse.execute(
            "select n.note_key, n.patient_key, n.note_date <= i.landmark_date "
            "from silver.stg_notes__notes as n "
            "inner join silver.int_ehr__index_dates as i on n.patient_key = i.patient_key"
        ).fetchall()
    }


def test_features_never_count_a_distractor_symptom(
    built: Built, warehouse: duckdb.DuckDBPyConnection, matched: dict
) -> None:
    notes = _landmarks(warehouse)
    planted: dict[tuple[str, str], set[bool]] = defaultdict(set)
    truth_counts: dict[str, set[str]] = defaultdict(set)
    for m in built.truth_rows("note_mentions.csv"):
        if m["category"] != "symptom":
            continue
        note_key = _key(built, "note:" + m["note_id"])
        affirmed = not any(m[f] == "1" for f in FLAGS)
        planted[(note_key, m["concept"])].add(affirmed)
        if affirmed and note_key in notes and notes[note_key][1]:
            truth_counts[notes[note_key][0]].add(m["concept"])
    counted: dict[str, set[str]] = defaultdict(set)
    for r in matched["entities"]:
        in_window = r["note_key"] in notes and notes[r["note_key"]][1]
        if r["category"] == "symptom" and in_window and not any(r[f] for f in FLAGS):
            counted[r["patient_key"]].add(r["concept"])
            # A planted distractor (negated, uncertain, ...) must never be counted as present.
            assert planted.get((r["note_key"], r["concept"]), {True}) & {True}, r
    features = dict(
        warehouse.execute(
            "select patient_key, n_affirmed_symptoms from gold.features_notes"
        ).fetchall()
    )
    assert features and all(features[p] == len(c) for p, c in counted.items())
    agree = sum(features.get(p, 0) == len(truth_counts.get(p, ())) for p in features)
    assert agree / len(features) >= 0.95


def test_ecog_from_notes_matches_truth(built: Built, warehouse: duckdb.DuckDBPyConnection) -> None:
    truth = {_key(built, p["mrn"]): int(p["ecog"]) for p in built.truth_rows("patients.csv")}
    rows = warehouse.execute(
        "select patient_key, ecog_notes from gold.features_notes where ecog_notes is not null"
    ).fetchall()
    assert len(rows) >= 20
    wrong = [(p, e, truth[p]) for p, e in rows if truth[p] != e]
    assert not wrong


def test_timeline_reads_medication_changes_and_responses(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    kinds = dict(
        warehouse.execute(
            "select event_kind, count(*) from gold.note_events group by event_kind"
        ).fetchall()
    )
    for kind in ("medication_started", "medication_stopped", "symptom", "response", "procedure"):
        assert kinds.get(kind, 0) > 0, kind
    label = {_key(built, p["mrn"]): p["label"] == "1" for p in built.truth_rows("patients.csv")}
    progressed = warehouse.execute(
        "select distinct patient_key from gold.note_events where event_kind = 'response' "
        "and concept = 'progressive disease' and note_type = 'progress_note'"
    ).fetchall()
    assert progressed and all(label[p] for (p,) in progressed)


def test_nlp_keeps_the_build_quick(warehouse: duckdb.DuckDBPyConnection) -> None:
    """The pipeline re-run on the landed notes: same entities as silver, and fast enough.

    CPU time, not wall clock, so a busy machine does not make it flaky; the build needs about
    this much CPU for the NLP step (plus ~4 s to build the pipeline).
    """
    notes = warehouse.execute(
        "select note_id, text, cast(note_datetime as date) from bronze.notes "
        "where patient_mrn is not null and trim(text) <> ''"
    ).fetchall()
    pipeline = NotePipeline()
    started = time.process_time()
    rows = list(pipeline.rows(notes))
    rate = len(notes) / (time.process_time() - started)
    print(f"NLP: {len(notes)} notes, {rate:.0f} notes/s per core (CPU time)")
    silver = warehouse.execute("select count(*) from silver.int_notes__entities").fetchone()[0]
    assert len(rows) == silver
    assert rate >= 25
