"""`mmlake nlp assess` on a small shipped corpus of assertion cues (NegEx test-set format).

The sentences are our own, one or more per cue family: negation (denies, no evidence of,
ruled out, free of, w/o), uncertainty (possible, cannot be excluded, r/o, ?), history (history
of, status post, in <year>), family (mother had, first-degree relatives), hypothetical (if,
return for, side effects, plan to start) and pseudo-negation scopes ended by "but"/"however".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmlake.cli import app
from mmlake.nlp.assess import FLAGS, Item, assess, read_items

CASES = Path(__file__).with_name("assertion_cases.tsv")


def _expected() -> list[tuple[Item, set[str]]]:
    cases = []
    for line in CASES.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("concept\t"):
            continue
        concept, sentence, labels = line.split("\t")
        flags = set() if labels == "affirmed" else set(labels.split(","))
        cases.append((Item(concept, sentence), flags))
    return cases


@pytest.fixture(scope="module")
def results() -> list[dict]:
    with CASES.open(encoding="utf-8") as handle:
        return list(assess(read_items(handle)))


def test_every_cue_family_is_assessed_as_annotated(results: list[dict]) -> None:
    expected = _expected()
    assert len(results) == len(expected) >= 40
    wrong = []
    for (item, flags), got in zip(expected, results, strict=True):
        assert (got["concept"], got["sentence"]) == (item.concept, item.sentence)
        assert got["found"], item
        found = {flag for flag in FLAGS if got[flag]}
        if found != flags:
            wrong.append(f"{item.concept!r} in {item.sentence!r}: {found} != {flags}")
    assert not wrong, "\n".join(wrong)


def test_negation_precision_and_recall_on_the_corpus(results: list[dict]) -> None:
    truth = ["negated" in flags for _, flags in _expected()]
    said = [bool(r["negated"]) for r in results]
    tp = sum(t and s for t, s in zip(truth, said, strict=True))
    assert tp / max(1, sum(said)) >= 0.95 and tp / max(1, sum(truth)) >= 0.95


def test_a_concept_missing_from_its_sentence_is_reported_not_guessed() -> None:
    (result,) = assess([Item("pleural effusion", "Lungs are clear.")])
    assert result["found"] is False
    assert all(result[flag] is None for flag in FLAGS)


def test_negex_corpus_layout_with_a_report_number_is_read() -> None:
    lines = ["1\tcough\tDenies cough.\tNegated", "cough\tReports cough."]
    expected = [Item("cough", "Denies cough."), Item("cough", "Reports cough.")]
    assert list(read_items(lines)) == expected


def test_cli_prints_one_json_object_per_line(tmp_path: Path) -> None:
    tsv = tmp_path / "in.tsv"
    tsv.write_text("chest pain\tNo chest pain today.\nfever\tMother had fever.\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["nlp", "assess", "--tsv", str(tsv)])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    keys = {"concept", "sentence", "found", *FLAGS}
    assert [set(r) for r in rows] == [keys, keys]
    assert rows[0]["negated"] is True and rows[1]["family"] is True
