"""The rules of the notes pipeline, read from the seed CSVs in ``seeds/notes/``.

Keeping the lexicons as dbt seeds makes them reviewable data (a clinician can add a synonym in a
CSV) and puts the same rows in the warehouse, where ``rule_id`` on every entity points back to
the seed row that matched: the provenance a tumour board can check.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mmlake.paths import project_root

SEED_DIR = project_root() / "seeds" / "notes"
# Target lexicons, one CSV per entity category (the category column repeats it).
LEXICON_FILES = (
    "notes_lexicon_symptoms.csv",
    "notes_lexicon_medications.csv",
    "notes_lexicon_procedures.csv",
    "notes_lexicon_diagnoses.csv",
    "notes_lexicon_ecog.csv",
    "notes_lexicon_response.csv",
)
# Only these categories may leave the pipeline: clinical concepts, never PHI (names, dates,
# identifiers, places). A lexicon row with any other category is refused at load time.
CLINICAL_CATEGORIES = frozenset(
    {"symptom", "medication", "procedure", "diagnosis", "ecog", "response"}
)


@dataclass(frozen=True)
class LexiconRule:
    """One seed row: a literal phrase or a regular expression naming one normalised concept."""

    rule_id: str
    literal: str
    pattern: str
    concept: str
    category: str
    concept_class: str
    code_system: str
    code: str


@dataclass(frozen=True)
class ContextCue:
    """A ConText modifier added to medspaCy's defaults (notes_context_rules.csv)."""

    rule_id: str
    action: str  # add: a new cue; drop: remove medSpaCy's default cue with this literal
    literal: str
    pattern: str
    category: str
    direction: str
    max_scope: int | None


@dataclass(frozen=True)
class SectionHeader:
    """A section title at the start of a line (notes_sections.csv)."""

    literal: str
    category: str


@dataclass(frozen=True)
class MedicationAction:
    """A cue that says what happened to a medication in its sentence (started, stopped...)."""

    rule_id: str
    literal: str
    pattern: str
    action: str


def _rows(name: str, seed_dir: Path) -> list[dict[str, str]]:
    with (seed_dir / name).open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


@cache
def lexicon_rules(seed_dir: Path = SEED_DIR) -> tuple[LexiconRule, ...]:
    """Every target rule of the lexicon seeds, with unique rule ids and clinical categories."""
    rules = tuple(LexiconRule(**row) for name in LEXICON_FILES for row in _rows(name, seed_dir))
    seen: set[str] = set()
    for rule in rules:
        if rule.rule_id in seen:
            raise ValueError(f"duplicate rule_id {rule.rule_id} in {seed_dir}")
        if rule.category not in CLINICAL_CATEGORIES:
            raise ValueError(f"rule {rule.rule_id}: category {rule.category!r} is not clinical")
        seen.add(rule.rule_id)
    return rules


@cache
def context_cues(seed_dir: Path = SEED_DIR) -> tuple[ContextCue, ...]:
    return tuple(
        ContextCue(
            rule_id=row["rule_id"],
            action=row["action"],
            literal=row["literal"],
            pattern=row["pattern"],
            category=row["category"],
            direction=row["direction"],
            max_scope=int(row["max_scope"]) if row["max_scope"] else None,
        )
        for row in _rows("notes_context_rules.csv", seed_dir)
    )


@cache
def section_headers(seed_dir: Path = SEED_DIR) -> tuple[SectionHeader, ...]:
    return tuple(
        SectionHeader(row["literal"], row["category"])
        for row in _rows("notes_sections.csv", seed_dir)
    )


@cache
def medication_actions(seed_dir: Path = SEED_DIR) -> tuple[MedicationAction, ...]:
    return tuple(MedicationAction(**row) for row in _rows("notes_medication_actions.csv", seed_dir))
