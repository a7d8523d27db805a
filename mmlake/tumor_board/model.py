"""The shapes of a tumor-board page: sections of facts, tables and figures with provenance.

A section is a list of facts (label/value pairs), tables (one row per record) and figures
(wearables trends); ``messages`` state absence (a modality the patient does not have, a model
not built, an index that does not exist) so that nothing is silently missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmlake.tumor_board.lineage import BronzeRow, Provenance

MODALITIES = ("ehr", "genomics", "imaging", "notes", "wearables")

# Section ids and headings, in page order: the browser test looks for every one of them.
SECTIONS: dict[str, str] = {
    "demographics": "Demographics",
    "diagnosis": "Diagnosis and stage",
    "modalities": "Modalities",
    "biomarkers": "Biomarkers and actionable variants",
    "imaging": "Imaging features and similar cases",
    "timeline": "Notes timeline",
    "wearables": "Wearables trends",
    "risk": "Risk score",
    "trials": "Trial matches",
    "review": "Clinician review",
}


@dataclass
class Fact:
    label: str
    value: Any
    prov: Provenance


@dataclass
class Table:
    caption: str
    columns: Sequence[str]
    rows: list[tuple[Sequence[Any], Provenance]] = field(default_factory=list)


@dataclass
class Figure:
    title: str
    points: list[tuple[float, float]]
    unit: str
    prov: Provenance


@dataclass
class Section:
    id: str
    facts: list[Fact] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return SECTIONS[self.id]


@dataclass
class Traces:
    """Bronze rows found for this batch, by the key the silver/gold row carries."""

    conditions: Mapping[str, BronzeRow]
    patients: Mapping[str, BronzeRow]
    notes: Mapping[str, BronzeRow]
    imaging: Mapping[str, BronzeRow]
    variants: Mapping[str, BronzeRow]
    wearables: Mapping[str, BronzeRow]


@dataclass
class Sources:
    """Delta versions of the gold tables read for this batch, and optional extra tables."""

    versions: Mapping[str, int | None]
    risk: Mapping[str, list[dict[str, Any]]]
    risk_version: int | None
    similar: Mapping[str, list[dict[str, Any]]] | None
    similar_version: int | None
    visible: frozenset[str]
