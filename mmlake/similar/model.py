"""The vocabulary of similar-case search: results, errors and where things live.

A neighbour row has the same fields in the Python API, the CLI and gold ``similar_cases``, so
the tumor-board page, a notebook and a SQL consumer all read one shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from mmlake.delta import delta_version
from mmlake.duckdb_ext import connect

IMAGING = "imaging"
MULTIMODAL = "multimodal"
MODES: tuple[str, ...] = (IMAGING, MULTIMODAL)
DEFAULT_K = 10

EMBEDDINGS_TABLE = "imaging_embeddings"
MULTIMODAL_TABLE = "patient_multimodal"
SOURCE_TABLES: dict[str, str] = {
    IMAGING: f"gold.{EMBEDDINGS_TABLE}",
    MULTIMODAL: f"gold.{MULTIMODAL_TABLE}",
}
GOLD_TABLE = "similar_cases"
INDEX_FILE = Path("vector") / "similar_cases.duckdb"


class SimilarCaseError(RuntimeError):
    """A request the data cannot answer (unknown patient, empty cohort, no index, ...).

    The CLI prints the message on one line and exits 2: these are the user's to fix, not
    stack traces to read.
    """


@dataclass(frozen=True)
class Neighbour:
    """One similar case of one query patient: a row of gold ``similar_cases``."""

    patient_key: str
    mode: str  # imaging | multimodal
    rank: int  # 1 = most similar
    neighbour_key: str
    distance: float  # cosine distance (imaging) or 1 - mean per-modality similarity
    similarity: float  # higher = closer; 1 - distance
    shared_modalities: str  # modalities both patients have, joined by '+'
    contributions: str  # JSON {modality: cosine similarity} over shared_modalities
    cancer_type: str | None
    neighbour_cancer_type: str | None
    source_table: str  # gold.imaging_embeddings | gold.patient_multimodal
    source_version: int  # Delta version of source_table that was read
    computed_at: datetime  # UTC

    @property
    def contribution_map(self) -> dict[str, float]:
        """``contributions`` parsed: each shared modality's similarity."""
        return {str(k): float(v) for k, v in json.loads(self.contributions).items()}


def contributions_json(values: dict[str, float]) -> str:
    """Stable JSON of per-modality similarities (sorted keys, 6 decimals)."""
    return json.dumps({m: round(float(v), 6) for m, v in sorted(values.items())}, sort_keys=True)


def cohort_key(text: str | None) -> str | None:
    """Normalised cancer type for matching: case, spaces, dashes and underscores do not count.

    "Glioblastoma", "glioblastoma " and "GLIOBLASTOMA" all select cancer_type glioblastoma;
    a free-text cohort never matches a substring, so "lung" does not silently mean nsclc.
    """
    if text is None:
        return None
    return "".join(ch for ch in text.lower() if ch.isalnum()) or None


def utc_now() -> datetime:
    return datetime.now(UTC)


def gold_path(lakehouse: Path, table: str) -> Path:
    return lakehouse / "gold" / table


def index_path(lakehouse: Path) -> Path:
    return lakehouse / INDEX_FILE


def latest_version(lakehouse: Path, table: str) -> int:
    """Latest Delta version of a gold table, or a one-line error saying how to build it."""
    path = gold_path(lakehouse, table)
    version = delta_version(path)
    if version is None:
        raise SimilarCaseError(
            f"gold table {table} not found at {path}: run `dbt build` (or `mmlake demo`) first"
        )
    return version


def read_gold(lakehouse: Path, table: str, sql: str, version: int) -> pd.DataFrame:
    """``sql`` over one gold table at one version; ``{t}`` in ``sql`` names the table."""
    path = gold_path(lakehouse, table)
    con = connect()
    try:
        relation = f"delta_scan('{str(path).replace(chr(39), chr(39) * 2)}', version => {version})"
        return con.sql(sql.format(t=relation)).df()
    except Exception as exc:
        raise SimilarCaseError(f"cannot read {path} at version {version}: {exc}") from exc
    finally:
        con.close()


DATABRICKS_INDEX = Path("databricks") / "vector_search" / "imaging_embeddings_index.json"


def databricks_index_definition(catalog: str, endpoint: str) -> dict[str, object]:
    """The Mosaic AI Vector Search index request body for one catalog and endpoint.

    The checked-in JSON is the body of ``POST /api/2.0/vector-search/indexes`` (or
    ``VectorSearchClient.create_delta_sync_index``) with ``{catalog}`` and ``{endpoint}`` left
    to fill in, so the same file serves every workspace (docs/similar_cases.md).
    """
    from mmlake.paths import project_root

    text = (project_root() / DATABRICKS_INDEX).read_text(encoding="utf-8")
    return json.loads(text.replace("{catalog}", catalog).replace("{endpoint}", endpoint))
