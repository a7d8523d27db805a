"""Genomics silver and gold checked against what the generator planted (`_truth`) and the raw VCFs.

The generator plants one driver hotspot per tumour (or none), TP53 hotspot co-mutations and
passengers, and records the features a reader of the files would compute (`features.csv`:
somatic PASS variant counts and panel TMB). Patients are matched through the pseudonymous key,
computed here from the truth MRN with the lakehouse's own key, so these tests do not depend on
the EHR models' identifier table. The raw VCF text is the reference for the Glow semantics that
silver relies on (0-based `start`, REF/ALT as written, one row per ALT after splitting).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

from mmlake.pseudonym import pseudonym_key
from tests.models.conftest import Built


def patient_key(key: str, mrn: str) -> str:
    """The pseudonymize() macro in Python: sha256 hex of '<key>:<MRN upper-cased, trimmed>'."""
    return hashlib.sha256(f"{key}:{mrn.strip().upper()}".encode()).hexdigest()


@pytest.fixture(scope="module")
def sequenced(built: Built) -> dict[str, dict[str, str]]:
    """Truth rows of the patients whose tumour was sequenced, by patient_key."""
    key = pseudonym_key(built.lakehouse)
    rows = built.truth_rows("patients.csv")
    return {patient_key(key, r["mrn"]): r for r in rows if r["has_genomics"] == "1"}


@pytest.fixture(scope="module")
def truth_features(built: Built) -> dict[str, dict[str, float]]:
    """Genomics truth features by patient_key (feature name -> value)."""
    key = pseudonym_key(built.lakehouse)
    mrn = {r["patient_id"]: r["mrn"] for r in built.truth_rows("patients.csv")}
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for row in built.truth_rows("features.csv"):
        if row["modality"] == "genomics":
            out[patient_key(key, mrn[row["patient_id"]])][row["feature"]] = float(row["value"])
    return out


def rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, object]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def raw_vcf_lines(raw: Path) -> dict[tuple[str, int], list[str]]:
    """Every body line of the raw VCFs, by (file name, 1-based line number), split on tabs."""
    lines = {}
    for path in sorted((raw / "genomics" / "vcf").glob("*.vcf.gz")):
        with gzip.open(path, "rt", encoding="ascii") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.startswith("#"):
                    lines[(path.name, number)] = line.rstrip("\n").split("\t")
    return lines


def test_every_planted_driver_is_found(
    warehouse: duckdb.DuckDBPyConnection, sequenced: dict[str, dict[str, str]]
) -> None:
    planted = {(k, r["driver"]) for k, r in sequenced.items() if r["driver"]}
    assert planted, "the cohort has no sequenced driver carriers to check"
    found = {
        (r["patient_key"], r["biomarker_name"])
        for r in rows(
            warehouse,
            "select patient_key, biomarker_name from gold.genomic_biomarkers "
            "where biomarker_role = 'driver'",
        )
    }
    assert planted - found == set(), "planted drivers not reported"
    assert found - planted == set(), "driver calls the generator did not plant"


def test_features_match_truth(
    warehouse: duckdb.DuckDBPyConnection,
    sequenced: dict[str, dict[str, str]],
    truth_features: dict[str, dict[str, float]],
) -> None:
    features = {
        r["patient_key"]: r for r in rows(warehouse, "select * from gold.features_genomics")
    }
    # Every specimen of this cohort is collected within the landmark (tissue up to 10 days
    # before diagnosis, plasma up to 21 days after; landmark = diagnosis + 30 days).
    assert set(features) == set(sequenced)
    for key, f in features.items():
        truth = truth_features[key]
        driver = sequenced[key]["driver"]
        assert f["has_driver"] == bool(truth["has_driver"]), key
        assert f["has_driver"] == bool(driver), key
        reported = f"{f['driver_gene']} {f['driver_protein_change']}" if f["driver_gene"] else ""
        assert reported == driver, key
        assert f["tp53_mutated"] == bool(truth["tp53_mutant"]), key
        assert f["idh1_mutated"] == bool(truth["idh1_mutant"]), key
        assert f["n_somatic_variants"] == int(truth["n_somatic_variants"]), key
        assert f["tmb_per_mb"] == pytest.approx(truth["tmb_per_mb"], rel=1e-5), key
        assert f["n_samples"] == 1
        assert 0.0 < f["mean_purity"] <= 1.0


def test_tmb_is_plausible(
    warehouse: duckdb.DuckDBPyConnection, sequenced: dict[str, dict[str, str]]
) -> None:
    tmb = {
        r["patient_key"]: r["tmb_per_mb"]
        for r in rows(warehouse, "select patient_key, tmb_per_mb from gold.features_genomics")
    }
    assert all(0.0 <= v < 100.0 for v in tmb.values())
    by_cancer: dict[str, list[float]] = defaultdict(list)
    for key, value in tmb.items():
        by_cancer[sequenced[key]["cancer"]].append(value)
    high = [v for c in ("melanoma", "nsclc") for v in by_cancer[c]]
    low = [v for c in ("breast", "glioblastoma") for v in by_cancer[c]]
    assert high and low
    # UV- and smoking-driven tumours carry the highest mutational burden.
    assert sum(high) / len(high) > sum(low) / len(low)


def test_silver_positions_follow_glow_semantics(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    raw = raw_vcf_lines(built.raw)
    silver = rows(
        warehouse,
        """
        select s._source_file, s._source_locator, s.allele_index, s.n_alt_alleles,
               s.original_pos, s.original_ref, s.original_alt, s.info_af, b.start, b."end"
        from silver.stg_genomics__variants as s
        inner join bronze.genomics_variants as b
            on s._source_file = b._source_file and s._source_locator = b._source_locator
        """,
    )
    assert len(silver) > 1000
    seen: dict[tuple[str, int], int] = defaultdict(int)
    for r in silver:
        number = int(str(r["_source_locator"]).split()[1])
        fields = raw[(Path(str(r["_source_file"])).name, number)]
        pos, ref, alts = int(fields[1]), fields[3], fields[4].split(",")
        assert r["start"] == pos - 1, "Glow's start is 0-based"
        assert r["end"] == pos - 1 + len(ref), "Glow's end is start + len(REF)"
        assert r["original_pos"] == pos, "silver pos is the 1-based VCF POS"
        assert r["original_ref"] == ref
        assert r["n_alt_alleles"] == len(alts)
        assert r["original_alt"] == alts[int(r["allele_index"]) - 1]
        af = dict(kv.split("=", 1) for kv in fields[7].split(";") if "=" in kv)["AF"]
        expected_af = float(af.split(",")[int(r["allele_index"]) - 1])
        assert r["info_af"] == pytest.approx(expected_af)
        seen[(Path(str(r["_source_file"])).name, number)] += 1
    # Multi-allelic lines yield one row per ALT; every landed line is present.
    for line, count in seen.items():
        assert count == len(raw[line][4].split(","))
    assert any(count > 1 for count in seen.values()), "no multi-allelic site was exercised"


def test_specimens_link_only_through_the_manifest(
    built: Built, warehouse: duckdb.DuckDBPyConnection
) -> None:
    key = pseudonym_key(built.lakehouse)
    manifest_mrn: dict[str, str] = {}
    for path in (built.raw / "genomics" / "manifests").glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                manifest_mrn[row["specimen_id"]] = row["patient_mrn"]
    vcf_samples: set[str] = set()
    for path in (built.raw / "genomics" / "vcf").glob("*.vcf.gz"):
        with gzip.open(path, "rt", encoding="ascii") as handle:
            header = next(line for line in handle if line.startswith("#CHROM"))
        vcf_samples.update(header.rstrip("\n").split("\t")[9:])
    samples = {
        r["sample_id"]: r
        for r in rows(
            warehouse,
            "select sample_id, patient_key, has_manifest, is_sequenced "
            "from silver.stg_genomics__samples",
        )
    }
    assert set(samples) == set(manifest_mrn) | vcf_samples
    for sample_id, r in samples.items():
        assert r["is_sequenced"] == (sample_id in vcf_samples)
        if sample_id in manifest_mrn:
            assert r["has_manifest"]
            assert r["patient_key"] == patient_key(key, manifest_mrn[sample_id])
        else:
            assert not r["has_manifest"]
            assert r["patient_key"] is None, "a specimen without manifest row must stay unlinked"
    foreign = {
        d["locator"].removeprefix("sample ")
        for d in built.truth_rows("dirty_records.csv")
        if d["modality"] == "genomics" and d["kind"] == "unknown_specimen"
    }
    assert foreign <= {s for s, r in samples.items() if r["patient_key"] is None}


def test_biomarkers_carry_evidence_and_lineage(warehouse: duckdb.DuckDBPyConnection) -> None:
    found = rows(
        warehouse,
        "select * from gold.genomic_biomarkers where biomarker_kind = 'hotspot_variant'",
    )
    assert found
    for r in found:
        assert r["evidence_level"] in {"IA", "IB", "IIC", "IID"}
        assert r["variant_key"].split(":")[0].startswith("chr")
        assert r["zygosity"] in {"het", "hom_alt", "hemizygous"}
        assert 0.0 < r["vaf"] <= 1.0
        assert str(r["_source_file"]).endswith(".vcf.gz")
        assert str(r["_source_locator"]).startswith("line ")
    therapy = {r["biomarker_name"]: r["matched_therapy_rxnorm"] for r in found}
    # Drivers with an approved matched therapy carry its RxNorm code (as the EHR orders it).
    if "EGFR L858R" in therapy:
        assert therapy["EGFR L858R"] == "1721560"
    if "KRAS G12D" in therapy:
        assert therapy["KRAS G12D"] is None
