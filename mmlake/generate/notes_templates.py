"""The note builder and the text blocks every note type shares.

Every frame that places a concept in the text goes through :class:`NoteBuilder`, which records
the exact surface string and its assertion flags, so the ground truth can never drift from what
the file says. The phrase banks and lexicons it draws on live in
:mod:`mmlake.generate.notes_lexicon`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from mmlake.generate.cohort import PatientRecord
from mmlake.generate.notes_lexicon import (
    CLINICIAN_FIRST,
    CLINICIAN_LAST,
    ECOG_MEANING,
    FAMILY_CONDITIONS,
    PHRASES,
    RELATIVES,
)


def pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    """One option drawn from ``rng`` (keeps every choice on the patient's stream)."""
    return options[int(rng.random() * len(options))]  # several times faster than integers()


def fmt_date(rng: np.random.Generator, day: dt.date) -> str:
    """A date as clinicians type it: the mix of styles is what date-shifting must handle."""
    style = int(rng.integers(4))
    if style == 0:
        return day.strftime("%m/%d/%Y")
    if style == 1:
        return day.isoformat()
    if style == 2:
        return f"{day.strftime('%B')} {day.day}, {day.year}"
    return f"{day.month}/{day.day}/{day.strftime('%y')}"


def clinician(rng: np.random.Generator) -> tuple[str, str]:
    """A fictional clinician as (first, last)."""
    return pick(rng, CLINICIAN_FIRST), pick(rng, CLINICIAN_LAST)


def listing(n: int, conjunction: str = "and", after: list[str] | None = None) -> str:
    """``{0}, {1} and {2}``: slots for ``n`` concepts, each optionally followed by a text."""
    parts = [f"{{{i}}}" + (f" {after[i]}" if after else "") for i in range(n)]
    return parts[0] if n == 1 else ", ".join(parts[:-1]) + f" {conjunction} " + parts[-1]


class Concept(NamedTuple):
    """One concept placed in a note, with its assertion status."""

    surface: str
    concept: str
    category: str  # symptom | family_history | diagnosis | medication | procedure | ecog
    negated: bool = False
    uncertain: bool = False
    historical: bool = False
    hypothetical: bool = False
    family: bool = False


@dataclass
class NoteBuilder:
    """Assembles a note section by section and records every concept it places.

    Sentences of one section form one paragraph (no hard wrapping, so a surface string never
    straddles a line break); ``line`` writes a line of its own (header blocks, lists).
    """

    lines: list[str] = field(default_factory=list)
    mentions: list[tuple[Concept, str]] = field(default_factory=list)
    section: str = ""
    _paragraph: list[str] = field(default_factory=list)

    def _flush(self) -> None:
        if self._paragraph:
            self.lines.append(" ".join(self._paragraph))
            self._paragraph = []

    def start(self, header: str) -> None:
        """Open a section; ``header`` is written as ``HEADER:`` on its own line."""
        self._flush()
        if self.lines:
            self.lines.append("")
        self.lines.append(f"{header}:")
        self.section = header

    def say(self, frame: str, *concepts: Concept, **slots: str) -> None:
        """Append a sentence built from ``frame``; ``{0}``, ``{1}`` take the concepts' surfaces."""
        self._paragraph.append(self._render(frame, concepts, slots))

    def line(self, frame: str = "", *concepts: Concept, **slots: str) -> None:
        """Write a line of its own (an empty frame writes a blank line)."""
        self._flush()
        self.lines.append(self._render(frame, concepts, slots) if frame else "")

    def _render(self, frame: str, concepts: tuple[Concept, ...], slots: dict[str, str]) -> str:
        surfaces = [c.surface for c in concepts]
        if frame[:1] == "{" and frame[1:2].isdigit():  # a concept opens the sentence
            i = int(frame[1])
            surfaces[i] = surfaces[i][0].upper() + surfaces[i][1:]
        for concept, surface in zip(concepts, surfaces, strict=True):
            self.mentions.append((concept._replace(surface=surface), self.section))
        return frame.format(*surfaces, **slots)

    def text(self) -> str:
        self._flush()
        return "\n".join(self.lines).rstrip() + "\n"


def banner(
    b: NoteBuilder, rng: np.random.Generator, p: PatientRecord, lines: list[tuple[str, str]]
) -> None:
    """The identification block EHR notes open with: PHI in its usual places and label styles."""
    name = pick(rng, (f"{p.family_name}, {p.given_name}", f"{p.given_name} {p.family_name}"))
    b.line(f"{pick(rng, ('Patient', 'Patient Name', 'Name'))}: {name}")
    b.line(f"{pick(rng, ('MRN', 'Medical Record Number', 'MRN #'))}: {p.mrn}")
    b.line(f"{pick(rng, ('DOB', 'Date of Birth'))}: {fmt_date(rng, p.birth_date)}")
    for label, value in lines:
        b.line(f"{label}: {value}")


def signature(
    b: NoteBuilder, rng: np.random.Generator, verb: str, when: dt.datetime, who: tuple[str, str]
) -> None:
    b.line()
    stamp = f"{fmt_date(rng, when.date())} {when.strftime('%H:%M')}"
    b.line(f"{verb} by {who[0]} {who[1]}, MD on {stamp}")


def neg(surface: str, concept: str, category: str = "diagnosis", **flags: bool) -> Concept:
    """A negated concept (the most common assertion after affirmed, so it gets a shorthand)."""
    return Concept(surface, concept, category, negated=True, **flags)


def dx(surface: str, concept: str | None = None, **flags: bool) -> Concept:
    """A diagnosis or finding; the normalized concept defaults to the lower-cased surface."""
    return Concept(surface, concept or surface.lower(), "diagnosis", **flags)


def med(name: str, **flags: bool) -> Concept:
    """A medication, normalized to its RxNorm ingredient name (the surface is that name)."""
    return Concept(name, name, "medication", **flags)


def family_history(b: NoteBuilder, rng: np.random.Generator) -> None:
    n = int(rng.integers(0, 3))
    if n == 0:
        cancer = neg(pick(rng, ("malignancy", "cancer")), "cancer", "family_history", family=True)
        b.say(pick(rng, PHRASES["family_none"]), cancer)
    for i in rng.choice(len(FAMILY_CONDITIONS), size=n, replace=False):
        condition = FAMILY_CONDITIONS[int(i)]
        relative = pick(rng, RELATIVES)
        male = relative.split()[-1].lower() in ("father", "brother", "uncle", "grandfather")
        b.say(
            pick(rng, PHRASES["family"]),
            Concept(
                condition,
                condition.replace("diabetes", "diabetes mellitus"),
                "family_history",
                family=True,
            ),
            R=relative,
            age=str(int(rng.integers(45, 85))),
            h="his" if male else "her",
            decade=str(int(rng.integers(4, 9)) * 10),
        )


def social_history(b: NoteBuilder, rng: np.random.Generator, p: PatientRecord) -> None:
    smoker = rng.random()
    current, former = (0.25, 0.55) if p.cancer.key == "nsclc" else (0.1, 0.3)
    packs = str(int(rng.integers(10, 60)))
    quit_year = str(p.diagnosis_date.year - int(rng.integers(1, 25)))
    if smoker < current:
        b.say(
            "Current {0}, {n} pack-years.", Concept("smoker", "tobacco use", "diagnosis"), n=packs
        )
    elif smoker < current + former:
        former_smoker = Concept("smoker", "tobacco use", "diagnosis", historical=True)
        b.say("Former {0}, {n} pack-years, quit in {y}.", former_smoker, n=packs, y=quit_year)
    else:
        b.say(pick(rng, ("Denies {0}.", "No history of {0}.")), neg("tobacco use", "tobacco use"))
    if rng.random() < 0.5:
        b.say("Denies {0}.", neg("alcohol use", "alcohol use"))
    else:
        b.say(pick(rng, PHRASES["alcohol"]))
    b.say(pick(rng, PHRASES["occupation"]))
    b.say(pick(rng, PHRASES["home"]))


def exam(b: NoteBuilder, rng: np.random.Generator, ecog: int | None, weight: float) -> None:
    """Vitals and a focused exam; negative findings are logged like any other negation."""
    b.line(
        f"Vitals: BP {int(rng.integers(105, 160))}/{int(rng.integers(60, 95))}, "
        f"HR {int(rng.integers(58, 105))}, Temp {rng.normal(36.8, 0.25):.1f} C, "
        f"SpO2 {int(rng.integers(92, 100))}% on room air, Weight {rng.normal(weight, 0.8):.1f} kg"
    )
    b.say(pick(rng, PHRASES["general"]))
    if ecog is not None:
        # The ECOG concept is ``ecog:<score>`` so the score is recoverable from the truth log.
        mention = Concept(pick(rng, PHRASES["ecog"]).format(v=ecog), f"ecog:{ecog}", "ecog")
        b.say(pick(rng, PHRASES["ecog_sentence"]), mention, meaning=ECOG_MEANING[ecog])
    b.say("HEENT: Anicteric sclerae, oropharynx clear.")
    b.say(pick(rng, PHRASES["lymph"]), neg("lymphadenopathy", "lymphadenopathy"))
    b.say(pick(rng, PHRASES["lungs"]))
    b.say("Heart: Regular rate and rhythm, no {0}.", neg("murmurs", "heart murmur"))
    edema = neg(pick(rng, ("edema", "lower extremity edema")), "peripheral edema")
    b.say("Extremities: No {0}.", edema)
    b.say("Neuro: Alert and oriented, strength 5/5 throughout.")
