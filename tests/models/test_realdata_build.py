"""`dbt build` over a lakehouse that holds real files written by other tools, next to a cohort.

A site's lakehouse is not only the generator's cohort: FHIR from Synthea or a bulk export, VCFs
from other callers (GT-only, many FORMAT keys, BGEN without sample ids, PLINK), DICOM from a
PACS, Fitbit exports. Each lands in bronze (tests/ingest); this checks that the silver and gold
layers then build and pass every error-severity test, landed in several runs as a site would,
and that what the real files carry reaches silver: Synthea's ImagingStudy UIDs, BGEN and
PLINK samples as sequenced specimens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmlake.dbt_runner import run_dbt
from mmlake.duckdb_ext import connect
from mmlake.generate.runner import GenerationConfig, generate_cohort
from python_ingest.runner import ingest_sources
from tests.realdata import REALDATA

# (modality, folder under shared/realdata), landed one run each after the cohort.
REAL_RUNS = (
    ("ehr", "fhir/synthea-r4"),
    ("ehr", "fhir/bulk-ndjson-10-patients"),
    ("genomics", "vcf/cyvcf2"),
    ("genomics", "vcf/glow"),
    ("imaging", "dicom/pydicom"),
    ("wearables", "wearables/fitabase"),
)

pytestmark = pytest.mark.skipif(
    not all((REALDATA / folder).is_dir() for _, folder in REAL_RUNS),
    reason=f"real files not found under {REALDATA} (shared/realdata)",
)


@pytest.fixture(scope="module")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("realdata-build")
    raw, lakehouse = base / "raw", base / "lakehouse"
    generate_cohort(GenerationConfig(patients=20, seed=3), raw)
    ingest_sources(raw, "all", lakehouse, progress=False)
    for modality, folder in REAL_RUNS:
        ingest_sources(REALDATA / folder, modality, lakehouse, progress=False)
    run_dbt(["build"], target="local", lakehouse=lakehouse)  # raises on any error
    return lakehouse


def test_synthea_imaging_studies_keep_their_study_uid(lakehouse: Path) -> None:
    """Synthea writes the Study UID under system urn:ietf:rfc:3986 as an urn:oid: value."""
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as conn:
        synthea = conn.execute(
            "select count(*), count(s.study_key) from silver.stg_ehr__imaging_studies as s "
            "join bronze.ehr_resources as r on r.id = s.imaging_study_id "
            "where r.resource_type = 'ImagingStudy' and r._source_file like '%synthea-r4%'"
        ).fetchone()
    assert synthea is not None and synthea[0] > 0
    assert synthea[1] == synthea[0]


def test_bgen_and_plink_samples_are_sequenced_specimens(lakehouse: Path) -> None:
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as conn:
        samples = dict(
            conn.execute(
                "select sample_id, is_sequenced from silver.stg_genomics__samples "
                "where sample_id in ('sample_001', 'fam1_ind1')"
            ).fetchall()
        )
        unnamed = conn.execute(
            "select distinct regexp_extract(_source_file, '[^/]+$') "
            "from silver.stg_genomics__genotypes where sample_id is null"
        ).fetchall()
    assert samples == {"sample_001": True, "fam1_ind1": True}
    # Only genotypes of a BGEN that names no samples lack a sample id.
    assert unnamed and all(name.endswith(".bgen") for (name,) in unnamed)


def test_notes_sent_as_fhir_document_references_reach_the_notes_models(lakehouse: Path) -> None:
    """The bulk export's 1215 Synthea notes join the notes export's: linked, read by the NLP."""
    with connect(lakehouse / "warehouse.duckdb", read_only=True) as conn:
        notes = conn.execute(
            "select note_source, count(*), count(patient_key) from silver.stg_notes__notes "
            "group by all order by all"
        ).fetchall()
        read = conn.execute(
            "select count(distinct e.note_key) from silver.int_notes__entities as e "
            "join silver.stg_notes__notes as n using (note_key) "
            "where n.note_source = 'fhir_document_reference'"
        ).fetchone()
    fhir = {source: (n, linked) for source, n, linked in notes}["fhir_document_reference"]
    assert fhir == (1215, 1215)
    assert read is not None and read[0] > 0
