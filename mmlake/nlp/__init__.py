"""Clinical-notes NLP: rule-based concept extraction with assertion status (medspaCy).

The lexicons are the dbt seeds under ``seeds/notes/`` (read from the repository, so the dbt model
``int_notes__entities`` and the ``mmlake nlp`` command use the same rules). No statistical model is
loaded: spaCy's blank English tokenizer, a line-aware sentence splitter, medspaCy's TargetMatcher,
ConText and Sectionizer. See docs/notes_nlp.md for the design and the measurements.
"""

from __future__ import annotations

from mmlake.nlp.pipeline import ENTITY_COLUMNS, NotePipeline, extract_entities

__all__ = ["ENTITY_COLUMNS", "NotePipeline", "extract_entities"]
