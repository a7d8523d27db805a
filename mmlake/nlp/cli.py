"""``mmlake nlp``: the notes pipeline from the command line (assessment and extraction)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mmlake.nlp.pipeline import DEFAULT_SPLITTER, SPLITTERS

app = typer.Typer(
    name="nlp",
    help="Clinical-notes NLP (medspaCy, rule-based): assertion assessment and extraction.",
    no_args_is_help=True,
    add_completion=False,
)

SplitterOpt = Annotated[
    str, typer.Option(help=f"Sentence splitter: {' | '.join(SPLITTERS)} (see docs/notes_nlp.md).")
]


@app.command()
def assess(
    tsv: Annotated[
        Path,
        typer.Option(
            "--tsv", exists=True, dir_okay=False, help="File of concept<TAB>sentence lines."
        ),
    ],
    splitter: SplitterOpt = DEFAULT_SPLITTER,
) -> None:
    """Assertion flags of each concept in its sentence, one JSON object per line.

    Output keys: concept, sentence, found, negated, uncertain, historical, hypothetical, family
    (flags are null when the concept does not occur in the sentence). Score it against a
    NegEx-style annotated corpus by comparing `negated` with the corpus label.
    """
    from mmlake.nlp.assess import assess as run
    from mmlake.nlp.assess import read_items

    started = time.perf_counter()
    with tsv.open(encoding="utf-8") as handle:
        items = list(read_items(handle))
    out = sys.stdout
    for result in run(items, splitter=splitter):
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
    elapsed = time.perf_counter() - started
    typer.echo(f"{len(items)} sentences in {elapsed:.1f} s", err=True)


@app.command()
def extract(
    text: Annotated[Path, typer.Option("--text", exists=True, dir_okay=False, help="A note.")],
    splitter: SplitterOpt = DEFAULT_SPLITTER,
) -> None:
    """Entities of one note file as JSON lines (matched spans and flags, never the text)."""
    from mmlake.nlp.pipeline import NotePipeline

    note = text.read_text(encoding="utf-8")
    for row in NotePipeline(splitter).rows([(text.stem, note, None)]):
        typer.echo(json.dumps(row, default=str))
