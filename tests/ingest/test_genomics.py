"""Genomics bronze ingestion of generated sequencing runs (VCF + lab manifest per run).

The generated cohort lists every VCF line it damaged (``_truth/dirty_records.csv``): exactly those
lines are quarantined (by file and ``line N CHROM:POS`` locator) and every other data line lands
once, with its bytes' hash. Foreign specimens (``unknown_specimen``) are a linkage question, not a
malformed record: their genotypes land and the anti-join of VCF sample columns against manifest
rows in ``genomics_samples`` reports them. Landed values are checked against an independent
plain-Python reading of the lines. Real files: ``test_genomics_realdata.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from python_ingest.genomics import GenomicsReader
from python_ingest.job import IngestJob
from tests.ingest.support import (
    Duck,
    Landed,
    dirty_records,
    fixtures_for,
    land_copy,
    rerun,
    scan,
    write_clashing_vcfs,
)

cohort, landed = fixtures_for(
    GenomicsReader,
    seed=23,
    modalities=("ehr", "genomics"),
    vcf_batch_size=12,  # several runs: several files, parsed in the process pool
)


def _data_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes) of every data line of a VCF, header lines counted."""
    text = gzip.decompress(path.read_bytes())
    for number, line in enumerate(text.split(b"\n"), start=1):
        if line and not line.startswith(b"#"):
            yield number, line


def _locator(number: int, line: bytes) -> str:
    chrom, pos = line.split(b"\t")[:2]
    digits = pos.split(b".")[0].decode()
    return f"line {number} {chrom.decode()}:{digits}"


def _relative(path: str, cohort: Path) -> str:
    return Path(path).relative_to(cohort).as_posix()


def test_clean_lines_land_once_and_exactly_the_dirty_lines_are_quarantined(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, summary = landed
    dirty = {
        (r["file"], r["locator"]) for r in dirty_records(cohort, "genomics", "malformed_vcf_line")
    }
    assert dirty, "the generator should have damaged some lines at dirty_rate=0.05"
    expected: Counter[tuple[str, str, str]] = Counter()
    for path in sorted((cohort / "genomics" / "vcf").glob("*.vcf.gz")):
        rel = path.relative_to(cohort).as_posix()
        for number, line in _data_lines(path):
            locator = _locator(number, line)
            if (rel, locator) not in dirty:
                expected[(rel, locator, hashlib.sha256(line).hexdigest())] += 1
    rows = duck.query(
        "select _source_file, _source_locator, _record_hash "
        f"from {scan(bronze, 'genomics_variants')}"
    )
    assert Counter((_relative(f, cohort), loc, h) for f, loc, h in rows) == expected
    quarantined = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "where modality = 'genomics'"
    )
    assert {(_relative(f, cohort), loc) for f, loc, _ in quarantined} == dirty
    assert len(quarantined) == len(dirty)
    assert all(len(reason) > 20 for _, _, reason in quarantined)
    assert summary.records_quarantined == len(dirty)


def test_reasons_name_what_is_wrong(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, _ = landed
    truth = {
        (r["file"], r["locator"]): r["reason"]
        for r in dirty_records(cohort, "genomics", "malformed_vcf_line")
    }
    rows = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')}"
    )
    for file, locator, reason in rows:
        generated = truth[(_relative(file, cohort), locator)]
        if generated.startswith("line truncated"):
            assert "columns" in reason
        else:  # POS, REF, GT and FORMAT reasons quote the offending value like the generator
            assert reason == generated, (locator, reason, generated)


def test_unknown_specimens_land_and_are_found_by_the_manifest_anti_join(
    duck: Duck, cohort: Path, landed: Landed
) -> None:
    bronze, _ = landed
    unknown = {
        r["locator"].removeprefix("sample ")
        for r in dirty_records(cohort, "genomics", "unknown_specimen")
    }
    assert unknown, "the generator should have put foreign specimens on some run"
    samples = scan(bronze, "genomics_samples")
    orphans = duck.query(
        f"select distinct v.sample_id from {samples} v where v.source_kind = 'vcf' and not exists "
        f"(select 1 from {samples} m where m.source_kind = 'manifest' "
        "and m.sample_id = v.sample_id)"
    )
    assert {s for (s,) in orphans} == unknown
    called = duck.query(
        "select distinct g.sampleId from "
        f"(select unnest(genotypes) as g from {scan(bronze, 'genomics_variants')})"
    )
    assert unknown <= {s for (s,) in called}
    manifest = duck.query(
        f"select count(*), count(patient_mrn), count(collection_date), count(tumour_purity), "
        f"count(fields) from {samples} where source_kind = 'manifest'"
    )[0]
    assert manifest[0] > 0 and set(manifest) == {manifest[0]}


def test_accounting_per_file(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, _ = landed
    log = duck.query(
        "select path, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed'"
    )
    assert len(log) == len(GenomicsReader().discover(cohort / "genomics"))
    for path, read, landed_, quarantined in log:
        assert read == landed_ + quarantined
        if path.endswith(".vcf.gz"):
            assert read == sum(1 for _ in _data_lines(Path(path)))


def _reference(line: bytes, samples: list[str]) -> dict[str, Any]:
    """An independent plain-Python reading of one generated line (GT:AD:DP:GQ[:PS])."""
    cols = line.decode().split("\t")
    info = dict(kv.split("=") if "=" in kv else (kv, True) for kv in cols[7].split(";"))
    keys = cols[8].split(":")
    genotypes = []
    for sample, cell in zip(samples, cols[9:], strict=True):
        values = dict(zip(keys, cell.split(":"), strict=False))
        gt = values["GT"]
        calls = [-1 if a == "." else int(a) for a in gt.replace("|", "/").split("/")]

        def num(key: str, values: dict[str, str] = values) -> int | None:
            value = values.get(key, ".")
            return None if value == "." else int(value)

        ad = values.get("AD", ".")
        genotypes.append(
            {
                "sampleId": sample,
                "phased": "|" in gt,
                "calls": calls,
                "alleleDepths": None
                if all(a == "." for a in ad.split(","))
                else [None if a == "." else int(a) for a in ad.split(",")],
                "depth": num("DP"),
                "conditionalQuality": num("GQ"),
                "PS": num("PS"),
            }
        )
    af = info.get("AF", ".")
    return {
        "contigName": cols[0],
        "start": int(cols[1]) - 1,
        "end": int(cols[1]) - 1 + len(cols[3]),
        "names": None if cols[2] == "." else cols[2].split(";"),
        "referenceAllele": cols[3],
        "alternateAlleles": [] if cols[4] == "." else cols[4].split(","),
        "qual": None if cols[5] == "." else float(cols[5]),
        "filters": None if cols[6] == "." else cols[6].split(";"),
        "splitFromMultiAllelic": False,
        "INFO_DP": int(info["DP"]),
        "INFO_AF": None if af == "." else [float(a) for a in af.split(",")],
        "INFO_GENE": info["GENE"],
        "INFO_SOMATIC": "SOMATIC" in info,
        "genotypes": genotypes,
    }


def test_landed_values_match_an_independent_reading(cohort: Path, landed: Landed) -> None:
    path = sorted((cohort / "genomics" / "vcf").glob("*.vcf.gz"))[0]
    table = GenomicsReader().read(path).tables["genomics_variants"]
    head = [c for c in table.column_names if not c.startswith("_")]
    assert head[:9] == [
        "contigName", "start", "end", "names", "referenceAllele", "alternateAlleles", "qual",
        "filters", "splitFromMultiAllelic",
    ]  # fmt: skip
    assert head[9:] == ["INFO_DP", "INFO_AF", "INFO_GENE", "INFO_SOMATIC", "genotypes"]
    struct = table.schema.field("genotypes").type.value_type
    assert [(f.name, str(f.type)) for f in struct] == [
        ("sampleId", "string"), ("phased", "bool"), ("calls", "list<item: int32>"),
        ("alleleDepths", "list<item: int32>"), ("depth", "int32"),
        ("conditionalQuality", "int32"), ("PS", "int32"),
    ]  # fmt: skip
    header = [ln for ln in gzip.decompress(path.read_bytes()).split(b"\n") if ln[:2] == b"#C"]
    samples = header[0].decode().split("\t")[9:]
    lines = {_locator(n, line): line for n, line in _data_lines(path)}
    rows = table.to_pylist()
    for row in random.Random(5).sample(rows, 60) + rows[:3] + rows[-3:]:
        expected = _reference(lines[row["_source_locator"]], samples)
        got = {k: row[k] for k in expected}
        assert got == expected, row["_source_locator"]
    phased = [g for r in rows for g in r["genotypes"] if g["phased"]]
    assert phased and all(g["PS"] is not None for g in phased)


def _snapshot(duck: Duck, bronze: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: duck.query(
            f"select _source_file, _source_locator, _record_hash from {scan(bronze, table)} "
            "order by all"
        )
        for table in ("genomics_variants", "genomics_samples")
    } | {
        "quarantine": duck.query(
            f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
            "order by all"
        )
    }


def test_reruns_change_nothing(duck: Duck, cohort: Path, landed: Landed) -> None:
    bronze, first = landed
    before = _snapshot(duck, bronze)
    for again in rerun(GenomicsReader(), cohort / "genomics", bronze):
        assert again.files_skipped == again.files_seen == first.files_seen
        assert again.records_read == 0
    assert _snapshot(duck, bronze) == before


def test_a_rewritten_file_is_relanded_without_duplicates(
    duck: Duck, cohort: Path, tmp_path: Path
) -> None:
    source, bronze, _ = land_copy(GenomicsReader(), cohort / "genomics", tmp_path)
    vcf = sorted((source / "vcf").glob("*.vcf.gz"))[0]
    lines = gzip.decompress(vcf.read_bytes()).split(b"\n")
    data = [i for i, line in enumerate(lines) if line and not line.startswith(b"#")]
    kept = [*lines[: data[10]], b""]  # the lab re-sent the run with only its first ten records
    vcf.write_bytes(gzip.compress(b"\n".join(kept)))  # plain gzip this time, not BGZF
    summary = IngestJob(GenomicsReader(), bronze.parent).run(source)
    assert summary.files_landed == 1 and summary.files_skipped == summary.files_seen - 1
    rows = duck.query(
        f"select _source_locator from {scan(bronze, 'genomics_variants')} where _source_file = ?",
        str(vcf.resolve()),
    )
    quarantined = duck.query(
        f"select count(*) from {scan(bronze, '_quarantine')} where _source_file = ?",
        str(vcf.resolve()),
    )[0][0]
    assert len(rows) + quarantined == 10 and len(set(rows)) == len(rows)
    total = duck.query(f"select count(*) from {scan(bronze, 'genomics_variants')}")[0][0]
    dup = duck.query(
        f"select count(*) from (select _source_file, _source_locator from "
        f"{scan(bronze, 'genomics_variants')} group by all having count(*) > 1)"
    )[0][0]
    assert dup == 0 and total > len(rows)


def _vcf(tmp_path: Path, body: str, header: str = "", samples: str = "S1\tS2") -> Path:
    text = (
        "##fileformat=VCFv4.2\n"
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n'
        '##INFO=<ID=DB,Number=0,Type=Flag,Description="dbSNP">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="quality">\n'
        f"{header}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{samples}\n{body}"
    )
    path = tmp_path / "t.vcf"
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_lines_are_isolated_and_located(tmp_path: Path) -> None:
    body = (
        "1\t100\trs1;rs2\tA\tG,T\t50\tPASS\tDP=10;DB\tGT:GQ\t0|2:30\t./.\r\n"  # CRLF is fine
        "1\t101\t.\tA\tG\tlow\t.\tDP=10\tGT:GQ\t0/1:30\t0/0:20\n"  # QUAL not a number
        "\n"  # a blank line is no record
        "1\t102\t.\tA\tG\t.\t.\tDP=ten\tGT:GQ\t0/1:30\t0/0:20\n"  # INFO value of the wrong Type
        "1\t103\t.\tA\tG\t.\t.\tEND=200\tGT:GQ\t0/1:30:7\t0/0\n"  # more values than keys
        "1\t104\t.\tA\t<DEL>\t.\tq10;s50\tEND=300\tGT:GQ\t1\t0/.\n"
    )
    outcome = GenomicsReader().read(_vcf(tmp_path, body))
    assert (outcome.records_read, outcome.records_landed) == (5, 2)
    reasons = {q.locator: q.reason for q in outcome.quarantined}
    assert reasons == {
        "line 8 1:101": "QUAL 'low' is not a number",
        "line 10 1:102": "INFO/DP 'ten' is not an Integer",
        "line 11 1:103": "sample column 1 has 3 values for 2 FORMAT keys",
    }
    first, last = outcome.tables["genomics_variants"].to_pylist()
    assert first["names"] == ["rs1", "rs2"] and first["filters"] == ["PASS"]
    assert first["INFO_DB"] is True and last["INFO_DB"] is False
    assert first["genotypes"][0]["calls"] == [0, 2] and first["genotypes"][0]["phased"]
    assert first["genotypes"][1] == {
        "sampleId": "S2", "phased": False, "calls": [-1, -1], "conditionalQuality": None
    }  # fmt: skip
    assert (last["start"], last["end"], last["filters"]) == (103, 300, ["q10", "s50"])
    assert [g["calls"] for g in last["genotypes"]] == [[1], [0, -1]]


def test_vcf44_phasing_long_contigs_and_typed_reasons(tmp_path: Path) -> None:
    """VCF 4.4's phasing indicator before the first allele; an END past 2^31 (long contigs);
    reasons that say why a value is not of its type."""
    header = (
        '##INFO=<ID=END,Number=1,Type=Integer,Description="end">\n'
        '##FORMAT=<ID=AD,Number=R,Type=String,Description="depths, declared as text">\n'
    )
    body = (
        "1\t100\t.\tA\tG\t.\t.\t.\tGT\t/0|1\t|0\n"
        "1\t101\t.\tA\tG\t.\t.\t.\tGT\t|0/1\t/1\n"
        "1\t10010000110\t.\tG\t<DEL>\t.\t.\tEND=10010001000\tGT\t0/1\t0/0\n"
        "1\t102\t.\tA\tG\t.\t.\tDP=3000000000\tGT\t0/1\t0/0\n"
        "1\t103\t.\tA\tG\t.\t.\t.\tGT:AD\t0/1:lowcov\t0/0:5,0\n"
    )
    outcome = GenomicsReader().read(_vcf(tmp_path, body, header))
    assert (outcome.records_read, outcome.records_landed) == (5, 3)
    assert {q.locator: q.reason for q in outcome.quarantined} == {
        "line 12 1:102": "INFO/DP '3000000000' is outside the 32-bit range of a VCF Integer",
        "line 13 1:103": "FORMAT/AD 'lowcov' of sample column 1 is not an Integer (the header "
        "declares Type=String; Glow's column for this key is Integer)",
    }
    first, second, long_contig = outcome.tables["genomics_variants"].to_pylist()
    assert [(g["calls"], g["phased"]) for g in first["genotypes"]] == [([0, 1], True), ([0], True)]
    assert [(g["calls"], g["phased"]) for g in second["genotypes"]] == [
        ([0, 1], False),
        ([1], False),
    ]
    # INFO_END is Glow's int: the position is null there and whole in ``end``.
    assert (long_contig["start"], long_contig["end"]) == (10010000109, 10010001000)
    assert long_contig["INFO_END"] is None


def test_files_whose_columns_clash_are_set_aside_record_by_record(
    duck: Duck, tmp_path: Path
) -> None:
    """A clash stops neither the batch nor the ledger: each record of the file that cannot
    join is quarantined at its own line, and the next run finds the file landed as it was."""
    source = tmp_path / "vcfs"
    write_clashing_vcfs(source)
    bronze = tmp_path / "lakehouse" / "bronze"
    summary = IngestJob(GenomicsReader(), bronze.parent).run(source)
    assert (summary.records_read, summary.records_landed, summary.records_quarantined) == (
        10, 3, 7
    )  # fmt: skip
    log = duck.query(
        "select path, records_read, records_landed, records_quarantined "
        f"from {scan(bronze, '_ingest_log')} where status = 'landed' order by path"
    )
    assert [(Path(p).name, *counts) for p, *counts in log] == [
        ("a.vcf", 3, 3, 0),
        ("b.vcf", 3, 0, 3),
        ("c.vcf", 4, 0, 4),
    ]
    rows = duck.query(
        f"select _source_file, _source_locator, reason from {scan(bronze, '_quarantine')} "
        "order by _source_file, _source_locator"
    )
    b = [(loc, reason) for f, loc, reason in rows if f.endswith("b.vcf")]
    assert [loc for loc, _ in b] == ["line 6 1:100", "line 7 1:101", "line 8 1:102"]
    assert all("INFO_src differs only in case from INFO_SRC" in reason for _, reason in b)
    c = {loc: reason for f, loc, reason in rows if f.endswith("c.vcf")}
    assert c.pop("line 8 1:200") == "GT '0/2' of sample column 1 exceeds the 1 ALT allele(s)"
    assert list(c) == ["line 5 1:100", "line 6 1:101", "line 7 1:102"]
    assert all(r.startswith("column INFO_DP is list<item: string> here") for r in c.values())
    again = IngestJob(GenomicsReader(), bronze.parent).run(source)
    assert (again.files_skipped, again.files_landed) == (3, 0)


def test_a_truncated_gzip_lands_what_it_holds(tmp_path: Path) -> None:
    body = "".join(f"1\t{100 + i}\t.\tA\tG\t.\t.\tDP={i}\tGT\t0/1\t1/1\n" for i in range(2000))
    plain = _vcf(tmp_path, body)
    packed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    outcome = GenomicsReader().read(cut)
    assert 0 < outcome.records_landed < 2000
    assert outcome.quarantined[0].locator == "file"
    assert "cut short" in outcome.quarantined[0].reason and len(outcome.quarantined) <= 2
    assert outcome.records_read == outcome.records_landed + len(outcome.quarantined)


def test_sites_only_and_empty_bodies_keep_a_stable_schema(tmp_path: Path) -> None:
    path = _vcf(tmp_path, "", samples="S1")
    table = GenomicsReader().read(path).tables["genomics_variants"]
    assert table.num_rows == 0
    genotype = table.schema.field("genotypes").type.value_type
    assert [f.name for f in genotype] == ["sampleId", "phased", "calls", "conditionalQuality"]
    assert table.schema.field("INFO_DB").type == pa.bool_()


SAMPLE_SHEET = """[Header],,,,
IEMFileVersion,4,,,
Experiment Name,RUN-2024-0107,,,
Date,6/10/2024,,,
Workflow,GenerateFASTQ,,,
,,,,
[Reads],,,,
151,,,,
,,,,
[Settings],,,,
Adapter,AGATCGGAAGAGCACACGTCTGAACTCCAGTCA,,,
,,,,
[Data],,,,
Sample_ID,Sample_Name,index,index2,Sample_Project
SPM-1-T,Tumour 1,ATTACTCG,TATAGCCT,Onco
SPM-1-N,Normal 1,TCCGGAGA,ATAGAGGC,Onco
,Orphan,GGGGGGGG,CCCCCCCC,Onco
,,,,
"""


def test_an_illumina_sample_sheet_is_a_manifest(tmp_path: Path) -> None:
    """SampleSheet.csv (v1 [Data], v2 [BCLConvert_Data]): its sample rows land, located by their
    line in the file, with the run's name and date from [Header]."""
    (tmp_path / "SampleSheet.csv").write_text(SAMPLE_SHEET, encoding="utf-8")
    v2 = "[Header]\nFileFormatVersion,2\nRunName,R2\n\n[BCLConvert_Data]\nSample_ID,Index\nS9,AC\n"
    (tmp_path / "v2.csv").write_text(v2, encoding="utf-8")
    (tmp_path / "reads_only.csv").write_text("[Header]\nRunName,R3\n[Reads]\n151\n")
    reader = GenomicsReader()
    sheet = reader.read(tmp_path / "SampleSheet.csv")
    rows = sheet.tables["genomics_samples"].to_pylist()
    assert [(r["sample_id"], r["_source_locator"]) for r in rows] == [
        ("SPM-1-T", "line 15"),
        ("SPM-1-N", "line 16"),
    ]
    assert {(r["sequencing_run"], str(r["run_date"])) for r in rows} == {
        ("RUN-2024-0107", "2024-06-10")
    }
    assert dict(rows[0]["fields"])["index2"] == "TATAGCCT"
    assert {r["source_kind"] for r in rows} == {"sample_sheet"}
    assert [(q.locator, q.reason) for q in sheet.quarantined] == [
        ("line 17", "the row has no specimen id")
    ]
    (row,) = reader.read(tmp_path / "v2.csv").tables["genomics_samples"].to_pylist()
    assert (row["sample_id"], row["sequencing_run"], row["_source_locator"]) == (
        "S9",
        "R2",
        "line 7",
    )
    (bad,) = reader.read(tmp_path / "reads_only.csv").quarantined
    assert bad.reason == "an Illumina sample sheet with no [Data] or [BCLConvert_Data] section " + (
        "([header], [reads])"
    )
