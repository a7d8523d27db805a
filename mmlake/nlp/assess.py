"""Assertion status of a given concept in a given sentence: the NegEx test-corpus task.

Each input line names the target term and the sentence (``concept<TAB>sentence``), so any
concept can be assessed, not only the lexicon's: the term becomes the sentence's one target
span and ConText decides its flags. The output is one JSON object per line, scorable against an
annotated corpus (NegEx-style "Negated"/"Affirmed" labels map to ``negated``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from mmlake.nlp.pipeline import DEFAULT_SPLITTER, build_nlp

FLAGS = ("negated", "uncertain", "historical", "hypothetical", "family")


@dataclass(frozen=True)
class Item:
    concept: str
    sentence: str


def read_items(lines: Iterable[str]) -> Iterator[Item]:
    """``concept<TAB>sentence`` lines; blank lines, ``#`` comments and a header are skipped.

    The original NegEx corpus puts a report number first (number, concept, sentence, label):
    a numeric first column followed by two more is read that way.
    """
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 3 and cols[0].strip().isdigit():
            cols = cols[1:]
        if len(cols) < 2:
            raise ValueError(f"expected concept<TAB>sentence, got: {line[:80]!r}")
        concept, sentence = cols[0].strip(), cols[1].strip()
        if concept.lower() == "concept" and sentence.lower() == "sentence":
            continue
        yield Item(concept, sentence)


def _find(concept: str, sentence: str) -> tuple[int, int] | None:
    """First case-insensitive, whole-word occurrence of the concept (any run of spaces)."""
    words = [re.escape(w) for w in concept.split()]
    if not words:
        return None
    m = re.search(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", sentence, re.IGNORECASE)
    return (m.start(), m.end()) if m else None


def assess(items: Iterable[Item], splitter: str = DEFAULT_SPLITTER) -> Iterator[dict[str, Any]]:
    """One result per item, in order; the sentences go through ``nlp.pipe`` in batches."""
    from spacy.tokens import Span

    nlp = build_nlp(splitter, targets=False)
    context = nlp.get_pipe("medspacy_context")
    upstream = [
        name
        for name in nlp.pipe_names
        if name in ("medspacy_target_matcher", "medspacy_context", "medspacy_sectionizer")
    ]
    batch = list(items)
    docs = nlp.pipe((i.sentence for i in batch), disable=upstream, batch_size=256)
    for item, doc in zip(batch, docs, strict=True):
        result: dict[str, Any] = {"concept": item.concept, "sentence": item.sentence}
        where = _find(item.concept, item.sentence)
        span = doc.char_span(*where, alignment_mode="expand") if where else None
        result["found"] = span is not None
        if span is None:
            result.update(dict.fromkeys(FLAGS))
            yield result
            continue
        doc.ents = [Span(doc, span.start, span.end, label="TARGET")]
        ent = context(doc).ents[0]
        result.update(
            negated=bool(ent._.is_negated),
            uncertain=bool(ent._.is_uncertain),
            historical=bool(ent._.is_historical),
            hypothetical=bool(ent._.is_hypothetical),
            family=bool(ent._.is_family),
        )
        yield result
