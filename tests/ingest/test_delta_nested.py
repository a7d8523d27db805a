"""A struct that gains fields keeps every data file on the table's nested types.

DuckDB's delta extension crashes on a list of structs whose fields differ between files
(``mmlake.delta_nested``), so a write adding a nested field rewrites the table in one commit,
and everything here is read back through ``delta_scan``, the way dbt's bronze views read it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from mmlake.delta import commit_info, delta_version, write_delta
from python_ingest.genomics import GenomicsReader
from python_ingest.job import IngestJob
from tests.ingest.support import Duck, scan

CALL = [("sampleId", pa.string()), ("phased", pa.bool_()), ("calls", pa.list_(pa.int32()))]


def _rows(source: str, extra: list[tuple[str, pa.DataType]], **values: object) -> pa.Table:
    kind = pa.list_(pa.struct(CALL + extra))
    call = {"sampleId": "S1", "phased": True, "calls": [0, 1], **values}
    genotypes = pa.array([[call, {**call, "sampleId": "S2", "phased": False}]], kind)
    return pa.table({"_source_file": [source], "genotypes": genotypes})


def _struct_widths(path: Path) -> list[int]:
    """The number of fields of ``genotypes``' struct in each active data file."""
    return sorted(
        pq.read_schema(f).field("genotypes").type.value_type.num_fields
        for f in DeltaTable(str(path)).file_uris()
    )


def _calls(duck: Duck, path: Path) -> list[tuple[object, ...]]:
    return duck.query(
        "select _source_file, g.sampleId, g.phased, g.DP from "
        f"(select _source_file, unnest(genotypes) as g from delta_scan('{path}')) "
        "order by 1, 2"
    )


def test_a_new_struct_field_rewrites_the_table_in_one_commit(duck: Duck, tmp_path: Path) -> None:
    path = tmp_path / "variants"
    write_delta(path, _rows("a.vcf", []))
    write_delta(path, _rows("b.vcf", [("DP", pa.int32())], DP=7))

    assert delta_version(path) == 1  # one commit: the rewrite and the new rows together
    assert _struct_widths(path) == [4]
    assert _calls(duck, path) == [
        ("a.vcf", "S1", True, None),
        ("a.vcf", "S2", False, None),
        ("b.vcf", "S1", True, 7),
        ("b.vcf", "S2", False, 7),
    ]
    phased = duck.query(
        f"select _source_file, len(list_filter(genotypes, g -> g.phased)), genotypes[1].DP "
        f"from delta_scan('{path}') order by 1"
    )
    assert phased == [("a.vcf", 1, None), ("b.vcf", 1, 7)]


def test_a_replacing_write_drops_the_replaced_rows_from_the_rewrite(
    duck: Duck, tmp_path: Path
) -> None:
    path = tmp_path / "variants"
    write_delta(path, _rows("a.vcf", []))
    write_delta(path, _rows("b.vcf", []))
    write_delta(
        path,
        _rows("a.vcf", [("DP", pa.int32())], DP=3),
        mode="overwrite",
        predicate="_source_file IN ('a.vcf')",
    )
    assert _struct_widths(path) == [4]  # b's rows and a's new ones, rewritten together
    assert _calls(duck, path) == [
        ("a.vcf", "S1", True, 3),
        ("a.vcf", "S2", False, 3),
        ("b.vcf", "S1", True, None),
        ("b.vcf", "S2", False, None),
    ]


def test_fewer_fields_or_a_new_top_level_column_append_without_a_rewrite(
    duck: Duck, tmp_path: Path
) -> None:
    path = tmp_path / "variants"
    write_delta(path, _rows("a.vcf", [("DP", pa.int32())], DP=1))
    write_delta(path, _rows("b.vcf", []).append_column("INFO_AF", pa.array([0.5])))
    assert commit_info(path, 1)["operationParameters"]["mode"] == "Append"
    assert _struct_widths(path) == [4, 4]  # delta-rs fills the missing field itself
    assert _calls(duck, path)[2:] == [("b.vcf", "S1", True, None), ("b.vcf", "S2", False, None)]


def test_a_table_whose_files_already_disagree_is_repaired_by_the_next_growth(
    duck: Duck, tmp_path: Path
) -> None:
    path = tmp_path / "variants"
    # Written as before this module existed: each append left its files on its own struct.
    write_deltalake(str(path), _rows("a.vcf", []))
    grown = _rows("b.vcf", [("DP", pa.int32())], DP=2)
    write_deltalake(str(path), grown, mode="append", schema_mode="merge")
    assert _struct_widths(path) == [3, 4]
    write_delta(path, _rows("c.vcf", [("DP", pa.int32()), ("GQ", pa.int32())], DP=5, GQ=9))
    assert _struct_widths(path) == [5]
    assert [(r[0], r[3]) for r in _calls(duck, path)] == [
        ("a.vcf", None),
        ("a.vcf", None),
        ("b.vcf", 2),
        ("b.vcf", 2),
        ("c.vcf", 5),
        ("c.vcf", 5),
    ]


VCF = """\
##fileformat=VCFv4.2
##contig=<ID=1,length=1000>
{formats}#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
1\t100\t.\tA\tG\t50\tPASS\t.\t{format}\t{sample}
"""
GT = '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
DP = '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">\n'


@pytest.mark.parametrize("second_run", [True, False], ids=["two runs", "one run"])
def test_vcfs_of_two_callers_read_back_through_delta_scan(
    duck: Duck, tmp_path: Path, second_run: bool
) -> None:
    """A VCF with GT only, then one with GT:DP: the genotypes struct grows between commits."""
    landing, lakehouse = tmp_path / "landing", tmp_path / "lake"
    landing.mkdir()
    vcf = textwrap.dedent(VCF)
    (landing / "a.vcf").write_text(vcf.format(formats=GT, format="GT", sample="0|1"))
    if second_run:
        IngestJob(GenomicsReader(), lakehouse, workers=1).run(landing)
    (landing / "b.vcf").write_text(vcf.format(formats=GT + DP, format="GT:DP", sample="1/1:12"))
    summary = IngestJob(GenomicsReader(), lakehouse, workers=1).run(landing)
    assert summary.records_quarantined == 0
    variants = scan(lakehouse / "bronze", "genomics_variants")
    rows = duck.query(
        "select regexp_extract(_source_file, '[ab][.]vcf'), g.phased, g.depth "
        f"from (select _source_file, unnest(genotypes) as g from {variants}) order by 1"
    )
    assert rows == [("a.vcf", True, None), ("b.vcf", False, 12)]
    assert len(set(_struct_widths(lakehouse / "bronze" / "genomics_variants"))) == 1
