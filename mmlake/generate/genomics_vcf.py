"""Genomics: one bgzipped, tabix-indexed multi-sample VCF 4.2 per sequencing run.

Layout under ``DIR/genomics/``::

    vcf/RUN-<year>-<nnnn>.vcf.gz (+ .tbi)        one run = ``ctx.vcf_batch_size`` specimens
    manifests/RUN-<year>-<nnnn>_manifest.csv     specimen_id -> patient_mrn, purity, dates...

Sample columns are lab specimen ids, never patient ids; only the manifest links them to an MRN
(see ``genomics_manifest``). Records are sorted by ##contig order then POS, one record per site
(samples merged, multi-allelic where alleles differ); specimens without a call at a site are
``0/0`` with depth, or ``./.`` without coverage. Germline SNP sites carry no INFO/SOMATIC flag;
every other record is somatic (``INFO/SOMATIC``). The features in ``_truth`` are recomputable:
``n_somatic_variants`` counts valid ``SOMATIC`` records with FILTER ``PASS`` where the
specimen's GT holds an ALT allele (the driver included); ``tmb_per_mb`` divides it by the panel
territory (sum of the GENE_PANEL spans, ``PANEL_SIZE_MB``). With no reference genome here, REF
bases come from a random but fixed pseudo-reference (see ``genomics_manifest``).

Dirty data (kind ``malformed_vcf_line``, locator ``line N chrom:pos``, N 1-based in the
decompressed file, header included). Measured with pysam 0.24.1 (htslib 1.24) and cyvcf2 0.35.0:

* Rejected per record by htslib, which then reads on (pysam's ``next()`` raises OSError or
  ValueError, cyvcf2's raises Exception; one exception per bad line): a line cut short (fewer
  columns than samples), POS ``55191822.0``, a non-integer FORMAT value (DP ``NA``, GQ
  ``41.0``), an unparseable GT (``het``, ``0/A``).
* Read silently by htslib, invalid by the spec (a validating reader must check): a REF base
  outside A/C/G/T/N, a GT allele index beyond ALT, which pysam even turns into a missing allele
  (``0/2`` on one ALT reads as ``(0, None)``); cyvcf2 keeps the raw index.
* Not used, because they break the file rather than the record: a POS that tabix cannot parse
  or that goes backwards (``abc``, ``3,00``, ``0``, ``-5``: indexing fails), an undeclared contig
  out of order, spaces for tabs. Not used as ambiguous: an 8-column line (pysam reads a record
  without genotypes, cyvcf2 fails on them), FORMAT without sample columns (pysam rejects, cyvcf2
  keeps the site), integers out of range (htslib sets them missing with a warning).
* Region queries: ``pysam.VariantFile.fetch`` raises on a dirty line in the region and goes on;
  a cyvcf2 region iterator *stops* at it, so scan whole files with cyvcf2.

Driver hotspot records are never corrupted: the driver is what genomics tells the outcome
model. Kind ``unknown_specimen`` (locator ``sample SPM-...``) is a foreign specimen column that
the run's manifest lacks (another client's sample on the flow cell); it is no cohort patient.
No file-level corruption (truncated BGZF) is generated.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from mmlake.generate.cohort import PatientRecord, stream_rng
from mmlake.generate.genomics_manifest import (
    GERMLINE_SITES,
    PANEL_NAME,
    PANEL_SIZE_MB,
    AccessionSequence,
    Specimen,
    draw_specimen,
    germline_phase_sets,
    write_manifest,
)
from mmlake.generate.reference import CONTIG_LENGTHS
from mmlake.generate.truth import GenerationContext

MODALITY = "genomics"
NO_CALL = "./.:.:.:."
_INVALID_BASES = "EFIJLOPQXZ"


@dataclass
class _Site:
    """Alleles of every specimen at one position, merged before rendering."""

    chrom: str
    pos: int
    ref: str
    gene: str
    alts: list[str] = field(default_factory=list)
    carriers: dict[int, tuple[int, float]] = field(default_factory=dict)  # col -> (allele, vaf)
    driver: bool = False

    def add(self, ref: str, alt: str) -> int:
        """Merge an allele into the site; REFs of different length are normalised (VCF merge)."""
        if len(ref) > len(self.ref):
            tail = ref[len(self.ref) :]
            self.alts = [a + tail for a in self.alts]
            self.ref = ref
        alt += self.ref[len(ref) :]
        if alt not in self.alts:
            self.alts.append(alt)
        return self.alts.index(alt) + 1


@dataclass
class Record:
    """One rendered body line and what the truth features need to know about it."""

    chrom: str
    pos: int
    text: str
    somatic: bool
    passed: bool
    carriers: tuple[int, ...]
    driver: bool = False
    dirty: bool = False


# (section, ID, Number, Type, Description) of every header definition the records use.
_DEFINITIONS = (
    ("INFO", "DP", "1", "Integer", "Total read depth over all samples"),
    ("INFO", "AF", "A", "Float", "Allele frequency among the called genotypes of this run"),
    ("INFO", "GENE", "1", "String", "HGNC symbol of the panel gene"),
    ("INFO", "SOMATIC", "0", "Flag", "Somatic (tumour) variant; absent at germline SNP sites"),
    ("FILTER", "PASS", "", "", "All filters passed"),
    ("FILTER", "LowQual", "", "", "ALT fraction below 0.05 (assay limit) or under 10 ALT reads"),
    ("FILTER", "StrandBias", "", "", "ALT reads predominantly on one strand"),
    ("FORMAT", "GT", "1", "String", "Genotype"),
    ("FORMAT", "AD", "R", "Integer", "Allelic depths for the REF and ALT alleles"),
    ("FORMAT", "DP", "1", "Integer", "Read depth"),
    ("FORMAT", "GQ", "1", "Integer", "Genotype quality"),
    ("FORMAT", "PS", "1", "Integer", "Phase set: POS of the first site of the phase block"),
)
_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT")


def vcf_header(run_id: str, run_date: dt.date, specimen_ids: list[str]) -> list[str]:
    """The VCF 4.2 meta lines and column header of one run."""
    lines = [
        "##fileformat=VCFv4.2",
        f"##fileDate={run_date:%Y%m%d}",
        "##source=RMDL-SomaticPipeline v2.3 (tumour-only calling, joint germline genotyping)",
        "##reference=GRCh38",
    ]
    lines += [f"##contig=<ID={c},length={n},assembly=GRCh38>" for c, n in CONTIG_LENGTHS.items()]
    for section, key, number, kind, description in _DEFINITIONS:
        typed = f"Number={number},Type={kind}," if number else ""
        lines.append(f'##{section}=<ID={key},{typed}Description="{description}">')
    lines += [f"##sequencing_run={run_id}", f'##panel="{PANEL_NAME}"']
    return [*lines, "\t".join([*_COLUMNS, *specimen_ids])]


_CONTIG_ORDER = {chrom: i for i, chrom in enumerate(CONTIG_LENGTHS)}


def render_records(specimens: list[Specimen], rng: np.random.Generator) -> list[Record]:
    """Every body line of a run, sorted by contig (header order) then POS."""
    depth = np.array([s.mean_depth for s in specimens])
    sites: dict[tuple[str, int], _Site] = {}
    for j, specimen in enumerate(specimens):
        for v in specimen.variants:
            site = sites.get((v.chrom, v.pos))
            if site is None:
                site = sites[(v.chrom, v.pos)] = _Site(v.chrom, v.pos, v.ref, v.gene)
            site.carriers[j] = (site.add(v.ref, v.alt), v.vaf)
            site.driver |= v.driver
    haplotypes = np.stack([s.haplotypes for s in specimens], axis=1)  # (site, specimen, 2)
    no_call = rng.random(haplotypes.shape[:2]) < 0.01
    phase_sets = germline_phase_sets(haplotypes, no_call)
    order: list[tuple[int, int, int | _Site]] = [
        (_CONTIG_ORDER[g.chrom], g.pos, i) for i, g in enumerate(GERMLINE_SITES)
    ]
    order += [(_CONTIG_ORDER[c], p, site) for (c, p), site in sites.items()]
    order.sort(key=lambda item: (item[0], item[1]))
    records = []
    for _, _, item in order:
        if isinstance(item, _Site):
            records.append(_somatic_record(item, depth, rng))
        else:
            records.append(
                _germline_record(
                    item, haplotypes[item], no_call[item], phase_sets[item], depth, rng
                )
            )
    return records


def _germline_record(
    index: int,
    haplotypes: np.ndarray,
    no_call: np.ndarray,
    phase_sets: np.ndarray,
    depth: np.ndarray,
    rng: np.random.Generator,
) -> Record:
    site = GERMLINE_SITES[index]
    n = len(depth)
    dp = rng.poisson(depth * rng.lognormal(0.0, 0.25))
    half = rng.binomial(dp, 0.5)
    errors = rng.binomial(dp, 0.002)
    dp_missing = rng.random(n) < 0.005
    qual_missing = rng.random() < 0.03
    n_alleles = 1 + len(site.alts)
    allele_counts = [0] * n_alleles
    alt_reads = info_dp = 0
    fields = []
    calls = zip(haplotypes.tolist(), dp.tolist(), half.tolist(), errors.tolist(), strict=True)
    for j, ((a, b), d, h, e) in enumerate(calls):
        if no_call[j]:
            fields.append(NO_CALL)
            continue
        ad = [0] * n_alleles
        if a == b:  # homozygous: all reads but sequencing errors on one allele
            ad[a], ad[1 if a == 0 else 0] = d - e, e
        else:
            ad[a], ad[b] = h, d - h
        allele_counts[a] += 1
        allele_counts[b] += 1
        alt_reads += d - ad[0]
        ps = int(phase_sets[j])
        gt = f"{a}|{b}" if ps else f"{min(a, b)}/{max(a, b)}"
        info_dp += 0 if dp_missing[j] else d
        text = f"{gt}:{','.join(map(str, ad))}:{'.' if dp_missing[j] else d}:{min(99, d // 3)}"
        # PS is the last FORMAT key, so unphased calls may drop it (trailing fields are optional).
        fields.append(f"{text}:{ps}" if ps else text)
    an = 2 * (n - int(no_call.sum()))
    af = ",".join(f"{c / an:.4g}" for c in allele_counts[1:]) if an else "."
    qual = "." if qual_missing else f"{min(alt_reads * 2.7, 99999.0):.2f}"
    fmt = "GT:AD:DP:GQ:PS" if phase_sets.any() else "GT:AD:DP:GQ"
    columns = [site.chrom, str(site.pos), ".", site.ref, ",".join(site.alts), qual, "PASS"]
    columns += [f"DP={info_dp};AF={af};GENE={site.gene}", fmt, *fields]
    return Record(site.chrom, site.pos, "\t".join(columns), False, True, ())


def _somatic_record(site: _Site, depth: np.ndarray, rng: np.random.Generator) -> Record:
    n = len(depth)
    dp = rng.poisson(depth * rng.lognormal(0.0, 0.25))
    errors = rng.binomial(dp, 0.001)
    no_call = rng.random(n) < 0.01
    dp_missing = rng.random(n) < 0.005
    qual_missing, strand_bias, jitter = rng.random(3)
    n_alleles = 1 + len(site.alts)
    supporting: dict[int, tuple[int, int, int]] = {}  # col -> (allele, alt reads, depth)
    for j, (allele, vaf) in sorted(site.carriers.items()):
        d = max(int(dp[j]), 30)
        alt = int(rng.binomial(d, vaf))
        # A driver call is reported at VAF 0.08-0.5; a passenger needs at least 2 ALT reads.
        alt = min(max(alt, math.ceil(0.08 * d)), d // 2) if site.driver else max(alt, 2)
        supporting[j] = (allele, alt, d)
    # Non-carriers first, from plain lists (the hot loop of the writer), then the carriers.
    depths, errs, missing_dp = dp.tolist(), errors.tolist(), dp_missing.tolist()
    uncalled = [bool(x) and j not in supporting for j, x in enumerate(no_call.tolist())]
    zeros = ",0" * (n_alleles - 2)
    fields = [
        NO_CALL
        if uncalled[j]
        else f"0/0:{d - e},{e}{zeros}:{'.' if missing_dp[j] else d}:{min(99, 3 * d)}"
        for j, (d, e) in enumerate(zip(depths, errs, strict=True))
    ]
    called = n - sum(uncalled)
    info_dp = sum(
        d for j, d in enumerate(depths) if not (uncalled[j] or missing_dp[j] or j in supporting)
    )
    allele_counts = [0] * n_alleles
    for j, (allele, alt, d) in supporting.items():
        ad = [d - alt] + [0] * (n_alleles - 1)
        ad[allele] = alt
        allele_counts[allele] += 1
        info_dp += d
        fields[j] = f"0/{allele}:{','.join(map(str, ad))}:{d}:{min(99, 20 + 2 * alt)}"
    max_alt = max(alt for _, alt, _ in supporting.values())
    max_vaf = max(alt / d for _, alt, d in supporting.values())
    total_alt = sum(alt for _, alt, _ in supporting.values())
    qual = f"{4.0 * total_alt + 10 * jitter:.2f}"
    filt = "PASS"
    if not site.driver:  # the driver call is the one the clinic acts on: always reported
        qual = "." if qual_missing < 0.03 else qual
        if max_alt < 10 or max_vaf < 0.05:
            filt = "LowQual"
        elif strand_bias < 0.03:
            filt = "StrandBias"
    af = ",".join(f"{c / (2 * called):.4g}" for c in allele_counts[1:])
    columns = [site.chrom, str(site.pos), ".", site.ref, ",".join(site.alts), qual, filt]
    columns += [f"DP={info_dp};AF={af};GENE={site.gene};SOMATIC", "GT:AD:DP:GQ", *fields]
    text = "\t".join(columns)
    return Record(site.chrom, site.pos, text, True, filt == "PASS", tuple(supporting), site.driver)


def corrupt_line(text: str, n_samples: int, rng: np.random.Generator) -> tuple[str, str]:
    """Break one body line so that a spec-following parser rejects it; returns (line, reason).

    Only corruptions that leave CHROM and the leading digits of POS intact: tabix indexes the
    file from those, and every other line must stay readable (see the module docstring).
    """
    cols = text.split("\t")
    called = [c for c in range(9, len(cols)) if not cols[c].startswith(".")] or [9]
    column = int(rng.choice(called))
    sample = cols[column].split(":")
    kind = int(rng.integers(0, 6))
    if kind == 0:  # a write interrupted mid-line: sample columns are lost
        if n_samples >= 2:
            start = len("\t".join(cols[:9])) + 1
            cut = int(rng.integers(start + 1, len("\t".join(cols[:-1])) + 1))
            line = text[:cut].rstrip("\t")
        else:
            line = "\t".join(cols[: int(rng.integers(4, 8))])
        return line, f"line truncated to {line.count(chr(9)) + 1} of {len(cols)} columns"
    if kind == 1:  # a spreadsheet round trip turned the integer POS into a float
        cols[1] += ".0"
        return "\t".join(cols), f"POS '{cols[1]}' is not an integer"
    if kind == 2:
        key, value = (
            ("DP", "NA") if sample[3] == "." or rng.random() < 0.5 else ("GQ", sample[3] + ".0")
        )
        sample[2 if key == "DP" else 3] = value
        reason = f"FORMAT/{key} '{value}' of sample column {column - 8} is not an Integer"
    elif kind == 3:
        sample[0] = str(rng.choice(["het", "0/A"]))
        reason = f"GT '{sample[0]}' of sample column {column - 8} is not a genotype"
    elif kind == 4:
        n_alt = cols[4].count(",") + 1
        sample[0] = f"0/{n_alt + 1}"
        reason = f"GT '{sample[0]}' of sample column {column - 8} exceeds the {n_alt} ALT allele(s)"
    else:
        ref = cols[3]
        k = int(rng.integers(0, len(ref)))
        cols[3] = ref[:k] + str(rng.choice(list(_INVALID_BASES))) + ref[k + 1 :]
        return "\t".join(cols), f"REF '{cols[3]}' has a base outside A,C,G,T,N"
    cols[column] = ":".join(sample)
    return "\t".join(cols), reason


class GenomicsWriter:
    """Buffers sequenced patients into runs and writes each run's VCF, index and manifest."""

    modality = MODALITY

    def __init__(self, ctx: GenerationContext) -> None:
        self.ctx = ctx
        self.root = ctx.out_dir / MODALITY
        (self.root / "vcf").mkdir(parents=True, exist_ok=True)
        (self.root / "manifests").mkdir(parents=True, exist_ok=True)
        self._accession = AccessionSequence(ctx.seed)
        self._run_number = 1
        self._specimens: list[Specimen] = []  # the next run: at most vcf_batch_size patients
        self._patients_in_run = 0
        self._counts = {"files": 0, "runs": 0, "samples": 0, "records": 0, "dirty": 0}

    def add(self, patient: PatientRecord) -> None:
        if not patient.has(MODALITY):
            return
        seed, index = self.ctx.seed, patient.index
        rng = stream_rng(seed, index, f"{MODALITY}:specimen")
        self._specimens.append(draw_specimen(patient, patient, self._accession, rng))
        self._patients_in_run += 1
        if self.ctx.corrupt(stream_rng(seed, index, f"{MODALITY}:foreign")):
            foreign_rng = stream_rng(seed, index, f"{MODALITY}:foreign_specimen")
            self._specimens.append(draw_specimen(None, patient, self._accession, foreign_rng))
        if self._patients_in_run >= self.ctx.vcf_batch_size:
            self._flush()

    def close(self) -> dict[str, int]:
        if self._patients_in_run:
            self._flush()
        return dict(self._counts)

    def _flush(self) -> None:
        number, specimens = self._run_number, self._specimens
        self._run_number, self._specimens, self._patients_in_run = number + 1, [], 0
        rng = stream_rng(self.ctx.seed, number, f"{MODALITY}:run")
        latest = max(s.patient.diagnosis_date for s in specimens if s.patient is not None)
        run_date = latest + dt.timedelta(days=int(rng.integers(28, 50)))
        run_id = f"RUN-{run_date.year}-{number:04d}"
        vcf_path = self.root / "vcf" / f"{run_id}.vcf.gz"
        manifest_path = self.root / "manifests" / f"{run_id}_manifest.csv"

        header = vcf_header(run_id, run_date, [s.specimen_id for s in specimens])
        records = render_records(specimens, rng)
        self._corrupt(records, len(header), len(specimens), vcf_path, number)
        body = "\n".join([*header, *(r.text for r in records)]) + "\n"
        # BGZF (not plain gzip) so tabix can index it; htslib writes no mtime: same bytes per seed.
        with pysam.BGZFile(str(vcf_path), "wb") as handle:
            handle.write(body.encode("ascii"))
        pysam.tabix_index(str(vcf_path), preset="vcf", force=True)
        write_manifest(manifest_path, run_id, run_date, specimens)

        for s in specimens:
            if s.patient is None:
                self.ctx.truth.dirty(
                    MODALITY,
                    "unknown_specimen",
                    self.ctx.relative(vcf_path),
                    f"sample {s.specimen_id}",
                    f"specimen column {s.specimen_id} has no row in "
                    f"{self.ctx.relative(manifest_path)}",
                )
                self._counts["dirty"] += 1
        self._record_features(specimens, records)
        self._counts["files"] += 3
        self._counts["runs"] += 1
        self._counts["samples"] += len(specimens)
        self._counts["records"] += len(records)

    def _corrupt(
        self, records: list[Record], n_header: int, n_samples: int, vcf_path: Path, run: int
    ) -> None:
        """Dirty some body lines; a separate stream keeps the data draws rate-independent."""
        rng = stream_rng(self.ctx.seed, run, f"{MODALITY}:corrupt")
        for i, record in enumerate(records):
            if not self.ctx.corrupt(rng) or record.driver:
                continue
            record.text, reason = corrupt_line(record.text, n_samples, rng)
            record.dirty = True
            self.ctx.truth.dirty(
                MODALITY,
                "malformed_vcf_line",
                self.ctx.relative(vcf_path),
                f"line {n_header + i + 1} {record.chrom}:{record.pos}",
                reason,
            )
            self._counts["dirty"] += 1

    def _record_features(self, specimens: list[Specimen], records: list[Record]) -> None:
        """The features as a reader of the files would compute them (dirty lines excluded)."""
        somatic = np.zeros(len(specimens), dtype=int)
        for record in records:
            if record.somatic and record.passed and not record.dirty:
                somatic[list(record.carriers)] += 1
        for j, s in enumerate(specimens):
            if s.patient is None:
                continue
            driver = s.patient.driver
            values = {
                "has_driver": driver is not None,
                "actionable_driver": driver is not None and driver.therapy is not None,
                "idh1_mutant": driver is not None and driver.gene == "IDH1",
                "tp53_mutant": s.patient.tp53 is not None,
                "n_somatic_variants": somatic[j],
                "tmb_per_mb": somatic[j] / PANEL_SIZE_MB,
            }
            for name, value in values.items():
                self.ctx.truth.feature(s.patient.patient_id, MODALITY, name, float(value))
