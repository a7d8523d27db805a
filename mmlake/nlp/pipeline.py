"""The notes pipeline: one function from (note_id, text, note_date) to entity rows.

medspaCy, rule-based only (nothing is downloaded): spaCy's blank English tokenizer (medspaCy's
clinical variant), a sentence splitter, the TargetMatcher with the seed lexicons, ConText for the
assertion flags and the Sectionizer with the seed section headers. Raw text goes in; what comes
out is the matched span and its attributes only, never the surrounding text.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mmlake.nlp.lexicon import (
    CLINICAL_CATEGORIES,
    SEED_DIR,
    context_cues,
    lexicon_rules,
    medication_actions,
    section_headers,
)

SPLITTERS = ("lines", "sentencizer", "pyrush")
# The default splitter, chosen by measurement (docs/notes_nlp.md): as accurate as PyRuSH on the
# assertion flags, about as fast as spaCy's sentencizer.
DEFAULT_SPLITTER = "lines"
ENTITY_COLUMNS = (
    "note_id",
    "entity_text",
    "concept",
    "category",
    "concept_class",
    "code_system",
    "code",
    "value",
    "negated",
    "uncertain",
    "historical",
    "hypothetical",
    "family",
    "section",
    "start_char",
    "end_char",
    "note_date",
    "rule_id",
)
# Lines that carry identifiers (banner, signature): nothing found on them is emitted, so a
# lexicon word inside a name or an address ("Rose", "Mesa") never leaves bronze as an entity.
PHI_LINE = re.compile(
    r"^\s*(?:patient(?: name)?|name|mrn(?: #)?|medical record number|dob|date of birth|"
    r"(?:home |cell |work )?phone|contact|address|ssn|attending|referring physician|"
    r"ordering physician|submitting physician|pcp|accession #?|date of service|exam date|"
    r"collected|reported)\s*:|^\s*(?:electronically signed|signed|finalized|dictated)\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"[0-4]")
# A lexicon word that is part of an organisation's name ("Riverside Cancer Center").
ORGANISATION = re.compile(
    r"\s*(?:[A-Z][a-z]+\s+)*(?:Center|Centre|Institute|Hospital|Clinic|Foundation|Society)\b"
)


def _line_sentencizer(doc: Any) -> Any:
    """Sentence starts at line breaks and after . ! ? followed by a capital or a digit.

    Clinical notes put headers, list items and exam findings on lines of their own; a splitter
    that ignores line breaks glues "FAMILY HISTORY:" or "HISTORY OF PRESENT ILLNESS:" to the next
    sentence and ConText then reads the header word as a family/historical cue. A '?' followed by
    a lower-case word ("episode of ? syncope") is a cue of uncertainty, not a sentence end.
    """
    for i, token in enumerate(doc):
        if i == 0:
            token.is_sent_start = True
            continue
        prev = doc[i - 1]
        if token.is_space:
            token.is_sent_start = False
        elif (prev.is_space and "\n" in prev.text) or "\n" in prev.whitespace_:
            token.is_sent_start = True
        else:
            first = token.text[:1]
            token.is_sent_start = prev.text in {".", "!", "?"} and (
                first.isupper() or first.isdigit()
            )
    return doc


def build_nlp(
    splitter: str = DEFAULT_SPLITTER, seed_dir: Path = SEED_DIR, targets: bool = True
) -> Any:
    """The medspaCy pipeline with the seed rules (``targets=False``: no lexicon, for assess)."""
    from loguru import logger

    logger.disable("PyRuSH")  # PyRuSH logs every sentence at INFO otherwise
    # The TargetMatcher's token-pattern matcher is empty (the seeds use phrases and regexes).
    warnings.filterwarnings("ignore", message=r"\[W036\]")
    import medspacy
    from medspacy.context import ConText, ConTextRule
    from medspacy.section_detection import SectionRule
    from medspacy.target_matcher import TargetRule
    from spacy.language import Language

    if splitter not in SPLITTERS:
        raise ValueError(f"unknown sentence splitter {splitter!r}; choose from {SPLITTERS}")
    if "mmlake_line_sentencizer" not in Language.factories:
        Language.component("mmlake_line_sentencizer", func=_line_sentencizer)
    nlp = medspacy.load(medspacy_enable=["medspacy_tokenizer"])
    _keep_slash_abbreviations(nlp)
    nlp.add_pipe(
        {
            "lines": "mmlake_line_sentencizer",
            "sentencizer": "sentencizer",
            "pyrush": "medspacy_pyrush",
        }[splitter]
    )
    matcher = nlp.add_pipe("medspacy_target_matcher")
    if targets:
        matcher.add(
            [
                TargetRule(
                    rule.literal,
                    rule.category.upper(),
                    pattern=rule.pattern or None,
                    metadata={"rule": rule},
                )
                for rule in lexicon_rules(seed_dir)
            ]
        )
    context: ConText = nlp.add_pipe("medspacy_context")
    cues = context_cues(seed_dir)
    dropped = {(c.literal.lower(), c.category) for c in cues if c.action == "drop"}
    if dropped:
        kept = [r for r in context.rules if (r.literal.lower(), r.category) not in dropped]
        context = _replace_context(nlp, kept)
    context.add(
        [
            ConTextRule(
                c.literal,
                c.category,
                pattern=_json_pattern(c.pattern),
                direction=c.direction,
                max_scope=c.max_scope,
            )
            for c in cues
            if c.action == "add"
        ]
    )
    sectionizer = nlp.add_pipe(
        "medspacy_sectionizer", config={"rules": None, "require_start_line": True}
    )
    sectionizer.add([SectionRule(h.literal, h.category) for h in section_headers(seed_dir)])
    return nlp


# Clinical shorthand written with a slash; kept as one token (also before a full stop), so the
# lexicon ("n/v") and ConText ("s/p", "w/o", "h/o", "r/o") match them wherever they stand.
SLASH_ABBREVIATIONS = ("n/v", "f/c", "s/p", "w/o", "h/o", "r/o", "c/o", "f/u", "d/c", "b/l")


def _keep_slash_abbreviations(nlp: Any) -> None:
    from spacy.symbols import ORTH

    for abbreviation in SLASH_ABBREVIATIONS:
        for form in {abbreviation, abbreviation.upper(), abbreviation.capitalize()}:
            nlp.tokenizer.add_special_case(form, [{ORTH: form}])
            nlp.tokenizer.add_special_case(form + ".", [{ORTH: form}, {ORTH: "."}])


def _replace_context(nlp: Any, rules: list[Any]) -> Any:
    """Swap the ConText component for one holding only ``rules`` (default cues minus drops)."""
    nlp.remove_pipe("medspacy_context")
    context = nlp.add_pipe("medspacy_context", config={"rules": None})
    context.add(rules)
    return context


def _json_pattern(text: str) -> list[dict[str, Any]] | None:
    import json

    return json.loads(text) if text else None


def _ecog_score(span_text: str) -> str:
    """The score in an ECOG mention; a range ("ECOG 1-2") keeps the worse (higher) value."""
    digits = _DIGIT.findall(re.sub(r"(?i)ecog|zubrod", "", span_text))
    return str(max(int(d) for d in digits)) if digits else ""


class NotePipeline:
    """A built pipeline plus the cue tables applied after it (medication actions)."""

    def __init__(self, splitter: str = DEFAULT_SPLITTER, seed_dir: Path = SEED_DIR) -> None:
        self.splitter = splitter
        self.nlp = build_nlp(splitter, seed_dir)
        self.actions = [
            (re.compile(a.pattern or re.escape(a.literal), re.IGNORECASE), a.action)
            for a in medication_actions(seed_dir)
        ]

    def _medication_action(self, ent: Any) -> str:
        """What the sentence says happened to the drug: the cue nearest to the drug wins."""
        sent = ent.sent
        text, offset = sent.text, sent.start_char
        best: tuple[int, str] | None = None
        for pattern, action in self.actions:
            for m in pattern.finditer(text):
                start, end = m.start() + offset, m.end() + offset
                gap = start - ent.end_char if start >= ent.end_char else ent.start_char - end
                if gap >= 0 and (best is None or gap < best[0]):
                    best = (gap, action)
        return best[1] if best else ""

    def rows(
        self, notes: Iterable[tuple[str, str, dt.date | None]], batch_size: int = 16
    ) -> Iterator[dict[str, Any]]:
        """Entity rows of ``(note_id, text, note_date)`` triples, in note order."""
        triples = ((nid, text or "", day) for nid, text, day in notes)
        stream = ((text, (nid, day)) for nid, text, day in triples)
        for doc, (note_id, note_date) in self.nlp.pipe(
            stream, as_tuples=True, batch_size=batch_size
        ):
            text = doc.text
            # The identification block above the first section header (institution, name,
            # MRN, DOB, contacts) is PHI as a whole; when a note has headers, skip it entirely.
            headers = [doc[s.title_span[0]].idx for s in doc._.sections if s.category]
            body_start = min(headers, default=0)
            for ent in doc.ents:
                if ent.start_char < body_start:
                    continue
                rule = ent._.target_rule.metadata["rule"]
                if rule.category not in CLINICAL_CATEGORIES:
                    continue
                line_start = text.rfind("\n", 0, ent.start_char) + 1
                if PHI_LINE.match(text, line_start) or ORGANISATION.match(text, ent.end_char):
                    continue
                section = ent._.section_category or ""
                value = ""
                if rule.category == "ecog":
                    value = _ecog_score(ent.text)
                    if not value:
                        continue
                elif rule.category == "medication":
                    value = self._medication_action(ent)
                yield {
                    "note_id": note_id,
                    "entity_text": ent.text,
                    "concept": rule.concept,
                    "category": rule.category,
                    "concept_class": rule.concept_class,
                    "code_system": rule.code_system or None,
                    "code": rule.code or None,
                    "value": value or None,
                    "negated": bool(ent._.is_negated),
                    "uncertain": bool(ent._.is_uncertain),
                    # "a history of hypertension" is an ongoing chronic disease, not a past one.
                    "historical": bool(ent._.is_historical) and rule.concept_class != "chronic",
                    "hypothetical": bool(ent._.is_hypothetical),
                    # A finding listed under the family history header is the relative's.
                    "family": bool(ent._.is_family) or section == "family_history",
                    "section": section or None,
                    "start_char": ent.start_char,
                    "end_char": ent.end_char,
                    "note_date": note_date,
                    "rule_id": rule.rule_id,
                }


# Below this many notes one process wins: a spawned worker needs ~4 s to import spaCy and
# compile the rules, about the time one process takes for 300 notes (docs/notes_nlp.md).
PARALLEL_MIN_NOTES = 2000
_WORKER: NotePipeline | None = None


def _init_worker(splitter: str) -> None:
    global _WORKER
    _WORKER = NotePipeline(splitter)


def _work(chunk: list[tuple[str, str, dt.date | None]]) -> list[dict[str, Any]]:
    assert _WORKER is not None
    return list(_WORKER.rows(chunk))


def extract_entities(
    notes: Iterable[tuple[str, str, dt.date | None]],
    splitter: str = DEFAULT_SPLITTER,
    workers: int | None = None,
    chunk_size: int = 64,
) -> list[dict[str, Any]]:
    """Entity rows for many notes, on ``workers`` processes (default: the machine's cores).

    Workers are spawned, not forked: the caller may be a multi-threaded process (dbt, DuckDB),
    and forking one is unsafe. Below PARALLEL_MIN_NOTES one process is faster than paying for
    the workers' start-up (each loads spaCy and compiles the rules).
    """
    items = list(notes)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(items) < PARALLEL_MIN_NOTES:
        return list(NotePipeline(splitter).rows(items))
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(splitter,),
    ) as pool:
        return [row for rows in pool.map(_work, chunks) for row in rows]
