"""BGEN and PLINK ingestion into ``genomics_variants``: Glow's real test files and broken copies.

The real files are Glow's (``shared/realdata/vcf/glow/bgen`` and ``glow/plink``), landed by the
job together with the VCFs beside them, so one Delta table holds VCF, BGEN and PLINK rows.
They must match ``EXPECTED_FACTS.md`` and the VCFs that encode the same data (QCTOOL's decodes
of the BGENs, ``plink --recode vcf`` of the fileset). pybgen's shipped BGENs (3 to 32 bits, zstd,
layout 1) are decoded independently by pybgen; bed-reader decodes the BED. Broken files made in
``tmp_path`` are quarantined with a reason, never crash the job.
"""

from __future__ import annotations

import math
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from python_ingest.genomics import GenomicsReader
from python_ingest.genomics_bgen import read_bgen
from python_ingest.genomics_bgen_header import read_sample_file
from python_ingest.genomics_bgen_probs import decode, frame_layout2
from python_ingest.genomics_plink import decode_calls, is_plink_bed, read_plink
from tests.ingest.support import Duck, land, rerun, scan
from tests.realdata import REALDATA as REALDATA_ROOT

REALDATA = REALDATA_ROOT / "vcf"
BGEN = REALDATA / "glow" / "bgen"
PLINK = REALDATA / "glow" / "plink" / "five-samples-five-variants"
pytestmark = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real genomics files not found at {REALDATA} (shared/realdata)"
)


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Glow's BGEN and PLINK folders (with their VCFs) landed by the job into one lakehouse."""
    lakehouse = tmp_path_factory.mktemp("bgen-plink")
    for source in (BGEN, PLINK.parent):
        out, summary = land(GenomicsReader(), source, lakehouse)
        assert summary.files_landed == summary.files_seen > 0
    return out


def _rows(
    duck: Duck, bronze: Path, path: Path, select: str, where: str = "true"
) -> list[tuple[Any, ...]]:
    """One file's rows, in (contigName, start) order as Glow's suites read them, ties in file
    order (the first number of every locator counts records or lines)."""
    return duck.query(
        f"select {select} from {scan(bronze, 'genomics_variants')} "
        f"where _source_file = ? and ({where}) order by contigName, start, "
        "cast(regexp_extract(_source_locator, '(\\d+)', 1) as bigint)",
        str(path.resolve()),
    )


def _log(duck: Duck, bronze: Path, path: Path) -> tuple[int, int, int]:
    (row,) = duck.query(
        "select records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed' and path = ?",
        str(path.resolve()),
    )
    return row


def test_bgen_files_land_with_the_expected_counts(duck: Duck, bronze: Path) -> None:
    for name, variants, samples in (
        ("example.8bits.bgen", 199, 500),
        ("example.16bits.bgen", 199, 500),
        ("example.16bits.oxford.bgen", 199, 500),
        ("complex.16bits.bgen", 10, 4),
        ("phased.16bits.bgen", 1, 2504),
        ("phased.8bits.bgen", 1, 2504),
    ):
        assert _log(duck, bronze, BGEN / name) == (variants, variants, 0), name
        stats = _rows(
            duck,
            bronze,
            BGEN / name,
            "count(*) over (), min(len(genotypes)) over (), max(len(genotypes)) over (), "
            "contigName, start",
        )
        assert stats[0][:3] == (variants, samples, samples), name
    example = duck.query(
        "select contigName, start, referenceAllele, _source_locator "
        f"from {scan(bronze, 'genomics_variants')} where _source_file = ? "
        "order by cast(split_part(_source_locator, ' ', 4) as bigint)",  # file order
        str((BGEN / "example.16bits.bgen").resolve()),
    )
    assert example[0][:2] == ("01", 1999)  # Glow's docs: the head row of example.8bits
    assert example[-1][1] + 1 == 100001  # EXPECTED_FACTS: 01:2000 ... 01:100001
    assert min(example, key=lambda r: r[1])[2] == "A"  # BgenReaderSuite:222-237
    complex_alts = _rows(duck, bronze, BGEN / "complex.16bits.bgen", "len(alternateAlleles)")
    assert sum(n >= 2 for (n,) in complex_alts) == 5


def _qctool_names(names: list[str] | None) -> list[str]:
    """QCTOOL joins the rsid and the variant id with ',' in the VCF ID column."""
    return sorted(n for joined in names or [] for n in joined.split(","))


@pytest.mark.parametrize(
    "stem", ["example.8bits", "example.16bits", "phased.16bits", "phased.8bits", "complex.16bits"]
)
def test_bgen_rows_equal_qctool_vcf_decodes(duck: Duck, bronze: Path, stem: str) -> None:
    select = 'contigName, start, "end", names, referenceAllele, alternateAlleles, genotypes'
    bgen = _rows(duck, bronze, BGEN / f"{stem}.bgen", select)
    vcf = _rows(duck, bronze, BGEN / f"{stem}.vcf", select)
    assert len(bgen) == len(vcf) > 0
    for b, v in zip(bgen, vcf, strict=True):
        assert b[:3] == v[:3] and b[4:6] == v[4:6]
        assert sorted(b[3]) == _qctool_names(v[3])
        assert len(b[6]) == len(v[6])
        for g, h in zip(b[6], v[6], strict=True):
            # QCTOOL names unnamed samples itself (NA0..., sample_0...): BGEN has no name then.
            assert g["sampleId"] == h["sampleId"] or g["sampleId"] is None
            p, q = g["posteriorProbabilities"], h["posteriorProbabilities"]
            if q is None:  # GP=.,.,. : a missing sample
                assert p is None and g["calls"] == [-1] * g["ploidy"]
                continue
            assert len(p) == len(q)
            # QCTOOL prints 6 significant digits
            assert all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(p, q, strict=True))


def test_hard_calls_match_qctool_at_threshold_0_9(duck: Duck, bronze: Path) -> None:
    select = "genotypes"
    bgen = _rows(duck, bronze, BGEN / "complex.16bits.bgen", select)
    vcf = _rows(duck, bronze, BGEN / "complex.16bits.threshold-0.9.vcf", select)
    assert len(bgen) == len(vcf) == 10
    for (b,), (v,) in zip(bgen, vcf, strict=True):
        assert [g["calls"] for g in b] == [g["calls"] for g in v]
        # Glow's suite masks non-diploid calls; on diploids Glow and QCTOOL agree with us.
        assert [g["ploidy"] for g in b] == [len(g["calls"]) for g in v]
    ploidy = [[g["ploidy"] for g in b] for (b,) in bgen]
    assert ploidy[9] == [4, 4, 4, 4] and ploidy[4] == [1, 3, 3, 2]  # M10, M5: mixed ploidy
    phased = [[g["phased"] for g in b] for (b,) in bgen]
    assert phased[2] == [True] * 4 and phased[0] == [False] * 4


def test_bgen_calls_follow_glow_on_example_probabilities(duck: Duck, bronze: Path) -> None:
    """Glow's rule, recomputed here: the genotype of probability >= 0.9, else [-1, -1]."""
    colex = [[0, 0], [0, 1], [1, 1]]
    rows = _rows(duck, bronze, BGEN / "example.16bits.bgen", "genotypes")
    for (genotypes,) in rows:
        for g in genotypes:
            p = g["posteriorProbabilities"]
            best = None if p is None else max(range(3), key=lambda i: p[i])
            expected = colex[best] if p is not None and p[best] >= 0.9 else [-1, -1]
            assert g["calls"] == expected and not g["phased"] and g["ploidy"] == 2


def test_last_complex_record_and_locators(duck: Duck, bronze: Path) -> None:
    locators = [
        loc for (loc,) in _rows(duck, bronze, BGEN / "complex.16bits.bgen", "_source_locator")
    ]
    offsets = sorted(int(loc.split()[3]) for loc in locators)
    # BgenReaderSuite:175-190: iterating from byte 774 gives exactly 1 record (M10 at 775)
    assert sum(o >= 774 for o in offsets) == 1 and offsets[-1] == 775
    assert "variant 10 byte 775 01:10" in locators


def test_sample_ids_come_from_the_sample_file(duck: Duck, bronze: Path) -> None:
    lines = (BGEN / "example.16bits.oxford.sample").read_text().splitlines()[2:]
    id_2 = [line.split(" ")[1] for line in lines]
    oxford = _rows(duck, bronze, BGEN / "example.16bits.oxford.bgen", "genotypes")
    block = _rows(duck, bronze, BGEN / "example.16bits.bgen", "genotypes")
    assert [g["sampleId"] for g in oxford[0][0]] == id_2
    assert [g["sampleId"] for g in block[0][0]] == id_2  # the BGEN's own sample block
    for (o,), (b,) in zip(oxford, block, strict=True):  # the same data, re-encoded by QCTOOL
        assert [g["posteriorProbabilities"] for g in o] == [g["posteriorProbabilities"] for g in b]
    # example.sample has a single column, ID_1: it is the one that names the samples.
    assert read_sample_file(BGEN / "example.sample", 500).ids == [ln.split()[0] for ln in lines]
    samples = duck.query(
        f"select sample_id, sample_column, fields, _source_locator "
        f"from {scan(bronze, 'genomics_samples')} where source_kind = 'bgen' and _source_file = ? "
        "order by sample_column",
        str((BGEN / "example.16bits.oxford.bgen").resolve()),
    )
    assert [s for s, *_ in samples] == id_2
    assert samples[0][2] == {"ID_1": "sample_001", "ID_2": "sample_001", "missing": "0"}
    assert samples[0][3] == "example.16bits.oxford.sample line 3"


def test_pybgen_decodes_the_same_probabilities() -> None:
    pybgen = pytest.importorskip("pybgen", reason="pybgen (the test oracle) is not installed")
    data = Path(pybgen.__file__).parent / "tests" / "data"
    files = sorted(data.glob("*.bgen"))
    assert len(files) >= 8  # 3, 8, 9, 16, 24, 32 bits; zstd; cohort1 (layout 1)
    for path in files:
        outcome = read_bgen(path)
        if "zstd" in path.name and outcome.quarantined:
            assert "zstandard" in outcome.quarantined[0].reason  # reported, not crashed
            continue
        assert not outcome.quarantined, (path.name, outcome.quarantined[:2])
        rows = outcome.tables["genomics_variants"].to_pylist()
        with pybgen.PyBGEN(str(path), probs_only=True) as reader:
            theirs = list(reader)
        assert len(rows) == len(theirs) == outcome.records_read
        for row, (variant, probs) in zip(rows, theirs, strict=True):
            assert (row["contigName"], row["start"] + 1) == (variant.chrom, variant.pos)
            assert [row["referenceAllele"], *row["alternateAlleles"]] == [variant.a1, variant.a2]
            ours = [g["posteriorProbabilities"] for g in row["genotypes"]]
            missing = np.array([p is None for p in ours])
            # pybgen: NaN for a missing sample (layout 2), all zeros (layout 1)
            assert (np.isnan(probs[missing]) | (probs[missing] == 0)).all()
            got = np.array([p for p in ours if p is not None])
            np.testing.assert_allclose(got, probs[~missing], rtol=0, atol=1e-12)


def test_plink_rows_match_glow_facts(duck: Duck, bronze: Path) -> None:
    bed = PLINK / "bed-bim-fam" / "test.bed"
    assert _log(duck, bronze, bed) == (5, 5, 0)
    select = (
        'contigName, position, start, "end", names, referenceAllele, alternateAlleles, '
        "[g.sampleId for g in genotypes], [g.calls for g in genotypes]"
    )
    rows = _rows(duck, bronze, bed, select)
    ids = [f"fam{i}_ind{i}" for i in range(1, 6)]
    first = next(r for r in rows if r[4] == ["snp1"])
    last = next(r for r in rows if r[4] == ["snp5"])
    assert first == (
        "1", 0.0, 9, 10, ["snp1"], "A", ["C"], ids, [[0, 0], [0, 1], [1, 1], [-1, -1], [-1, -1]]
    )  # fmt: skip
    assert last == (
        "26", 2.5, 49, 50, ["snp5"], "A", ["C"], ids, [[0, 0], [0, 1], [0, 0], [0, 1], [0, 1]]
    )  # fmt: skip
    assert sorted(r[0] for r in rows) == ["1", "23", "24", "25", "26"]
    # PlinkReaderSuite:207-226: the same rows as plink --recode vcf, read with the common schema
    common = (
        'contigName, start, "end", names, referenceAllele, alternateAlleles, '
        "[g.sampleId for g in genotypes], [g.calls for g in genotypes]"
    )
    assert _rows(duck, bronze, bed, common) == _rows(
        duck, bronze, PLINK / "vcf" / "test.vcf", common
    )
    fam = duck.query(
        f"select sample_id, fields from {scan(bronze, 'genomics_samples')} "
        "where source_kind = 'plink' and _source_file = ? order by sample_column",
        str(bed.resolve()),
    )
    assert [s for s, _ in fam] == ids and fam[2][1]["IID"] == "ind3" and fam[2][1]["sex"] == "2"


def test_truncated_bed_lands_its_complete_variants(duck: Duck, bronze: Path) -> None:
    whole, cut = PLINK / "bed-bim-fam" / "test.bed", PLINK / "malformed" / "test.bed"
    assert _log(duck, bronze, cut) == (5, 4, 1)  # Glow throws EOFException; we keep what is whole
    select = "_source_locator, _record_hash, genotypes"
    assert _rows(duck, bronze, cut, select) == _rows(
        duck, bronze, whole, select, "names[1] != 'snp5'"
    )
    (quarantined,) = duck.query(
        f"select _source_locator, reason from {scan(bronze, '_quarantine')} where _source_file = ?",
        str(cut.resolve()),
    )
    assert quarantined[0] == "bim line 5 snp5 26:50"
    assert "cut short" in quarantined[1] and "truncated" in quarantined[1]


def test_one_table_holds_vcf_bgen_and_plink_rows(duck: Duck, bronze: Path) -> None:
    kinds = duck.query(
        "select regexp_extract(_source_file, '\\.(\\w+)$', 1) as kind, count(*), "
        "count(position), count(qual), bool_or(len(list_filter(genotypes, g -> "
        "g.ploidy is not null)) > 0) "
        f"from {scan(bronze, 'genomics_variants')} group by kind order by kind"
    )
    by_kind = {k: rest for k, *rest in kinds}
    assert by_kind["bed"] == [9, 9, 0, False]  # Glow's PLINK position; no VCF qual
    assert by_kind["bgen"][1:] == [0, 0, True]  # ploidy joins the genotype struct
    assert by_kind["vcf"][1] == 0


def test_rerun_skips_every_file(duck: Duck, bronze: Path) -> None:
    def snapshot() -> list[tuple[Any, ...]]:
        return duck.query(
            f"select count(*), sum(hash(_record_hash)) from {scan(bronze, 'genomics_variants')}"
        )

    before = snapshot()
    for source in (BGEN, PLINK.parent):
        for again in rerun(GenomicsReader(), source, bronze, times=2):
            assert again.files_skipped == again.files_seen > 0 and again.files_landed == 0
            assert snapshot() == before


def test_bed_decoder_matches_bed_reader(tmp_path: Path) -> None:
    """bed-reader's allele-1 counts, as Glow's calls, equal our decoding (real and random)."""
    bed_reader = pytest.importorskip("bed_reader", reason="bed-reader is not installed")
    as_calls = {0: [0, 0], 1: [0, 1], 2: [1, 1], -127: [-1, -1]}
    rng = random.Random(7)
    real = (PLINK / "bed-bim-fam" / "test.bed").read_bytes()[3:]
    cases = [(5, 5, real)] + [
        (n, m, bytes(rng.randrange(256) for _ in range((n + 3) // 4 * m)))
        for n, m in ((1, 3), (13, 40), (64, 17), (7, 1))
    ]
    for n, m, blocks in cases:
        bed = tmp_path / f"r{n}x{m}.bed"
        bed.write_bytes(b"\x6c\x1b\x01" + blocks)
        with bed_reader.open_bed(bed, iid_count=n, sid_count=m) as reader:
            counts = reader.read(dtype="int8", order="F").T
        expected = [[c for a1 in row for c in as_calls[int(a1)]] for row in counts]
        matrix = np.frombuffer(blocks, dtype=np.uint8).reshape(m, (n + 3) // 4)
        assert decode_calls(matrix, n).tolist() == expected


def test_sample_major_bed_lands_as_its_variant_major_twin(tmp_path: Path) -> None:
    """PLINK 0.99's sample-major layout, written by bed-reader, lands the same rows and hashes."""
    bed_reader = pytest.importorskip("bed_reader", reason="bed-reader is not installed")
    rng = np.random.default_rng(11)
    for n, m in ((5, 5), (3, 4), (13, 9), (1, 7), (8, 1)):
        values = rng.choice(np.array([0, 1, 2, -127], dtype=np.int8), size=(n, m))
        properties = {"chromosome": ["1"] * m, "bp_position": list(range(100, 100 + m))}
        outcomes = []
        for major in ("SNP", "individual"):
            bed = tmp_path / f"{major}{n}x{m}" / "cohort.bed"
            bed.parent.mkdir()
            bed_reader.to_bed(bed, values, properties, major=major, num_threads=1)
            assert bed.read_bytes()[2] == (1 if major == "SNP" else 0)
            outcomes.append(read_plink(bed))
        variant_major, sample_major = outcomes
        assert sample_major.quarantined == [] and sample_major.records_landed == m
        for table in ("genomics_variants", "genomics_samples"):
            assert sample_major.tables[table].equals(variant_major.tables[table]), (n, m, table)


# ----------------------------------------------------------------------------- broken files


def _layout2_block(values: list[list[int]], ploidy: list[int], low: int, high: int) -> bytes:
    """A decompressed layout-2 block: unphased, biallelic, 8 bits, the stored values given."""
    head = struct.pack("<IHBB", len(values), 2, low, high) + bytes(ploidy) + bytes([0, 8])
    return head + bytes(v for row in values for v in row)


def test_decode_sets_aside_broken_blocks_and_decodes_the_rest() -> None:
    good = _layout2_block([[255, 0], [0, 255], [10, 20]], [2, 2, 2], 2, 2)
    over = _layout2_block([[200, 100], [0, 0], [0, 0]], [2, 2, 2], 2, 2)  # 300/255 > 1
    outside = _layout2_block([[0, 0], [0, 0], [0, 0]], [2, 3, 2], 2, 2)  # ploidy 3 in 2-2
    missing = _layout2_block([[0, 0], [0, 230], [0, 0]], [2 | 128, 2, 2], 2, 2)
    blocks = [frame_layout2(b, 3, 2) for b in (good, over, missing, outside)]
    decoded, bad = decode(blocks, 3, explicit=False)
    assert sorted(bad) == [1, 3]
    assert bad[1] == "the probabilities of sample 1 exceed 1"
    assert bad[3] == "sample 2 has ploidy 3 outside the block's 2-2"
    assert decoded.calls.tolist() == [0, 0, 0, 1, -1, -1, -1, -1, 0, 1, 1, 1]
    assert decoded.missing.tolist() == [False] * 3 + [True, False, False]
    assert decoded.probability_counts.tolist() == [3, 3, 3, 0, 3, 3]
    np.testing.assert_allclose(decoded.probabilities[:3], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(decoded.probabilities[9:12], [0.0, 230 / 255, 25 / 255])


def _copy(src: Path, dst_dir: Path, *siblings: str) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    for suffix in siblings:
        shutil.copy(src.with_suffix(suffix), dst_dir / src.with_suffix(suffix).name)
    return dst_dir / src.name


def test_broken_bgen_files_are_quarantined_with_reasons(duck: Duck, tmp_path: Path) -> None:
    raw = (BGEN / "example.16bits.bgen").read_bytes()
    good = read_bgen(BGEN / "example.16bits.bgen").tables["genomics_variants"]
    offsets = [int(loc.split()[3]) for loc in good.column("_source_locator").to_pylist()]
    cut_at = (offsets[100] + offsets[101]) // 2  # inside variant 101's genotype block
    (tmp_path / "cut.bgen").write_bytes(raw[:cut_at])
    flipped = bytearray(raw)
    middle = (offsets[5] + offsets[6]) // 2  # inside variant 6's compressed genotypes
    flipped[middle : middle + 16] = bytes(16)
    (tmp_path / "flipped.bgen").write_bytes(bytes(flipped))
    (tmp_path / "text.bgen").write_bytes(b"##fileformat=VCFv4.2\n#CHROM\tPOS\n" * 3)
    (tmp_path / "empty.bgen").write_bytes(b"")
    (tmp_path / "header.bgen").write_bytes(raw[:10])
    shutil.copy(BGEN / "example.16bits.oxford.bgen", tmp_path / "short_row.bgen")
    sample = (BGEN / "example.16bits.oxford.sample").read_text().splitlines()
    shutil.copy(BGEN / "example.16bits.oxford.bgen", tmp_path / "few.bgen")
    (tmp_path / "few.sample").write_text("\n".join(sample[:100]) + "\n")
    sample[5] = sample[5].rsplit(" ", 1)[0]  # like Glow's corrupted sample file
    (tmp_path / "short_row.sample").write_text("\n".join(sample) + "\n")

    cut = read_bgen(tmp_path / "cut.bgen")
    assert (cut.records_landed, cut.records_read) == (100, 102)
    assert cut.quarantined[0].locator.startswith("variant 101 byte ")
    assert "runs past the end of the file" in cut.quarantined[0].reason
    assert cut.quarantined[1].locator == "file" and "199 variants" in cut.quarantined[1].reason
    flip = read_bgen(tmp_path / "flipped.bgen")
    assert (flip.records_landed, flip.records_read) == (198, 199)
    assert flip.quarantined[0].locator == f"variant 6 byte {offsets[5]} 01:7000"
    assert "decompress" in flip.quarantined[0].reason
    reasons = {
        name: read_bgen(tmp_path / name).quarantined
        for name in ("text.bgen", "empty.bgen", "header.bgen", "short_row.bgen", "few.bgen")
    }
    assert "not a BGEN file" in reasons["text.bgen"][0].reason
    assert "too short for a BGEN header" in reasons["empty.bgen"][0].reason
    assert "too short for a BGEN header" in reasons["header.bgen"][0].reason
    assert "line 6 of the sample file short_row.sample has 2 fields" in (
        reasons["short_row.bgen"][0].reason
    )
    assert "lists 98 samples where the BGEN holds 500" in reasons["few.bgen"][0].reason
    assert all(len(q) == 1 and q[0].locator == "file" for q in reasons.values())

    # Through the job: nothing crashes, every problem is in _quarantine with its reason.
    broken, summary = land(GenomicsReader(), tmp_path, tmp_path / "lakehouse")
    assert summary.files_seen == summary.files_landed == 7
    assert summary.records_landed == 100 + 198
    quarantine = duck.query(
        f"select _source_file, _source_locator, reason from {scan(broken, '_quarantine')}"
    )
    assert len(quarantine) == summary.records_quarantined == 2 + 1 + 5
    assert all(len(reason) > 25 for _, _, reason in quarantine)


def test_broken_plink_filesets_are_quarantined_with_reasons(tmp_path: Path) -> None:
    whole = PLINK / "bed-bim-fam" / "test.bed"
    raw = whole.read_bytes()
    cases = {
        "cut": raw[:8],  # blocks 1-2 whole, block 3 half: variants 3-5 are lost
        "magic": b"\x00\x00\x01" + raw[3:],
        "other_mode": raw[:2] + b"\x30" + raw[3:],  # bed-reader's smallmodebad.bed byte
        "short_sample_major": raw[:2] + b"\x00" + raw[3:-1],
        "long": raw + b"\x00\x00",
        "badbim": raw,
        "nofam": raw,
    }
    for name, data in cases.items():
        bed = _copy(whole, tmp_path / name, ".bim", ".fam")
        bed.write_bytes(data)
    (tmp_path / "nofam" / "test.fam").unlink()
    bim = (tmp_path / "badbim" / "test.bim").read_text().splitlines()
    bim[1] = bim[1].replace("\t20\t", "\t20.5\t")
    bim[3] = "25\tsnp4\t2"
    (tmp_path / "badbim" / "test.bim").write_text("\n".join(bim) + "\n")
    regions = tmp_path / "panel" / "targets.bed"  # a UCSC BED of capture regions, not PLINK
    regions.parent.mkdir()
    regions.write_text("chr1\t100\t200\tEGFR_ex1\n")
    assert not is_plink_bed(regions) and is_plink_bed(tmp_path / "cut" / "test.bed")

    cut = read_plink(tmp_path / "cut" / "test.bed")
    assert (cut.records_read, cut.records_landed) == (5, 2)
    assert [q.locator for q in cut.quarantined] == [
        "bim line 3 snp3 24:30",
        "bim line 4 snp4 25:40",
        "bim line 5 snp5 26:50",
    ]
    bad = read_plink(tmp_path / "badbim" / "test.bed")
    assert (bad.records_read, bad.records_landed) == (5, 3)
    assert [q.locator for q in bad.quarantined] == ["bim line 2", "bim line 4"]
    assert "'20.5' is not an integer" in bad.quarantined[0].reason
    assert "3 fields where 6 are needed" in bad.quarantined[1].reason
    whole_file = {
        "magic": "magic bytes",
        "other_mode": "is 0x30, neither 1 (variant-major) nor 0 (sample-major)",
        "short_sample_major": "no variant can be told whole",
        "long": "do not describe it",
        "nofam": "test.fam is missing",
    }
    for name, words in whole_file.items():
        outcome = read_plink(tmp_path / name / "test.bed")
        assert [q.locator for q in outcome.quarantined] == ["file"], name
        assert words in outcome.quarantined[0].reason, (name, outcome.quarantined[0].reason)

    _, summary = land(GenomicsReader(), tmp_path, tmp_path / "lakehouse")
    assert summary.files_seen == summary.files_landed == 7  # targets.bed is not discovered
    assert summary.records_landed == 2 + 3
    assert summary.records_quarantined == 3 + 2 + 5


def test_a_changed_sibling_relands_its_fileset(duck: Duck, tmp_path: Path) -> None:
    """A corrected .fam (sample ids) re-lands the PLINK fileset, replacing its rows."""
    fileset = tmp_path / "plink"
    shutil.copytree(PLINK / "bed-bim-fam", fileset)
    bronze, first = land(GenomicsReader(), fileset, tmp_path / "lakehouse")
    assert first.files_landed == 1
    fam = fileset / "test.fam"
    text = fam.read_text()
    iid = text.split()[1]  # the first sample's individual id
    fam.write_text(text.replace(iid, "RENAMED", 1))
    again = next(rerun(GenomicsReader(), fileset, bronze, times=1))
    assert again.files_landed == 1 and again.files_skipped == 0
    rows = duck.query(
        f"select count(*), count(distinct _record_hash) from {scan(bronze, 'genomics_variants')}"
    )
    assert rows == [(first.records_landed, first.records_landed)]  # replaced, not duplicated
    ids = duck.query(
        f"select distinct g.sampleId from {scan(bronze, 'genomics_variants')}, "
        "unnest(genotypes) as t(g) order by 1"
    )
    assert any("RENAMED" in r[0] for r in ids)
