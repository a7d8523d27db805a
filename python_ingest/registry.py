"""Which reader lands which modality, and where a modality's files live in a source folder."""

from __future__ import annotations

import importlib
from pathlib import Path

from python_ingest.model import Reader

MODALITIES = ("ehr", "genomics", "imaging", "notes", "wearables")

# modality -> "module:Class"; imported lazily so one modality never loads another's libraries.
READERS: dict[str, str] = {
    "ehr": "python_ingest.ehr:EhrReader",
    "genomics": "python_ingest.genomics:GenomicsReader",
    "imaging": "python_ingest.imaging:ImagingReader",
    "notes": "python_ingest.notes:NotesReader",
    "wearables": "python_ingest.wearables:WearablesReader",
}


def reader_for(modality: str) -> Reader:
    if modality not in READERS:
        raise ValueError(f"unknown modality {modality!r}; choose from {', '.join(MODALITIES)}")
    module_name, class_name = READERS[modality].split(":")
    return getattr(importlib.import_module(module_name), class_name)()


def modality_sources(source: Path, modality: str) -> list[tuple[str, Path]]:
    """(modality, folder) pairs to ingest.

    ``all`` expects the generator's layout (``DIR/ehr``, ``DIR/genomics``, ...) and skips the
    modalities that have no folder; a single modality takes ``source`` itself, whatever wrote it.
    """
    if modality != "all":
        return [(modality, source)]
    return [(m, source / m) for m in MODALITIES if (source / m).is_dir()]
