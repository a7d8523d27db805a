"""The note pipeline on hand-written notes: spans only, assertion flags, sections, PHI lines."""

from __future__ import annotations

import pytest

from mmlake.nlp.lexicon import CLINICAL_CATEGORIES, lexicon_rules
from mmlake.nlp.pipeline import ENTITY_COLUMNS, NotePipeline

NOTE = """Lakeside Cancer Center
PROGRESS NOTE

Patient: Rose Fever
MRN: MRN00000001
Phone: (555) 555-0100

HISTORY OF PRESENT ILLNESS:
Worsening SOB and DOE over 2 weeks. Denies n/v. Possible early neuropathy; will monitor.
Started pembrolizumab 200 mg IV on 3/2/24. Carboplatin was discontinued.

FAMILY HISTORY:
Sister with breast cancer.

PHYSICAL EXAM:
ECOG PS 2. Extremities: No edema.

ASSESSMENT AND PLAN:
Restaging CT shows stable disease. Call for any fever.

Electronically signed by Alan Abernathy, MD
"""


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return list(NotePipeline().rows([("n1", NOTE, None)]))


def _one(rows: list[dict], text: str) -> dict:
    (row,) = [r for r in rows if r["entity_text"] == text]
    return row


def test_rows_have_the_documented_columns(rows: list[dict]) -> None:
    assert rows and all(tuple(r) == ENTITY_COLUMNS for r in rows)


def test_abbreviations_map_to_concepts_with_their_flags(rows: list[dict]) -> None:
    assert _one(rows, "SOB")["concept"] == "dyspnea"
    assert not _one(rows, "DOE")["negated"]
    assert _one(rows, "n/v")["negated"]
    assert _one(rows, "neuropathy")["uncertain"]
    assert _one(rows, "breast cancer")["family"]
    assert _one(rows, "edema")["negated"]
    assert _one(rows, "fever")["hypothetical"]


def test_header_lines_are_not_assertion_cues(rows: list[dict]) -> None:
    # "HISTORY OF PRESENT ILLNESS:" is a line of its own, not a "history of" cue.
    assert not _one(rows, "SOB")["historical"]
    assert _one(rows, "SOB")["section"] == "history_of_present_illness"


def test_ecog_score_medication_actions_and_responses(rows: list[dict]) -> None:
    assert _one(rows, "ECOG PS 2")["value"] == "2"
    pembro = _one(rows, "pembrolizumab")
    assert (pembro["value"], pembro["code_system"], pembro["code"]) == (
        "started",
        "RxNorm",
        "1547545",
    )
    assert _one(rows, "Carboplatin")["value"] == "stopped"
    assert _one(rows, "stable disease")["category"] == "response"


def test_nothing_is_emitted_from_identification_lines(rows: list[dict]) -> None:
    # "Rose Fever" (a name), the institution and the signature carry lexicon words.
    first_header = NOTE.index("HISTORY OF PRESENT ILLNESS:")
    signature = NOTE.index("Electronically signed")
    assert all(first_header <= r["start_char"] < signature for r in rows)
    assert all(NOTE[r["start_char"] : r["end_char"]] == r["entity_text"] for r in rows)


def test_seed_rules_are_clinical_and_unique() -> None:
    rules = lexicon_rules()
    assert len({r.rule_id for r in rules}) == len(rules) > 400
    assert {r.category for r in rules} == CLINICAL_CATEGORIES
