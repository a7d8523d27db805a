"""Genomics bronze ingestion of real VCFs: Glow's and cyvcf2's test files.

Each suite is landed by the job into its own lakehouse (the two disagree on the Number of
INFO/VT, so their INFO_VT columns cannot share one Delta table; see the report on schema
conflicts). Every file must land or be quarantined with a reason, and match
``shared/realdata/vcf/EXPECTED_FACTS.md`` and the per-file counts of ``vcf_line_facts.tsv``
(records, samples, multi-allelic records, phased calls, calls with a missing allele).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from python_ingest.genomics import GenomicsReader
from tests.ingest.support import Duck, land, scan
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "vcf"
pytestmark = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real VCF files not found at {REALDATA} (shared/realdata)"
)


def _facts() -> dict[str, dict[str, str]]:
    with (REALDATA / "vcf_line_facts.tsv").open(encoding="utf-8") as handle:
        return {r["file"]: r for r in csv.DictReader(handle, delimiter="\t")}


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both suites landed by the job (one lakehouse each: they disagree on INFO/VT's Number)."""
    out: dict[str, Any] = {}
    for suite in ("glow", "cyvcf2"):
        lakehouse = tmp_path_factory.mktemp(f"real-{suite}")
        out[f"{suite}-bronze"], out[suite] = land(GenomicsReader(), REALDATA / suite, lakehouse)
    return out


def _rows(
    duck: Duck,
    real: dict[str, Any],
    rel: str,
    select: str = "*",
    where: str = "true",
    agg: bool = False,
) -> list[Any]:
    """Rows of one real file, in (contigName, start) order as Glow's suite reads them."""
    bronze = real[f"{rel.split('/')[0]}-bronze"]
    order = "" if agg else " order by contigName, start, _source_locator"
    return duck.query(
        f"select {select} from {scan(bronze, 'genomics_variants')} "
        f"where _source_file = ? and ({where}){order}",
        str((REALDATA / rel).resolve()),
    )


def test_real_files_land_with_the_counted_records(duck: Duck, real: dict[str, Any]) -> None:
    facts = _facts()
    for suite in ("glow", "cyvcf2"):
        bronze = real[f"{suite}-bronze"]
        log = duck.query(
            "select path, records_read, records_landed, records_quarantined "
            f"from {scan(bronze, '_ingest_log')} where status = 'landed'"
        )
        for path, read, landed, quarantined in log:
            rel = Path(path).relative_to(REALDATA).as_posix()
            assert read == landed + quarantined
            if rel == "cyvcf2/empty.vcf":  # 0 bytes: no header, one file-level entry
                assert (landed, quarantined) == (0, 1)
            elif rel in facts:
                assert (landed, quarantined) == (int(facts[rel]["records"]), 0), rel
    # glow: one variant of the deliberately malformed PLINK fileset (snp5, cut short).
    assert real["cyvcf2"].records_quarantined == 1 and real["glow"].records_quarantined == 1


def test_real_counts_of_samples_alleles_and_phasing(duck: Duck, real: dict[str, Any]) -> None:
    for rel, fact in _facts().items():
        if not fact["records"] or fact["records"] == "0" or rel.endswith(".bcf"):
            continue
        row = _rows(
            duck,
            real,
            rel,
            "max(len(genotypes)), "
            "sum(len(list_filter(alternateAlleles, a -> a not in ('<NON_REF>', '<*>'))) >= 2), "
            "sum(len(list_filter(genotypes, g -> g.phased))), "
            "sum(len(list_filter(genotypes, g -> list_contains(g.calls, -1))))",
            agg=True,
        )
        samples, multi, phased, missing = (int(v or 0) for v in row[0])
        # The tsv splits test-invalid-header's "#CHROM ... FOO<tab>" into samples FOO and "";
        # its lines have one sample column: a trailing tab is no sample.
        assert samples == int(fact["samples"]) - (rel == "cyvcf2/test-invalid-header.vcf"), rel
        assert multi == int(fact["multiallelic_records"]), rel
        assert phased == int(fact["gt_calls_phased"]), rel
        assert missing == int(fact["gt_calls_with_missing_allele"]), rel


def test_ceutrio_matches_glow(duck: Duck, real: dict[str, Any]) -> None:
    rel = "glow/CEUTrio.HiSeq.WGS.b37.NA12878.20.21.vcf"
    first = _rows(
        duck,
        real,
        rel,
        'contigName, start, "end", names, referenceAllele, alternateAlleles, qual, filters, '
        "INFO_AC, INFO_AF, INFO_AN, INFO_DP, INFO_DS, INFO_ExcessHet, INFO_FS, INFO_MLEAC, "
        "INFO_MLEAF, INFO_MQ, INFO_QD, INFO_SOR, INFO_BaseQRankSum, INFO_InbreedingCoeff, "
        "INFO_MQRankSum, INFO_ReadPosRankSum, genotypes[1]",
    )[0]
    assert first[:8] == ("20", 9999995, 9999996, None, "A", ["ACT"], 3775.73, None)
    assert first[8:20] == ([2], [1.0], 2, 84, False, 3.0103, 0.0, [2], [1.0], 60.44, 25.36, 1.075)
    assert first[20:24] == (None, None, None, None)
    genotype = {k: v for k, v in first[24].items() if v is not None}  # other files' FORMAT keys
    assert genotype == {
        "sampleId": "NA12878", "phased": False, "calls": [1, 1], "alleleDepths": [0, 84],
        "depth": 84, "conditionalQuality": 99, "phredLikelihoods": [3813, 256, 0],
    }  # fmt: skip
    stats = _rows(
        duck,
        real,
        rel,
        "count(*), avg(INFO_DP), count(*) filter (contigName = '20'), "
        "bool_and(genotypes[1].sampleId = 'NA12878')",
        agg=True,
    )[0]
    assert stats[0] == 1075 and math.isclose(stats[1], 75.50232558139535, rel_tol=1e-12)
    assert stats[2:] == (491, True)
    tabix = _rows(
        duck,
        real,
        "glow/tabix-test-vcf/CEUTrio.HiSeq.WGS.b37.NA12878.20.21.vcf.gz",
        "start + 1, referenceAllele, alternateAlleles[1]",
        "contigName = '20' and start > 10012714 and \"end\" < 10014990",
    )
    assert tabix == [(10012751, "T", "C"), (10013119, "C", "T"), (10013574, "G", "A")]


def test_glow_schema_facts() -> None:
    reader = GenomicsReader()
    ceu = reader.read(REALDATA / "glow/CEUTrio.HiSeq.WGS.b37.NA12878.20.21.vcf")
    kg = reader.read(REALDATA / "glow/1000genomes-phase3-1row.vcf")
    names = {
        n
        for o in (ceu, kg)
        for n in o.tables["genomics_variants"].column_names
        if not n.startswith("_")
    }
    assert len(names) == 49 and {"INFO_MQRankSum", "INFO_EX_TARGET"} <= names
    assert "END" not in names
    row = kg.tables["genomics_variants"].to_pylist()[0]
    assert len(row["genotypes"]) == 2504 and all(g["phased"] for g in row["genotypes"])
    assert (row["start"], row["referenceAllele"], row["alternateAlleles"]) == (10234, "T", ["TA"])


def test_real_value_facts(duck: Duck, real: dict[str, Any]) -> None:
    assert _rows(duck, real, "glow/test.chr17.vcf", "INFO_platformnames")[0] == (
        ["Illumina", "CG", "10X", "Solid"],
    )
    v43 = _rows(duck, real, "glow/vcf/VCFv4.3.vcf", "alternateAlleles, genotypes[1].phased")
    assert len(v43) == 5 and [] in [a for a, _ in v43]
    quals = [q for (q,) in _rows(duck, real, "glow/vcf/test_withNanQual.vcf", "qual")]
    assert len(quals) == 10 and all(math.isnan(q) for q in quals)
    quals = sorted(q for (q,) in _rows(duck, real, "glow/vcf/test_withInfQual.vcf", "qual"))
    assert quals == [-math.inf] * 4 + [math.inf] * 8
    gp = [
        p
        for (g,) in _rows(duck, real, "glow/vcf/test_withInfGenotype.vcf", "genotypes[1]")
        for p in g["posteriorProbabilities"]
    ]
    assert sorted(gp) == [-math.inf] * 2 + [math.inf] * 4
    nan = _rows(duck, real, "glow/vcf/test_withNanGenotype.vcf", "genotypes[1]")
    assert all(
        math.isnan(g["posteriorProbabilities"][0]) and g["calls"] == [-1, -1] for (g,) in nan
    )
    misnumbered = _rows(duck, real, "glow/vcf/misnumbered_info.vcf", "INFO_CUSTOM, genotypes[1]")
    assert misnumbered[0][0] is None and misnumbered[0][1]["alleleDepths"] == [1, 2]
    assert len(_rows(duck, real, "glow/vcf/missing_contig_length.vcf")) == 1
    ones = {
        h
        for rel in ("1row_not_bgz.vcf.gz", "1row_bgz.vcf.gz", "1row.vcf.bgz")
        for (h,) in _rows(duck, real, f"glow/vcf/{rel}", "_record_hash")
    }
    assert len(ones) == 1  # plain gzip and BGZF give the same single record
    assert len(_rows(duck, real, "glow/NA12878_21_10002403.vcf")) == 4


def test_vep_and_snpeff_annotations(duck: Duck, real: dict[str, Any]) -> None:
    (csq,) = _rows(duck, real, "glow/vcf/loftee.vcf", "INFO_CSQ")[0]
    assert len(csq) == 23
    head = csq[0]
    assert head["Allele"] == "T" and head["Consequence"] == [
        "missense_variant",
        "splice_region_variant",
    ]
    assert (head["IMPACT"], head["SYMBOL"], head["Gene"]) == (
        "MODERATE",
        "CHEK2",
        "ENSG00000183765",
    )
    assert head["EXON"] == {"rank": 11, "total": 15} and head["INTRON"] is None
    assert (head["cDNA_position"], head["CDS_position"], head["Protein_position"]) == (
        1341,
        1259,
        420,
    )
    assert head["Amino_acids"] == {"reference": "C", "variant": "Y"}
    assert head["Codons"] == {"reference": "tGc", "variant": "tAc"}
    assert (head["STRAND"], head["SYMBOL_SOURCE"], head["HGNC_ID"]) == (-1, "HGNC", "16627")
    assert len(head["LoF_info"]) == 13 and head["LoF_info"][0] == "EXON_START:29091698"
    (ann,) = _rows(duck, real, "glow/vcf/snpeff.vcf", "INFO_ANN")[0]
    assert len(ann) == 5
    assert ann[0]["Annotation"] == ["splice_region_variant", "synonymous_variant"]
    assert ann[0]["Rank"] == {"rank": 6, "total": 10}
    assert ann[0]["cDNA.pos / cDNA.length"] == {"pos": 1395, "length": None}
    assert ann[0]["AA.pos / AA.length"] == {"pos": 429, "length": 574}
    assert (ann[1]["Feature_ID"], ann[1]["HGVS.c"], ann[1]["HGVS.p"]) == (
        "ENST00000465611",
        "n.*1412G>A",
        None,
    )


def test_cyvcf2_facts(duck: Duck, real: dict[str, Any]) -> None:
    first = _rows(
        duck,
        real,
        "cyvcf2/test.vcf.gz",
        'contigName, start, "end", names, qual, filters, referenceAllele, alternateAlleles, '
        "genotypes[1].phredLikelihoods, genotypes[2].phredLikelihoods, len(genotypes)",
        "start = 10171",
    )[0]
    assert first == (
        "1",
        10171,
        10177,
        None,
        92.0,
        ["PASS"],
        "CCCTAA",
        ["C"],
        [0, 7, 922],
        None,
        189,
    )
    phasing = [
        [g["phased"] for g in gts]
        for (gts,) in _rows(duck, real, "cyvcf2/test.comp_het.3.vcf", "genotypes")
    ][:5]
    assert all(phasing[0]) and all(phasing[1]) and not any(phasing[4])
    assert phasing[2] == [i % 2 == 1 for i in range(12)]
    assert phasing[3] == [False] * 11 + [True]
    haploid = _rows(
        duck,
        real,
        "cyvcf2/test-haploidX.vcf",
        "bool_and(len(list_filter(genotypes, g -> len(g.calls) != 1)) = 0)",
        agg=True,
    )
    assert haploid == [(True,)]
    assert [c for (c,) in _rows(duck, real, "cyvcf2/issue_198.vcf", "genotypes[1].calls")] == [
        [0, -1],
        [0, -1],
    ]
    mixed = _rows(duck, real, "cyvcf2/test_gt_bases.vcf.gz", "[g.calls for g in genotypes]")
    assert [m for (m,) in mixed][:4] == [[[1, 1], [1, 1]], [[0, 1], [0]], [[0], [0, 1]], [[1], [1]]]
    bcf = _rows(
        duck, real, "cyvcf2/test.snpeff.bcf", "contigName, start, referenceAllele, alternateAlleles"
    )
    vcf = _rows(
        duck, real, "cyvcf2/test.snpeff.vcf", "contigName, start, referenceAllele, alternateAlleles"
    )
    assert len(bcf) == 10 and bcf == vcf
    header = _rows(
        duck, real, "cyvcf2/test-invalid-header.vcf", "len(genotypes), genotypes[1].sampleId"
    )
    assert set(header) == {(1, "FOO")}  # the #CHROM line's trailing tab is no empty sample


def test_non_vcf_files_are_not_discovered() -> None:
    found = GenomicsReader().discover(REALDATA / "glow")
    assert found and all(
        p.name.endswith((".vcf", ".vcf.gz", ".vcf.bgz", ".bgen", ".bed")) for p in found
    )
    assert not any(p.suffix in (".tbi", ".sample", ".bgi", ".bim", ".fam") for p in found)
    assert any(p.suffix == ".bgen" for p in found) and any(p.suffix == ".bed" for p in found)
