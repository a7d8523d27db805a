"""Bronze ``imaging_features``: radiomics features and an embedding per DICOM series.

A second pass after ``imaging_instances`` has landed (bronze never decodes pixels on the way
in): ``compute_imaging_features(lakehouse)`` reads the instance rows through DuckDB's
``delta_scan``, groups them by Series Instance UID, and computes, for every series that has no
row yet or whose instances changed, one row: the pixels decoded into a volume
(``imaging_volume``), the lesion found by a modality/body-part rule (``imaging_segment``),
pyradiomics first-order, shape, GLCM and GLRLM features of it, or first-order features of the
whole volume when no rule applies or no lesion is found (``segmentation = 'none'``), and a
64-d embedding (``imaging_radiomics``).

Accounting: every series of ``imaging_instances`` gets exactly one row, whatever its pixels
did (``status``; see ``imaging_features_schema``). Instances without a Series Instance UID
(DICOMDIR files, which index images rather than hold one) belong to no series and get none.

Idempotence: ``_record_hash`` is the sha256 of the sorted ``_record_hash``es of the series'
instances. A series whose row has the same hash, extractor version and settings is skipped
(for a series that did not decode, the installed pixel decoder plugins count too); a
series whose instances changed (a file re-landed, a slice added) is recomputed and replaces
its row (Delta replaceWhere on ``series_instance_uid``); a series that left
``imaging_instances`` loses its row. Each chunk of series is one commit, so a killed run only
loses the chunk in flight and the next run computes what is missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from mmlake.delta import delete_where, is_delta_table, sql_string, write_delta
from mmlake.duckdb_ext import connect
from python_ingest import imaging_radiomics as radiomics
from python_ingest.imaging_features_schema import (
    COMPUTED,
    FAILED,
    NO_PIXEL_DATA,
    NOT_DECODED,
    SCHEMA,
    TABLE,
    feature_columns,
)
from python_ingest.imaging_native import NativeLayout, layout_from_row
from python_ingest.imaging_segment import (
    NONE,
    RULE_SETTINGS,
    longest_axial_diameter,
    rule_for,
    segment,
)
from python_ingest.imaging_volume import load_volume
from python_ingest.model import BATCH_ID, INGESTED_AT, RECORD_HASH, SOURCE_FILE, SOURCE_LOCATOR

__all__ = ["SCHEMA", "TABLE", "FeatureSummary", "compute_imaging_features", "series_features"]

INSTANCES = "imaging_instances"
CHUNK_SERIES = 128  # series per commit
PIXEL_DECODERS = "pixel_decoders"
_DECODER_DISTRIBUTIONS = (
    "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pillow",
    "python-gdcm",
)  # fmt: skip
_IDENTITY = (
    "study_instance_uid", "patient_id", "accession_number", "modality", "body_part_examined",
    "study_date",
)  # fmt: skip


# The imaging_instances columns a native slice is read with (imaging_native.layout_from_row).
_LAYOUT = (
    "sop_instance_uid", "transfer_syntax_uid", "pixel_data_offset", "rows", "columns",
    "number_of_frames", "samples_per_pixel", "bits_allocated", "bits_stored",
    "pixel_representation", "photometric_interpretation", "rescale_slope", "rescale_intercept",
    "image_position_patient", "image_orientation_patient", "pixel_spacing", "slice_thickness",
    "spacing_between_slices", "instance_number",
)  # fmt: skip


@dataclass(frozen=True)
class SeriesTask:
    """One series as bronze knows it: everything a worker needs, nothing it must look up."""

    series_instance_uid: str
    identity: dict[str, Any]  # the _IDENTITY columns
    paths: tuple[str, ...]  # absolute paths of the instances that have Pixel Data
    layouts: tuple[NativeLayout | None, ...]  # how to read each without pydicom, if simple
    n_instances: int
    folder: str
    record_hash: str


@dataclass(frozen=True)
class _Existing:
    """What a row already in ``imaging_features`` was computed from."""

    record_hash: str
    version: str
    settings: str
    status: str


@dataclass
class FeatureSummary:
    series_seen: int = 0
    series_skipped: int = 0  # unchanged since their row was computed
    series_removed: int = 0  # no longer in imaging_instances
    by_status: Counter[str] = field(default_factory=Counter)  # of the series computed now

    @property
    def series_computed(self) -> int:
        return sum(self.by_status.values())


def extractor_settings(modality: str | None) -> str:
    """What, besides the pixels, determines a row: compared before skipping a series."""
    settings = {
        **radiomics.settings_for(modality),
        **radiomics.embedding_settings(),
        "segmentation": RULE_SETTINGS,
        PIXEL_DECODERS: pixel_decoders(),
    }
    return orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()


def pixel_decoders() -> dict[str, str]:
    """The optional pydicom decoder plugins installed (distribution -> version). pydicom
    itself decodes native, deflated and RLE pixel data; JPEG, JPEG-LS and JPEG 2000 need one
    of these, so installing one must retry the series that did not decode."""
    return dict(_installed_decoders())


@cache
def _installed_decoders() -> tuple[tuple[str, str], ...]:
    found = []
    for name in _DECODER_DISTRIBUTIONS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append((name, metadata.version(name)))
    return tuple(found)


def _up_to_date(existing: _Existing | None, task: SeriesTask, version: str) -> bool:
    """Whether a series' row can stay: same instances, extractor and settings. The decoder
    plugins count only for the rows whose pixels did not decode or failed."""
    if existing is None or (existing.record_hash, existing.version) != (task.record_hash, version):
        return False
    wanted = orjson.loads(extractor_settings(task.identity.get("modality")))
    held = orjson.loads(existing.settings)
    if existing.status in (COMPUTED, NO_PIXEL_DATA):
        wanted.pop(PIXEL_DECODERS, None)
        held.pop(PIXEL_DECODERS, None)
    return wanted == held


def series_features(
    paths: Sequence[Path],
    modality: str | None,
    body_part: str | None,
    layouts: Sequence[NativeLayout | None] | None = None,
) -> dict[str, Any]:
    """Decode, segment and describe one series (``paths``: its instances with Pixel Data, any
    order; ``layouts``: what bronze knows of them, see ``imaging_native``). Returns the
    content columns of its row (no identity, no lineage)."""
    volume = load_volume(paths, layouts)
    row: dict[str, Any] = {"n_decoded": volume.n_decoded}
    notes = list(volume.notes)
    if volume.values.size == 0:
        return row | {"status": NOT_DECODED, "status_reason": _sentence(notes)}
    row["n_slices"] = int(volume.values.shape[0])
    row["voxel_spacing_mm"] = [float(s) for s in volume.spacing]
    rule = rule_for(modality, body_part)
    mask = segment(volume.values, rule)
    features = None
    if mask is not None and int(mask.sum()) == 1:
        voxel_volume = float(np.prod(volume.spacing))
        features = radiomics.single_voxel_features(float(volume.values[mask][0]), voxel_volume)
        notes.append("one-voxel lesion: first-order features only, computed directly")
    elif mask is not None:
        try:
            features = radiomics.extract(
                volume.values, mask, volume.spacing, modality, radiomics.LESION_CLASSES
            )
        except Exception as exc:  # e.g. a lesion too thin for a 3-D shape
            notes.append(f"pyradiomics rejected the {int(mask.sum())}-voxel lesion ({exc})")
            mask = None
    elif rule != NONE:
        notes.append(f"rule {rule} found no lesion: whole volume described")
    if mask is None:
        rule = NONE
        try:
            features = radiomics.extract(
                volume.values, volume.valid, volume.spacing, modality, ("firstorder",)
            )
        except Exception as exc:
            notes.append(f"pyradiomics could not describe the volume ({exc})")
            return row | {"status": FAILED, "status_reason": _sentence(notes)}
    else:
        voxels = int(mask.sum())
        row["lesion_voxels"] = voxels
        row["lesion_volume_ml"] = voxels * float(np.prod(volume.spacing)) / 1000.0
        row["lesion_diameter_mm"] = longest_axial_diameter(mask, volume.spacing)
    assert features is not None
    row |= feature_columns(features)
    row["segmentation"] = rule
    row["features_json"] = orjson.dumps(features, option=orjson.OPT_SORT_KEYS).decode()
    row["embedding"] = radiomics.embedding(features)
    return row | {"status": COMPUTED, "status_reason": _sentence(notes)}


def _sentence(notes: list[str]) -> str | None:
    return "; ".join(notes) + "." if notes else None


def _compute(task: SeriesTask) -> dict[str, Any]:
    """A worker's unit: the whole row but the batch lineage."""
    row: dict[str, Any] = {"series_instance_uid": task.series_instance_uid, **task.identity}
    row["n_instances"] = task.n_instances
    modality = task.identity.get("modality")
    if not task.paths:
        row |= {
            "n_decoded": 0,
            "status": NO_PIXEL_DATA,
            "status_reason": f"none of the {task.n_instances} instance(s) has Pixel Data.",
        }
    else:
        try:
            row |= series_features(
                [Path(p) for p in task.paths],
                modality,
                task.identity.get("body_part_examined"),
                task.layouts,
            )
        except Exception as exc:  # a bug must not stop the other series: the row says it
            row |= {
                "n_decoded": 0,
                "status": FAILED,
                "status_reason": f"{type(exc).__name__}: {exc}",
            }
    row["extractor_name"] = radiomics.EXTRACTOR_NAME
    row["extractor_version"] = radiomics.extractor_version()
    row["extractor_settings"] = extractor_settings(modality)
    row[SOURCE_FILE] = task.folder
    row[SOURCE_LOCATOR] = f"SeriesInstanceUID={task.series_instance_uid}"
    row[RECORD_HASH] = task.record_hash
    return row


def _mode(values: Iterable[Any]) -> Any:
    """The most frequent non-null value (the first seen among equals)."""
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


def _tasks(rows: list[dict[str, Any]], source: Path | None) -> list[SeriesTask]:
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault(row["series_instance_uid"], []).append(row)
    root = str(source.resolve()) + os.sep if source is not None else None
    tasks = []
    for uid, members in sorted(series.items()):
        members.sort(key=lambda r: r[SOURCE_FILE])
        files = [r[SOURCE_FILE] for r in members]
        pixels = [r for r in members if r["has_pixel_data"]]
        if root is not None and not any(f.startswith(root) for f in files):
            continue
        digest = hashlib.sha256("\n".join(sorted(r[RECORD_HASH] for r in members)).encode())
        tasks.append(
            SeriesTask(
                series_instance_uid=uid,
                identity={k: _mode(r[k] for r in members) for k in _IDENTITY},
                paths=tuple(r[SOURCE_FILE] for r in pixels),
                layouts=tuple(layout_from_row(r) for r in pixels),
                n_instances=len(members),
                folder=os.path.commonpath([str(Path(f).parent) for f in files]),
                record_hash=digest.hexdigest(),
            )
        )
    return tasks


def _read(lakehouse: Path) -> tuple[list[dict[str, Any]], dict[str, _Existing]]:
    """Instance rows with a series, and what decides whether each existing row is current."""
    bronze = lakehouse / "bronze"
    columns = ", ".join(
        ("series_instance_uid", *_IDENTITY, *_LAYOUT, "has_pixel_data", SOURCE_FILE, RECORD_HASH)
    )
    # A Modality LUT Sequence (0028,3000) replaces the rescale: pydicom applies it.
    columns += """, contains(header_json, '"00283000"') as has_modality_lut"""
    existing: dict[str, _Existing] = {}
    with connect() as conn:
        scan = f"delta_scan({sql_string(str(bronze / INSTANCES))})"
        cursor = conn.execute(f"select {columns} from {scan} where series_instance_uid is not null")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        if is_delta_table(bronze / TABLE):
            for uid, *state in conn.execute(
                "select series_instance_uid, _record_hash, extractor_version, "
                "extractor_settings, status "
                f"from delta_scan({sql_string(str(bronze / TABLE))})"
            ).fetchall():
                existing[uid] = _Existing(*state)
    return rows, existing


def compute_imaging_features(
    lakehouse: Path, source: Path | None = None, workers: int | None = None
) -> FeatureSummary:
    """Bring ``bronze/imaging_features`` up to date with ``bronze/imaging_instances``.

    ``source`` limits the pass to series with a file under that folder (as ``mmlake ingest
    --source`` does); without it, every series is considered and rows of series that left
    ``imaging_instances`` are deleted.
    """
    summary = FeatureSummary()
    bronze = lakehouse / "bronze"
    target = bronze / TABLE
    if not is_delta_table(bronze / INSTANCES):
        return summary
    rows, existing = _read(lakehouse)
    tasks = _tasks(rows, source)
    summary.series_seen = len(tasks)
    version = radiomics.extractor_version()
    todo = [t for t in tasks if not _up_to_date(existing.get(t.series_instance_uid), t, version)]
    summary.series_skipped = len(tasks) - len(todo)
    vanished = (
        []
        if source is not None
        else sorted(existing.keys() - {t.series_instance_uid for t in tasks})
    )
    if vanished:
        delete_where(target, _in_predicate(vanished))
        summary.series_removed = len(vanished)
    if not todo:
        return summary
    batch_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]
    workers = workers or min(2, os.cpu_count() or 1)
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(todo) > 1 else None
    try:
        for start in range(0, len(todo), CHUNK_SERIES):
            chunk = todo[start : start + CHUNK_SERIES]
            results = list(pool.map(_compute, chunk) if pool else map(_compute, chunk))
            _commit(target, chunk, results, batch_id, existing)
            summary.by_status.update(r["status"] for r in results)
    finally:
        if pool is not None:
            pool.shutdown()
    return summary


def _in_predicate(uids: Sequence[str]) -> str:
    return f"series_instance_uid IN ({', '.join(sql_string(u) for u in uids)})"


def _commit(
    target: Path,
    chunk: list[SeriesTask],
    results: list[dict[str, Any]],
    batch_id: str,
    existing: dict[str, Any],
) -> None:
    """One Delta commit: append new series, replace the rows of recomputed ones."""
    at = dt.datetime.now(dt.UTC)
    for row in results:
        row[BATCH_ID], row[INGESTED_AT] = batch_id, at
    table = pa.Table.from_pylist(results, schema=SCHEMA)
    replaced = [t.series_instance_uid for t in chunk if t.series_instance_uid in existing]
    if replaced and is_delta_table(target):
        uids = [t.series_instance_uid for t in chunk]  # replaceWhere must cover every new row
        write_delta(target, table, mode="overwrite", predicate=_in_predicate(uids))
    else:
        write_delta(target, table, mode="append")
