"""The classification coverage check (macros/governance/coverage.sql) passes on the repository
and fails, naming node.column, on a copy of the project with one broken declaration.

Every check runs dbt for real (`run-operation assert_classification_coverage`) against a
throwaway lakehouse, so what is tested is what the on-run-start hook does in a build. Copies
hold only what dbt reads (project, profiles, models, macros, seeds, data tests), which keeps
them small; the repository itself is never edited.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

from mmlake.dbt_runner import dbt_env
from mmlake.delta import write_delta
from mmlake.duckdb_ext import load_bundled_extensions

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).with_name("dbt")
PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "data_tests")
CHECK = ["run-operation", "assert_classification_coverage"]


def run_dbt(project: Path, lakehouse: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run dbt on `project` with its own lakehouse, target and log folders; never raises."""
    env = {**os.environ, **dbt_env(lakehouse=lakehouse)}
    env["DBT_PROJECT_DIR"] = str(project)
    env["DBT_PROFILES_DIR"] = str(project)
    return subprocess.run(
        [str(DBT), *args], env=env, cwd=project, capture_output=True, text=True, check=False
    )


def copy_project(destination: Path) -> Path:
    """A copy of the dbt project that a test may break without touching the repository."""
    destination.mkdir(parents=True)
    for part in PROJECT_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, destination / part)
        elif source.exists():
            shutil.copy2(source, destination / part)
    return destination


def column_line(yml: Path, node: str, column: str, key: str) -> int:
    """Index of the `key:` line of `column` in the YAML entry of `node` (text, not YAML, so the
    edit keeps the file exactly as it was apart from that line)."""
    lines = yml.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- name: {node}")
    col = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == f"- name: {column}")
    for i in range(col + 1, len(lines)):
        if lines[i].strip().startswith("- name:"):
            break
        if lines[i].strip().startswith(f"{key}:"):
            return i
    raise AssertionError(f"{node}.{column} has no {key} in {yml}")


def edit_line(yml: Path, index: int, new: str | None) -> None:
    """Replace (or drop, when `new` is None) one line of a YAML file."""
    lines = yml.read_text(encoding="utf-8").splitlines()
    if new is None:
        del lines[index]
    else:
        lines[index] = new
    yml.write_text("\n".join(lines) + "\n", encoding="utf-8")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def test_vocabulary_default_is_the_seed() -> None:
    """The hook cannot read the CSV on a fresh build, so its default list must equal it."""
    macro = (REPO_ROOT / "macros/governance/coverage.sql").read_text(encoding="utf-8")
    block = re.search(r"var\('governance_classifications', \[(.*?)\]\)", macro, re.S)
    assert block is not None
    in_macro = re.findall(r"'([^']+)'", block.group(1))
    with (REPO_ROOT / "seeds/governance/classifications.csv").open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: -int(row["sensitivity_rank"]))
    # Same labels, most sensitive first (the check ranks a model's columns by list order).
    assert in_macro == [row["classification"] for row in rows]


HOOK = '  - "{{ multimodal_lakehouse.assert_classification_coverage() }}"'


def add_coverage_hook(project: Path) -> None:
    """Wire the check into on-run-start right after the bronze registration, as the project
    does (the check compares bronze relations' real columns, so they must exist first)."""
    config = project / "dbt_project.yml"
    text = config.read_text(encoding="utf-8")
    if "assert_classification_coverage" in text:
        return
    anchor = '  - "{{ multimodal_lakehouse.register_bronze_sources() }}"\n'
    assert anchor in text
    config.write_text(text.replace(anchor, anchor + HOOK + "\n"), encoding="utf-8")


def test_coverage_passes_on_the_repository(tmp_path: Path) -> None:
    """The repository's declaration passes, as an on-run-start hook and as a run-operation:
    declared columns all classified; real columns of the seeds and of the bronze relations
    (empty typed views on a fresh lakehouse) all declared; the loaded vocabulary agrees.

    The governance seeds are left out of `dbt seed`: governance_setup (on-run-start) creates
    them from their CSVs on the local target, which is all the vocabulary cross-check needs.
    """
    project = copy_project(tmp_path / "project")
    add_coverage_hook(project)
    lakehouse = tmp_path / "lakehouse"
    for args in (["seed", "--exclude", "path:seeds/governance"], CHECK):
        result = run_dbt(project, lakehouse, args)
        assert result.returncode == 0, output(result)
        counted = re.search(
            r"Classification coverage: (\d+) columns of (\d+) nodes", output(result)
        )
        assert counted is not None, output(result)
        assert int(counted.group(1)) > 1000
        assert int(counted.group(2)) > 70


def test_coverage_fails_naming_each_broken_column(tmp_path: Path) -> None:
    """One copy, four independent breakages (one dbt run keeps the suite fast): a column
    whose classification is removed, one set to 'secret', one with an unknown mask, and a
    model whose own classification is not its most sensitive column's."""
    project = copy_project(tmp_path / "project")
    gold = project / "models/gold/ehr/_ehr__models.yml"
    edit_line(gold, column_line(gold, "outcomes", "label", "meta"), None)
    index_date = column_line(gold, "outcomes", "index_date", "meta")
    edit_line(gold, index_date, "        meta: {classification: phi, mask: scramble}")
    silver = project / "models/silver/wearables/_wearables__models.yml"
    metric = column_line(silver, "stg_wearables__events", "metric", "meta")
    edit_line(silver, metric, "        meta: {classification: secret}")
    reference = project / "models/gold/reference/_reference__models.yml"
    text = reference.read_text(encoding="utf-8")
    assert text.count("        classification: public\n") == 1
    reference.write_text(
        text.replace("        classification: public\n", "        classification: clinical\n"),
        encoding="utf-8",
    )
    result = run_dbt(project, tmp_path / "lakehouse", CHECK)
    assert result.returncode != 0, output(result)
    text = output(result)
    assert "Classification coverage failed (4 problems)" in text
    assert "model gene_panel: model classification 'clinical' is not its most sensitive" in text
    assert "model outcomes.label: no meta.classification" in text
    assert (
        "model stg_wearables__events.metric: classification 'secret' is not in the vocabulary"
        in text
    )
    assert "model outcomes.index_date: mask 'scramble' is not one of" in text


def test_coverage_fails_on_an_undeclared_real_column(tmp_path: Path) -> None:
    """A built relation with a column its YAML does not list (a silver model without a contract
    selecting more than it documents) fails the coverage check, and the model's post-hook
    fails its (re)build - which dbt then rolls back (the post-hook is wired in dbt_project.yml)."""
    project = copy_project(tmp_path / "project")
    assert "assert_model_columns_classified" in (project / "dbt_project.yml").read_text()
    lakehouse = tmp_path / "lakehouse"
    model = ["--select", "+stg_reference__gene_panel_regions", "--exclude", "resource_type:test"]
    built = run_dbt(project, lakehouse, ["build", *model])
    assert built.returncode == 0, output(built)
    yml = project / "models/silver/reference/_reference__models.yml"
    text = yml.read_text(encoding="utf-8")
    entry = re.search(r"\n      - name: hgnc_id\n(?:        .*\n)*", text)
    assert entry is not None
    yml.write_text(text.replace(entry.group(0), "\n"), encoding="utf-8")
    expected = "model stg_reference__gene_panel_regions.hgnc_id: column of"
    checked = run_dbt(project, lakehouse, CHECK)
    assert checked.returncode != 0, output(checked)
    assert expected in output(checked)
    rebuilt = run_dbt(project, lakehouse, ["build", *model])
    assert rebuilt.returncode != 0, output(rebuilt)
    assert expected in output(rebuilt)


def test_dynamic_columns_classify_a_bronze_tables_input_driven_columns(tmp_path: Path) -> None:
    """Bronze columns that follow their input (a VCF header's INFO_* fields, a device's new
    payload fields) are classified by the source's `meta.dynamic_columns` prefixes; any other
    undeclared column still fails, and so does an entry naming an unknown classification."""
    project = copy_project(tmp_path / "project")
    lakehouse = tmp_path / "lakehouse"
    bronze = lakehouse / "bronze"
    write_delta(
        bronze / "genomics_variants",
        pa.table({"contigName": ["chr1"], "INFO_gnomAD_AF": [0.1], "surprise": ["x"]}),
    )
    write_delta(bronze / "wearables_events", pa.table({"event_id": ["e1"], "hrv_rmssd": [41.0]}))
    # Outside a build the bronze views come from the hook's macro, run as an operation.
    registered = run_dbt(project, lakehouse, ["run-operation", "register_bronze_sources"])
    assert registered.returncode == 0, output(registered)
    with duckdb.connect(str(lakehouse / "warehouse.duckdb"), read_only=True) as conn:
        load_bundled_extensions(conn)
        seen = conn.execute("describe bronze.wearables_events").fetchall()
    assert "hrv_rmssd" in [row[0] for row in seen]  # the check does look at this relation
    first = run_dbt(project, lakehouse, CHECK)
    assert first.returncode != 0, output(first)
    assert "Classification coverage failed (1 problems)" in output(first)
    assert "source genomics.variants.surprise: column of" in output(first)

    sources = project / "models/bronze/wearables/_wearables__sources.yml"
    text = sources.read_text(encoding="utf-8")
    entry = '            - {prefix: "", classification: phi}\n'
    assert text.count(entry) == 1
    sources.write_text(text.replace(entry, entry.replace("phi", "secret")), encoding="utf-8")

    result = run_dbt(project, lakehouse, CHECK)
    assert result.returncode != 0, output(result)
    text = output(result)
    assert "Classification coverage failed (2 problems)" in text
    assert 'source genomics.variants.surprise: column of "warehouse"."bronze"' in text
    assert "source wearables.events: dynamic_columns entry" in text
    assert "INFO_gnomAD_AF" not in text and "hrv_rmssd" not in text
