"""Gold snapshots: the training table read at a pinned Delta version, with what identifies it.

Every model and every report says exactly which data it saw: the Delta version of each gold table
it read and the digest of the dbt manifest that built them. Reading at a version (Delta time
travel through DuckDB's ``delta_scan(path, version => N)``) makes a run reproducible long after
later ``dbt build`` runs have committed newer versions.

``--gold-version N`` pins ``patient_multimodal``; the other gold tables are read at the latest
version committed no later than that one, so a snapshot is always one consistent build.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from mmlake.delta import delta_version
from mmlake.duckdb_ext import connect

TRAINING_TABLE = "patient_multimodal"
SUBGROUP_TABLE = "cohort_subgroups"
LABEL = "label"
KEY = "patient_key"


class MLInputError(RuntimeError):
    """The gold input cannot be used (missing table or version, wrong schema, one class only).

    The CLI prints the message on one line and exits non-zero; no traceback.
    """


@dataclass(frozen=True)
class GoldSnapshot:
    """One consistent read of gold: the frames and the versions they came from."""

    lakehouse: Path
    frame: pd.DataFrame  # patient_multimodal, one row per patient
    subgroups: pd.DataFrame  # cohort_subgroups (empty when the table is not built)
    versions: dict[str, int] = field(default_factory=dict)
    manifest_digest: str | None = None

    @property
    def gold_version(self) -> int:
        return self.versions[TRAINING_TABLE]

    def labelled(self) -> pd.DataFrame:
        """Patients with a known label (a diagnosis and a complete outcome window)."""
        return self.frame[self.frame[LABEL].notna()].reset_index(drop=True)

    def describe(self) -> dict[str, object]:
        """Tags/params that identify this snapshot (MLflow, reports)."""
        return {
            "gold_versions": dict(self.versions),
            "dbt_manifest_sha256": self.manifest_digest,
            "rows": len(self.frame),
        }


def gold_path(lakehouse: Path, table: str) -> Path:
    return lakehouse / "gold" / table


def manifest_digest(lakehouse: Path) -> str | None:
    """sha256 of the dbt manifest that built the lakehouse (None when dbt never ran here)."""
    manifest = lakehouse / "dbt" / "target" / "manifest.json"
    if not manifest.is_file():
        return None
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def _commit_timestamp(path: Path, version: int) -> int:
    """Commit time (ms since epoch) of one Delta version, from its commitInfo."""
    log_file = path / "_delta_log" / f"{version:020d}.json"
    for line in log_file.read_text(encoding="utf-8").splitlines():
        action = json.loads(line)
        if "commitInfo" in action and "timestamp" in action["commitInfo"]:
            return int(action["commitInfo"]["timestamp"])
    return int(log_file.stat().st_mtime * 1000)


def version_as_of(path: Path, timestamp_ms: int) -> int | None:
    """Latest version of ``path`` committed at or before ``timestamp_ms`` (None if none)."""
    latest = delta_version(path)
    if latest is None:
        return None
    for version in range(latest, -1, -1):
        log_file = path / "_delta_log" / f"{version:020d}.json"
        if log_file.is_file() and _commit_timestamp(path, version) <= timestamp_ms:
            return version
    return None


def read_delta(path: Path, version: int) -> pd.DataFrame:
    """One Delta table at one version as pandas (DuckDB reads; no delta-rs scanner)."""
    con = connect()
    try:
        return con.sql(
            "select * from delta_scan(?, version => ?)",
            params=[str(path), version],
        ).df()
    except Exception as exc:
        raise MLInputError(f"cannot read {path} at version {version}: {exc}") from exc
    finally:
        con.close()


def load_gold(lakehouse: Path, gold_version: int | None = None) -> GoldSnapshot:
    """Read the training table (and subgroups) at ``gold_version`` (default: latest).

    Raises MLInputError for a missing or empty table or a version that does not exist.
    """
    path = gold_path(lakehouse, TRAINING_TABLE)
    latest = delta_version(path)
    if latest is None:
        raise MLInputError(
            f"gold table {TRAINING_TABLE} not found at {path}: run `dbt build` "
            "(or `mmlake demo`) first"
        )
    version = latest if gold_version is None else gold_version
    if version < 0 or version > latest:
        raise MLInputError(
            f"gold version {version} of {TRAINING_TABLE} does not exist "
            f"(versions 0..{latest} at {path})"
        )
    frame = read_delta(path, version)
    if frame.empty:
        raise MLInputError(f"gold table {TRAINING_TABLE} is empty at version {version} ({path})")
    if LABEL not in frame.columns or KEY not in frame.columns:
        raise MLInputError(
            f"gold table {TRAINING_TABLE} at version {version} has no {KEY!r}/{LABEL!r} column"
        )
    versions = {TRAINING_TABLE: version}
    subgroups = pd.DataFrame({KEY: pd.Series(dtype="string")})
    sub_path = gold_path(lakehouse, SUBGROUP_TABLE)
    sub_version = version_as_of(sub_path, _commit_timestamp(path, version))
    if sub_version is not None:
        subgroups = read_delta(sub_path, sub_version)
        versions[SUBGROUP_TABLE] = sub_version
    return GoldSnapshot(
        lakehouse=lakehouse,
        frame=frame,
        subgroups=subgroups,
        versions=versions,
        manifest_digest=manifest_digest(lakehouse),
    )


def require_two_classes(labels: np.ndarray, where: str) -> None:
    """A model of a binary outcome needs both classes; say so plainly otherwise."""
    values = set(np.unique(labels[~pd.isna(labels)]).tolist())
    if len(values) < 2:
        found = ", ".join(str(int(v)) for v in sorted(values)) or "none"
        raise MLInputError(
            f"label in {where} has one class only (found: {found}); "
            "a progression model needs both progressed and non-progressed patients"
        )


def utc_now() -> datetime:
    return datetime.now(UTC)
