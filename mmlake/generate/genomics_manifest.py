"""Specimens on a sequencing run: what each tumour carries, and the lab's sample manifest.

This is the laboratory side of the genomics modality. A sequenced patient becomes a *specimen*
with a lab accession id (``SPM-000123-T``): the VCF knows only specimen ids, and the run's sample
manifest (CSV) is the one place that links a specimen to the hospital MRN, as with a real
reference lab. The specimen carries the tumour's somatic variants (the patient's driver at its
GRCh38 hotspot, plus passengers) and germline genotypes at a handful of common SNP sites.

There is no reference genome in this project, so REF bases are drawn at random: a fixed hash of
(contig, position) serves as a pseudo-reference (seed-independent, so every sample, run and
cohort agrees on the REF at a position), except at the driver hotspots, where reference.py gives
the real GRCh38 base. REF/ALT are therefore valid A/C/G/T but not the true GRCh38 sequence.
"""

from __future__ import annotations

import csv
import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmlake.generate.cohort import PatientRecord, stream_rng
from mmlake.generate.reference import (
    ALL_DRIVERS,
    CANCER_TYPES,
    GENE_PANEL,
    TP53_HOTSPOTS,
    GeneRegion,
)

LAB_NAME = "Riverside Molecular Diagnostics Laboratory"
PANEL_NAME = "RMDL OncoPanel v2 (16 genes, GRCh38)"
TISSUE = "FFPE tumour tissue"
BLOOD = "blood"  # plasma cell-free DNA (liquid biopsy); purity is then the ctDNA tumour fraction

MANIFEST_COLUMNS = (
    "specimen_id",
    "patient_mrn",
    "collection_date",
    "received_date",
    "specimen_type",
    "tumour_purity",
    "panel",
    "sequencing_run",
    "run_date",
    "lab_name",
)

# TMB denominator: the panel's territory (sum of the GENE_PANEL spans), in megabases.
PANEL_SIZE_MB = sum(g.end - g.start + 1 for g in GENE_PANEL) / 1e6

# Mean passenger (non-driver) somatic variants on this ~2 Mb panel: UV-driven melanoma and
# smoking-related NSCLC carry the highest tumour mutational burden, GBM and breast the lowest.
PASSENGER_RATE: dict[str, float] = {
    "melanoma": 28.0,
    "nsclc": 18.0,
    "colorectal": 8.0,
    "breast": 4.0,
    "glioblastoma": 3.0,
}

_BASES = "ACGT"
_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
_HOTSPOT_REF: dict[tuple[str, int], str] = {
    (d.chrom, d.pos): d.ref for d in (*ALL_DRIVERS, *TP53_HOTSPOTS)
}


@dataclass(frozen=True)
class GermlineSite:
    """A common germline SNP site on the panel (synthetic position, population allele freqs)."""

    gene: str
    chrom: str
    pos: int
    afs: tuple[float, ...]  # one per ALT allele; two ALTs make a multi-allelic site
    phase_block: int | None = None  # sites close enough to be read-backed phased together

    @property
    def ref(self) -> str:
        return reference_base(self.chrom, self.pos)

    @property
    def alts(self) -> tuple[str, ...]:
        # First ALT a transition (the commonest SNV class), the second a transversion.
        first = _TRANSITION[self.ref]
        others = [b for b in _BASES if b not in (self.ref, first)]
        return (first, *others[: len(self.afs) - 1])


# Positions are synthetic (inside the Ensembl gene spans), not dbSNP sites.
GERMLINE_SITES: tuple[GermlineSite, ...] = (
    GermlineSite("ALK", "chr2", 29500250, (0.33,)),
    GermlineSite("PIK3CA", "chr3", 179199950, (0.30, 0.08)),
    GermlineSite("APC", "chr5", 112780300, (0.45,)),
    GermlineSite("EGFR", "chr7", 55150120, (0.41,), phase_block=1),
    GermlineSite("EGFR", "chr7", 55150271, (0.38,), phase_block=1),
    GermlineSite("MET", "chr7", 116740000, (0.15,)),
    GermlineSite("BRAF", "chr7", 140801555, (0.12,)),
    GermlineSite("PTEN", "chr10", 87910400, (0.09,)),
    GermlineSite("KRAS", "chr12", 25226030, (0.25,)),
    GermlineSite("BRCA2", "chr13", 32340100, (0.28, 0.05)),
    GermlineSite("TP53", "chr17", 7670001, (0.35,), phase_block=2),
    GermlineSite("TP53", "chr17", 7670126, (0.31,), phase_block=2),
    GermlineSite("SMAD4", "chr18", 51050500, (0.50,)),
)

# Passengers keep clear of hotspots and germline sites so those records stay unambiguous.
_RESERVED: tuple[tuple[str, int], ...] = (
    *((d.chrom, d.pos) for d in (*ALL_DRIVERS, *TP53_HOTSPOTS)),
    *((s.chrom, s.pos) for s in GERMLINE_SITES),
)
_GENE_WEIGHTS = np.array([g.end - g.start + 1 for g in GENE_PANEL], dtype=float)
_GENE_WEIGHTS /= _GENE_WEIGHTS.sum()


def reference_base(chrom: str, pos: int) -> str:
    """The pseudo-reference base at ``chrom:pos`` (real GRCh38 base at driver hotspots)."""
    hotspot = _HOTSPOT_REF.get((chrom, pos))
    if hotspot is not None:
        return hotspot
    return _BASES[zlib.crc32(f"{chrom}:{pos}".encode()) & 3]


def reference_bases(chrom: str, pos: int, length: int) -> str:
    """``length`` pseudo-reference bases from ``pos``: the REF of a deletion."""
    return "".join(reference_base(chrom, pos + i) for i in range(length))


def germline_phase_sets(haplotypes: np.ndarray, no_call: np.ndarray) -> np.ndarray:
    """FORMAT/PS per (germline site, specimen); 0 where the call is unphased.

    Read-backed phasing can only join heterozygous sites of one block (reads span both), and
    a lone het has nothing to be phased with. PS is the POS of the block's first het site.
    """
    het = (haplotypes[:, :, 0] != haplotypes[:, :, 1]) & ~no_call
    phase_sets = np.zeros(het.shape, dtype=np.int64)
    blocks = sorted({g.phase_block for g in GERMLINE_SITES if g.phase_block is not None})
    for block in blocks:
        rows = [i for i, g in enumerate(GERMLINE_SITES) if g.phase_block == block]
        phased = het[rows].sum(axis=0) >= 2
        first = np.zeros(het.shape[1], dtype=np.int64)
        for i in reversed(rows):
            first = np.where(het[i], GERMLINE_SITES[i].pos, first)
        for i in rows:
            phase_sets[i] = np.where(het[i] & phased, first, 0)
    return phase_sets


@dataclass(frozen=True)
class Variant:
    """One somatic allele in one tumour (VCF-style: 1-based POS, indels anchored on a base)."""

    chrom: str
    pos: int
    ref: str
    alt: str
    gene: str
    vaf: float  # expected variant allele fraction in this specimen
    driver: bool


@dataclass(frozen=True)
class Specimen:
    """A sequenced specimen; ``patient`` is None for a specimen absent from the manifest."""

    specimen_id: str
    patient: PatientRecord | None
    specimen_type: str
    purity: float  # as the lab reports it (pathologist estimate, or ctDNA fraction for blood)
    collection_date: dt.date
    received_date: dt.date
    mean_depth: float
    variants: tuple[Variant, ...]
    haplotypes: np.ndarray  # (len(GERMLINE_SITES), 2) allele indices per germline site


class AccessionSequence:
    """The lab's accession counter: other clients' specimens fill the gaps between ours."""

    def __init__(self, seed: int) -> None:
        self._next = 100 + int(stream_rng(seed, 0, "genomics:accession").integers(0, 900))

    def take(self, rng: np.random.Generator, specimen_type: str) -> str:
        number = self._next
        self._next += int(rng.integers(1, 6))
        return f"SPM-{number:06d}-{'B' if specimen_type == BLOOD else 'T'}"


def draw_specimen(
    patient: PatientRecord | None,
    anchor: PatientRecord,
    accession: AccessionSequence,
    rng: np.random.Generator,
) -> Specimen:
    """Draw a specimen of ``patient`` (or, when None, a foreign specimen near ``anchor``)."""
    if patient is not None:
        cancer = patient.cancer
    else:
        cancer = CANCER_TYPES[int(rng.integers(0, len(CANCER_TYPES)))]
    # Glioblastoma is never profiled from plasma: the blood-brain barrier keeps ctDNA too low.
    blood = cancer.key != "glioblastoma" and rng.random() < 0.15
    specimen_type = BLOOD if blood else TISSUE
    if blood:
        purity = round(float(rng.uniform(0.16, 0.50)), 2)
        collected = anchor.diagnosis_date + dt.timedelta(days=int(rng.integers(0, 22)))
        mean_depth = float(rng.uniform(1200, 2500))
    else:
        # Pathologists estimate tumour cellularity in steps of 5 %.
        purity = round(float(rng.integers(4, 20)) * 0.05, 2)
        collected = anchor.diagnosis_date - dt.timedelta(days=int(rng.integers(0, 11)))
        mean_depth = float(rng.uniform(350, 900))
    received = collected + dt.timedelta(days=int(rng.integers(1, 6)))
    variants: list[Variant] = []
    taken: set[tuple[str, int]] = set()
    hotspots = (patient.driver, patient.tp53) if patient is not None else ()
    for driver in (h for h in hotspots if h is not None):
        # Clonal heterozygous hotspot in a diploid region: VAF = purity / 2. Hotspot calls
        # (the driver and a TP53 co-mutation) are always reported and never corrupted.
        vaf = min(0.5, max(0.08, purity / 2))
        variants.append(
            Variant(driver.chrom, driver.pos, driver.ref, driver.alt, driver.gene, vaf, True)
        )
        taken.add((driver.chrom, driver.pos))
    n_passengers = int(rng.poisson(PASSENGER_RATE[cancer.key] * rng.lognormal(0.0, 0.5)))
    for _ in range(n_passengers):
        variant = _draw_passenger(rng, purity, taken)
        taken.add((variant.chrom, variant.pos))
        variants.append(variant)
    haplotypes = np.empty((len(GERMLINE_SITES), 2), dtype=np.int8)
    for i, site in enumerate(GERMLINE_SITES):
        p = np.array([1.0 - sum(site.afs), *site.afs])
        haplotypes[i] = rng.choice(len(p), size=2, p=p)
    return Specimen(
        specimen_id=accession.take(rng, specimen_type),
        patient=patient,
        specimen_type=specimen_type,
        purity=purity,
        collection_date=collected,
        received_date=received,
        mean_depth=mean_depth,
        variants=tuple(variants),
        haplotypes=haplotypes,
    )


def _draw_passenger(
    rng: np.random.Generator, purity: float, taken: set[tuple[str, int]]
) -> Variant:
    """A subclonal passenger at a random panel position: 85 % SNV, else a 1-3 bp indel."""
    while True:
        gene: GeneRegion = GENE_PANEL[int(rng.choice(len(GENE_PANEL), p=_GENE_WEIGHTS))]
        pos = int(rng.integers(gene.start, gene.end - 3))
        near_reserved = any(c == gene.chrom and abs(p - pos) <= 3 for c, p in _RESERVED)
        if not near_reserved and (gene.chrom, pos) not in taken:
            break
    kind = rng.random()
    if kind < 0.85:
        ref = reference_base(gene.chrom, pos)
        alt = str(rng.choice([b for b in _BASES if b != ref]))
    elif kind < 0.93:
        ref = reference_bases(gene.chrom, pos, 1 + int(rng.integers(1, 4)))
        alt = ref[0]
    else:
        ref = reference_base(gene.chrom, pos)
        alt = ref + "".join(rng.choice(list(_BASES), size=int(rng.integers(1, 4))))
    # Subclonal: present in a fraction of tumour cells, so below the clonal purity / 2.
    vaf = max(0.02, purity / 2 * float(rng.uniform(0.1, 1.0)))
    return Variant(gene.chrom, pos, ref, alt, gene.symbol, vaf, False)


def write_manifest(path: Path, run_id: str, run_date: dt.date, specimens: list[Specimen]) -> None:
    """The lab's sample manifest for one run: only the specimens it knows (never foreign ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for s in specimens:
            if s.patient is None:
                continue
            writer.writerow(
                [
                    s.specimen_id,
                    s.patient.mrn,
                    s.collection_date.isoformat(),
                    s.received_date.isoformat(),
                    s.specimen_type,
                    f"{s.purity:.2f}",
                    PANEL_NAME,
                    run_id,
                    run_date.isoformat(),
                    LAB_NAME,
                ]
            )
