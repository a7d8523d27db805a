"""Listing a modality's files under a folder, fast enough for tens of thousands of small files.

``sorted(p for p in source.rglob("*") if ...)`` costs a stat per file for ``is_file`` and a
Python-level ``Path`` comparison per sort step; a streaming landing folder (an hourly drop per
device) made that a visible share of the whole ingest. This walks with ``os.scandir`` (the file
type comes with the directory entry) and sorts on each path's parts, which is how ``Path``
objects order themselves, so the files and their order are those of the ``rglob`` listing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def visible_files(
    source: Path, wanted: Callable[[Path], bool], *, skip_hidden: bool = True
) -> list[Path]:
    """Regular files under ``source`` that ``wanted`` accepts, sorted as paths sort.

    Hidden files and folders (a name starting with ``.``) below ``source`` are skipped unless
    ``skip_hidden`` is False; symlinked folders are not followed (``rglob`` does not either).
    """
    found: list[Path] = []
    pending = [str(source)]
    while pending:
        folder = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if skip_hidden and entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.is_file() and wanted(path := Path(entry.path)):
                found.append(path)
    found.sort(key=lambda p: p.parts)
    return found
