"""The genomics writer, checked with the field's own readers (pysam and cyvcf2, i.e. htslib).

A small cohort is generated at a 5 % dirty rate; every VCF is read line by line by both readers,
every record they accept is validated against the VCF 4.2 rules htslib does not enforce, and the
lines that fail must be exactly the ones `_truth/dirty_records.csv` lists.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cyvcf2
import pandas as pd
import pysam
import pytest

from mmlake.generate.cohort import ModalityRates, iter_cohort
from mmlake.generate.genomics_manifest import MANIFEST_COLUMNS, PANEL_SIZE_MB
from mmlake.generate.genomics_vcf import GenomicsWriter, _Site
from mmlake.generate.reference import ALL_DRIVERS, CONTIG_LENGTHS, EGFR_L858R, TP53_HOTSPOTS
from mmlake.generate.truth import GenerationContext, TruthLog

SEED = 20240607
PATIENTS = 170
DIRTY_RATE = 0.05
# Corruptions htslib itself rejects, versus spec violations it reads silently (see the module).
HTSLIB_REJECTS = ("line truncated", "POS ", "FORMAT/", "is not a genotype")
SPEC_ONLY = ("exceeds the", "REF ")


def _generate(out: Path, seed: int) -> dict[str, int]:
    truth = TruthLog(out)
    ctx = GenerationContext(out, seed, DIRTY_RATE, truth)
    writer = GenomicsWriter(ctx)
    # Everyone sequenced: three full runs and a partial one from a small cohort.
    for patient in iter_cohort(PATIENTS, seed, ModalityRates(genomics=1.0)):
        truth.patient(patient)
        writer.add(patient)
    counts = writer.close()
    truth.close()
    return counts


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("genomics")
    _generate(out, SEED)
    return out


@dataclass
class Line:
    """One body line of a VCF: its 1-based line number, text and what the readers made of it."""

    number: int
    text: str
    pysam_record: pysam.VariantRecord | None = None
    cyvcf2_ok: bool = False
    spec_error: str | None = None


def _outcomes(iterator: Iterator) -> Iterator[object | None]:
    """Drive a reader by hand: a record, or None where it raised on the line and went on."""
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except Exception:  # pysam raises OSError or ValueError, cyvcf2 a bare Exception
            yield None


def _spec_error(record: pysam.VariantRecord, variant: cyvcf2.Variant) -> str | None:
    """VCF 4.2 rules htslib does not enforce when it parses a line."""
    alleles = (record.ref, *(record.alts or ()))
    if any(not re.fullmatch(r"[ACGTNacgtn]+", a) for a in alleles):
        return "REF/ALT base"
    if record.ref in (record.alts or ()):
        return "ALT equals REF"
    # pysam turns an allele index beyond ALT into None (missing); cyvcf2 keeps the raw index.
    if any(a >= len(alleles) for call in variant.genotypes for a in call[:-1]):
        return "GT allele index"
    for sample in record.samples.values():
        ad = sample.get("AD")
        if ad is not None and ad != (None,) and len(ad) != len(alleles):
            return "AD length"
    return None


def _read(path: Path) -> tuple[list[str], list[Line]]:
    with gzip.open(path, "rt") as handle:
        text = handle.read().splitlines()
    n_header = sum(line.startswith("#") for line in text)
    lines = [Line(n_header + i + 1, t) for i, t in enumerate(text[n_header:])]
    py = list(_outcomes(iter(pysam.VariantFile(str(path)))))
    cy = list(_outcomes(iter(cyvcf2.VCF(str(path)))))
    # Each bad line costs exactly one failed next(): outcomes align with lines one to one.
    assert len(py) == len(cy) == len(lines), path
    for line, record, variant in zip(lines, py, cy, strict=True):
        line.pysam_record = record  # type: ignore[assignment]
        line.cyvcf2_ok = variant is not None
        if record is not None:
            assert variant is not None and record.pos == variant.POS, line.number
            line.spec_error = _spec_error(record, variant)
    return text[:n_header], lines


@pytest.fixture(scope="module")
def files(cohort: Path) -> dict[str, tuple[list[str], list[Line]]]:
    return {
        p.relative_to(cohort).as_posix(): _read(p)
        for p in sorted((cohort / "genomics" / "vcf").glob("*.vcf.gz"))
    }


@pytest.fixture(scope="module")
def dirty(cohort: Path) -> pd.DataFrame:
    frame = pd.read_csv(cohort / "_truth" / "dirty_records.csv")
    return frame[frame["modality"] == "genomics"]


@pytest.fixture(scope="module")
def manifest(cohort: Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str) for p in sorted(cohort.glob("genomics/manifests/*.csv"))]
    return pd.concat(frames, ignore_index=True)


def test_layout_runs_and_header(cohort: Path, files: dict) -> None:
    vcfs = sorted((cohort / "genomics" / "vcf").glob("*.vcf.gz"))
    assert len(vcfs) == 4  # 170 patients, 48 per run
    for vcf in vcfs:
        run = vcf.name.removesuffix(".vcf.gz")
        assert re.fullmatch(r"RUN-20\d\d-\d{4}", run)
        assert vcf.with_name(vcf.name + ".tbi").is_file()
        assert (cohort / "genomics" / "manifests" / f"{run}_manifest.csv").is_file()
        header = pysam.VariantFile(str(vcf)).header
        assert header.version == "VCFv4.2"
        assert {k: header.contigs[k].length for k in header.contigs} == CONTIG_LENGTHS
        assert header.info["AF"].number == "A" and header.info["AF"].type == "Float"
        assert header.info["DP"].type == "Integer" and header.info["SOMATIC"].type == "Flag"
        assert header.formats["AD"].number == "R" and header.formats["GQ"].type == "Integer"
        assert {"PASS", "LowQual", "StrandBias"} <= set(header.filters)
        meta = "\n".join(files[vcf.relative_to(cohort).as_posix()][0])
        assert "##reference=GRCh38" in meta and re.search(r"##fileDate=\d{8}\n", meta)


def test_every_line_valid_unless_listed_dirty(files: dict, dirty: pd.DataFrame) -> None:
    listed = {
        (row.file, int(re.match(r"line (\d+) ", row.locator).group(1))): row
        for row in dirty[dirty["kind"] == "malformed_vcf_line"].itertuples()
    }
    assert len(listed) >= 20
    caught = set()
    for name, (_, lines) in files.items():
        for line in lines:
            rejected = line.pysam_record is None
            # Both readers agree on which lines htslib rejects.
            assert rejected == (not line.cyvcf2_ok), (name, line.number)
            if rejected or line.spec_error:
                caught.add((name, line.number))
                row = listed.get((name, line.number))
                assert row is not None, (name, line.number, line.text[:120])
                expected = HTSLIB_REJECTS if rejected else SPEC_ONLY
                assert any(k in row.reason for k in expected), row.reason
                chrom, pos = line.text.split("\t")[:2]
                assert f" {chrom}:{pos.removesuffix('.0')}" in row.locator
    assert caught == set(listed)
    reasons = [row.reason for row in listed.values()]
    for kind in (*HTSLIB_REJECTS, *SPEC_ONLY):
        assert any(kind in r for r in reasons), kind


def test_pysam_region_queries_step_over_dirty_lines(files: dict, cohort: Path) -> None:
    """A fetch over a whole contig yields what the line scan found: dirty lines raise, once."""
    for name, (_, lines) in files.items():
        vcf = pysam.VariantFile(str(cohort / name))
        for chrom in CONTIG_LENGTHS:
            fetched = list(_outcomes(vcf.fetch(chrom)))
            on_contig = [ln for ln in lines if ln.text.startswith(f"{chrom}\t")]
            expected = [ln.pysam_record.pos if ln.pysam_record else None for ln in on_contig]
            assert [r.pos if r else None for r in fetched] == expected, (name, chrom)


def test_record_counts_sorted_one_record_per_site(files: dict, dirty: pd.DataFrame) -> None:
    order = {chrom: i for i, chrom in enumerate(CONTIG_LENGTHS)}
    for name, (_, lines) in files.items():
        valid = [ln.pysam_record for ln in lines if ln.pysam_record is not None]
        n_cyvcf2 = sum(ln.cyvcf2_ok for ln in lines)
        reasons = dirty.loc[dirty["file"] == name, "reason"]
        rejected = sum(any(k in r for k in HTSLIB_REJECTS) for r in reasons)
        assert len(valid) == n_cyvcf2 == len(lines) - rejected, name
        keys = [(order[r.chrom], r.pos) for r in valid]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), name
        # Everything the format allows appears somewhere in a run.
        texts = "\n".join(ln.text for ln in lines)
        assert "./.:.:.:." in texts and re.search(r"\t[01]\|[01]:", texts), name
        assert any(len(r.alts) > 1 for r in valid), name
        assert any(r.qual is None for r in valid), name
        assert any("LowQual" in r.filter for r in valid), name


def test_manifest_links_every_sample_column(
    cohort: Path, files: dict, dirty: pd.DataFrame, manifest: pd.DataFrame
) -> None:
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    patients = pd.read_csv(cohort / "_truth" / "patients.csv", dtype=str)
    assert manifest["specimen_id"].is_unique
    assert set(manifest["patient_mrn"]) == set(patients["mrn"])  # every patient sequenced once
    unknown = set(dirty.loc[dirty["kind"] == "unknown_specimen", "locator"].str.split().str[1])
    assert unknown, "the 5 % rate should plant a foreign specimen in 170 patients"
    linked = set(manifest["specimen_id"])
    for name in files:
        samples = list(pysam.VariantFile(str(cohort / name)).header.samples)
        run = Path(name).name.removesuffix(".vcf.gz")
        in_run = set(manifest.loc[manifest["sequencing_run"] == run, "specimen_id"])
        assert in_run <= set(samples)
        for sample in samples:
            assert (sample in linked) != (sample in unknown), sample
            assert re.fullmatch(r"SPM-\d{6}-[TB]", sample)


def _specimen_of(cohort: Path, manifest: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """patient_id -> (specimen_id, run), joined through the MRN as an ingestion job would."""
    patients = pd.read_csv(cohort / "_truth" / "patients.csv", dtype=str)
    joined = manifest.merge(patients, left_on="patient_mrn", right_on="mrn")
    return {r.patient_id: (r.specimen_id, r.sequencing_run) for r in joined.itertuples(index=False)}


def test_driver_carriers_are_non_ref_at_the_hotspot(cohort: Path, manifest: pd.DataFrame) -> None:
    patients = pd.read_csv(cohort / "_truth" / "patients.csv", dtype=str, keep_default_na=False)
    specimens = _specimen_of(cohort, manifest)
    purity = dict(
        zip(manifest["specimen_id"], manifest["tumour_purity"].astype(float), strict=True)
    )
    drivers = {d.label: d for d in ALL_DRIVERS}
    carriers = patients[patients["driver"] != ""]
    assert len(carriers) >= 20
    for row in carriers.itertuples():
        driver = drivers[row.driver]
        specimen, run = specimens[row.patient_id]
        vcf = pysam.VariantFile(str(cohort / "genomics" / "vcf" / f"{run}.vcf.gz"))
        (record,) = vcf.fetch(driver.chrom, driver.pos - 1, driver.pos)
        assert record.ref == driver.ref and driver.alt in record.alts
        assert "SOMATIC" in record.info and record.info["GENE"] == driver.gene
        call = record.samples[specimen]
        allele = record.alts.index(driver.alt) + 1
        assert allele in call["GT"]
        vaf = call["AD"][allele] / call["DP"]
        assert 0.08 <= vaf <= 0.5
        assert abs(vaf - min(0.5, max(0.08, purity[specimen] / 2))) < 0.12


def test_tabix_region_query_returns_the_egfr_record(cohort: Path) -> None:
    found = 0
    for vcf in sorted((cohort / "genomics" / "vcf").glob("*.vcf.gz")):
        py = list(pysam.VariantFile(str(vcf)).fetch("chr7", EGFR_L858R.pos - 1, EGFR_L858R.pos))
        cy = list(cyvcf2.VCF(str(vcf))(f"chr7:{EGFR_L858R.pos}-{EGFR_L858R.pos}"))
        assert [r.pos for r in py] == [v.POS for v in cy]
        if py:
            found += 1
            assert py[0].pos == 55191822 and py[0].alts == ("G",) and py[0].info["GENE"] == "EGFR"
        with pysam.TabixFile(str(vcf)) as tabix:
            assert list(tabix.contigs) == [c for c in CONTIG_LENGTHS if c in tabix.contigs]
    assert found >= 1


def test_features_recompute_from_vcf_and_manifest(
    cohort: Path, files: dict, manifest: pd.DataFrame
) -> None:
    specimens = _specimen_of(cohort, manifest)
    patient_of = {spec: pid for pid, (spec, _) in specimens.items()}
    counts = dict.fromkeys(specimens, 0)
    drivers = {(d.chrom, d.pos, d.ref, d.alt): d for d in ALL_DRIVERS}
    tp53 = {(d.chrom, d.pos, d.ref, d.alt) for d in TP53_HOTSPOTS}
    found: dict[str, set[str]] = {pid: set() for pid in specimens}
    for _, lines in files.values():
        for line in lines:
            record = line.pysam_record
            if record is None or line.spec_error or "SOMATIC" not in record.info:
                continue
            for name, call in record.samples.items():
                if name not in patient_of or not any(a for a in call["GT"] if a is not None):
                    continue
                if list(record.filter) == ["PASS"]:
                    counts[patient_of[name]] += 1
                for a in {a for a in call["GT"] if a}:
                    key = (record.chrom, record.pos, record.ref, record.alts[a - 1])
                    if key in tp53:
                        found[patient_of[name]].add("TP53")
                    elif key in drivers:
                        found[patient_of[name]].add(drivers[key].gene)
                        found[patient_of[name]].add(
                            "actionable" if drivers[key].therapy else "untreatable"
                        )
    truth = pd.read_csv(cohort / "_truth" / "features.csv")
    truth = truth[truth["modality"] == "genomics"]
    wide = truth.pivot_table(index="patient_id", columns="feature", values="value")
    assert set(wide.index) == set(specimens)
    for pid, row in wide.iterrows():
        assert row["n_somatic_variants"] == counts[pid], pid
        assert row["tmb_per_mb"] == pytest.approx(counts[pid] / PANEL_SIZE_MB, rel=1e-5)
        assert row["has_driver"] == int(bool(found[pid] - {"TP53"}))
        assert row["tp53_mutant"] == int("TP53" in found[pid])
        assert row["actionable_driver"] == int("actionable" in found[pid])
        assert row["idh1_mutant"] == int("IDH1" in found[pid])
    # The planted TMB signal: melanoma and NSCLC carry far more variants than GBM and breast.
    cancer = pd.read_csv(cohort / "_truth" / "patients.csv").set_index("patient_id")["cancer"]
    tmb = wide["tmb_per_mb"].groupby(cancer.reindex(wide.index)).median()
    assert min(tmb["melanoma"], tmb["nsclc"]) > 2 * max(tmb["glioblastoma"], tmb["breast"])


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_deterministic_for_a_seed(cohort: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    counts = _generate(again, SEED)
    _generate(other, SEED + 1)
    first = _digests(cohort)
    assert _digests(again) == first
    assert counts["dirty"] > 0 and counts["files"] == 12
    assert all(_digests(other).get(k) != v for k, v in first.items() if "genomics/" in k)


def test_manifest_reads_as_plain_csv(cohort: Path) -> None:
    for path in sorted(cohort.glob("genomics/manifests/*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and all(r["specimen_type"] in ("FFPE tumour tissue", "blood") for r in rows)
        for r in rows:
            assert r["collection_date"] <= r["received_date"] <= r["run_date"]
            assert 0.0 < float(r["tumour_purity"]) <= 1.0


def test_alleles_at_one_position_merge_into_one_record() -> None:
    """An SNV and a deletion at one POS share the longer REF, as bcftools merge writes them."""
    site = _Site("chr17", 7670500, "C", "TP53")
    assert site.add("C", "T") == 1
    assert site.add("CAG", "C") == 2
    assert site.add("C", "T") == 1
    assert (site.ref, site.alts) == ("CAG", ["TAG", "C"])
