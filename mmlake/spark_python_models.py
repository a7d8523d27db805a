"""Build the whole dbt graph on the ``spark`` target, Python models included.

dbt-spark runs Python models only by submitting them to a Databricks cluster; with
``method: session`` (the local Spark session of profiles.yml) it raises instead. This bridge
keeps dbt in charge of everything it can do and runs only the Python models itself, in the
SparkSession dbt-spark created in this very process:

1. ``dbt build --exclude <python models>+`` - every SQL model, seed and test that does not
   depend on a Python model;
2. ``dbt compile --select <python models>`` - dbt renders each model with its generated
   ``dbtObj``/``ref``/``source``/``config`` code (target/compiled/.../<model>.py), exactly the
   script dbt-spark would submit to a cluster;
3. each compiled script is executed with ``spark`` bound to the active session: ``df =
   model(dbtObj(spark.table), spark)`` is written with ``saveAsTable`` as
   ``<schema>.<alias>`` in the ``file_format`` of the model (default: var
   ``spark_file_format``), as dbt-spark's ``py_write_table`` does; the table's columns must
   all be declared in the model's YAML (the rule of the ``assert_model_columns_classified``
   post-hook, which dbt cannot run for it here);
4. ``dbt test --select <python models> --indirect-selection buildable`` - their own tests;
5. ``dbt build --select <children>+`` - everything downstream of them.

Every bridged model is printed and recorded in
``<lakehouse>/dbt/target/spark_bridge_results.json`` with the dbt results of all steps, so
nothing is skipped silently. Run it as::

    python -m mmlake.spark_python_models build --target spark [dbt args, e.g. --vars ...]

The extra dbt args are passed to every step, so they must be global ones (``--vars``,
``--full-refresh``...), not node selection: the bridge selects the nodes of each step itself.

Limits (docs/targets.md): table materialization only (no incremental, no views), no contract
enforcement or model hooks for the bridged models, and a Python model may not depend on a SQL
model that itself depends on another Python model (the graph is cut once).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmlake.dbt_runner import REPO_ROOT, DbtRunError, dbt_env, run_dbt

BRIDGE_RESULTS = "spark_bridge_results.json"
_BUILDABLE = {"model", "seed", "snapshot"}


@dataclass
class BridgedModel:
    """One Python model the bridge ran itself, for the build log and the results file."""

    unique_id: str
    relation: str
    file_format: str
    rows: int
    seconds: float


@dataclass
class BridgeReport:
    """What the whole-graph Spark build did: dbt's node results and the bridged models."""

    dbt_results: list[dict[str, str]] = field(default_factory=list)
    python_models: list[BridgedModel] = field(default_factory=list)


def _target_dir(lakehouse: Path | None) -> Path:
    return Path(dbt_env(lakehouse=lakehouse)["DBT_TARGET_PATH"])


def _manifest(lakehouse: Path | None) -> dict[str, Any]:
    path = _target_dir(lakehouse) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _python_models(manifest: dict[str, Any]) -> list[str]:
    """Unique ids of the Python models, parents before children."""
    nodes = manifest["nodes"]
    python = {
        uid
        for uid, node in nodes.items()
        if node["resource_type"] == "model" and node.get("language") == "python"
    }
    ordered: list[str] = []

    def visit(uid: str) -> None:
        if uid in ordered:
            return
        for parent in nodes[uid]["depends_on"]["nodes"]:
            if parent in python:
                visit(parent)
        ordered.append(uid)

    for uid in sorted(python):
        visit(uid)
    return ordered


def _check_single_cut(manifest: dict[str, Any], python: Sequence[str]) -> None:
    """Refuse graphs where SQL models sit between two Python models.

    Step 1 builds nothing downstream of a Python model and step 5 everything, so a Python
    model whose input is a SQL descendant of another Python model would run before its input.
    """
    nodes, children = manifest["nodes"], manifest["child_map"]
    for uid in python:
        stack = [c for c in children.get(uid, []) if nodes.get(c, {}).get("language") != "python"]
        seen: set[str] = set()
        while stack:
            child = stack.pop()
            if child in seen or child not in nodes:
                continue
            seen.add(child)
            for grandchild in children.get(child, []):
                if grandchild in python:
                    raise DbtRunError(
                        f"{grandchild} depends on {uid} through the SQL model {child}; "
                        "the Spark bridge cuts the graph only once (docs/targets.md)"
                    )
                stack.append(grandchild)


def _sql_children(manifest: dict[str, Any], python: Sequence[str]) -> list[str]:
    """Names of the buildable, non-Python nodes that read a Python model directly."""
    nodes = manifest["nodes"]
    names = set()
    for uid in python:
        for child in manifest["child_map"].get(uid, []):
            node = nodes.get(child)
            if node and node["resource_type"] in _BUILDABLE and child not in python:
                names.add(node["name"])
    return sorted(names)


def _file_format(node: dict[str, Any], dbt_args: Sequence[str]) -> str:
    """The model's file_format, else var spark_file_format (--vars first, then the project)."""
    configured = node["config"].get("file_format")
    if configured:
        return str(configured)
    args = list(dbt_args)
    if "--vars" in args and args.index("--vars") + 1 < len(args):
        cli_vars = yaml.safe_load(args[args.index("--vars") + 1]) or {}
        if "spark_file_format" in cli_vars:
            return str(cli_vars["spark_file_format"])
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    return str((project.get("vars") or {}).get("spark_file_format", "parquet"))


def _to_spark_frame(df: Any, spark: Any) -> Any:
    """Accept what dbt-spark accepts from model(): Spark, pandas-on-Spark or pandas frames."""
    from pyspark.sql import DataFrame

    if isinstance(df, DataFrame):
        return df
    if hasattr(df, "to_spark"):  # pandas-on-Spark
        return df.to_spark()
    if type(df).__module__.startswith("pandas"):
        return spark.createDataFrame(df)
    raise DbtRunError(f"{type(df)} is not a supported type for a dbt Python model on Spark")


def _run_python_model(node: dict[str, Any], target_dir: Path, file_format: str) -> BridgedModel:
    """Execute one compiled Python model in the active SparkSession and save its table."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    compiled = target_dir / "compiled" / node["package_name"] / node["original_file_path"]
    code = compiled.read_text(encoding="utf-8")
    started = time.perf_counter()
    namespace: dict[str, Any] = {"__name__": f"dbt_python_model_{node['name']}", "spark": spark}
    # The script dbt rendered for this model, as dbt-spark would submit it to a cluster.
    exec(compile(code, str(compiled), "exec"), namespace)
    df = _to_spark_frame(namespace["model"](namespace["dbtObj"](spark.table), spark), spark)
    relation = f"{node['schema']}.{node['alias']}"
    undeclared = sorted(
        c for c in df.columns if c.lower() not in {k.lower() for k in node["columns"]}
    )
    if undeclared:
        raise DbtRunError(
            f"{node['unique_id']}: columns {undeclared} are not declared in YAML, so not classified"
        )
    spark.sql(f"create schema if not exists {node['schema']}")
    (
        df.write.mode("overwrite")
        .format(file_format)
        .option("overwriteSchema", "true")
        .saveAsTable(relation)
    )
    rows = spark.table(relation).count()
    return BridgedModel(
        node["unique_id"], relation, file_format, rows, round(time.perf_counter() - started, 1)
    )


def _collect(report: BridgeReport, lakehouse: Path | None, step: str) -> None:
    path = _target_dir(lakehouse) / "run_results.json"
    for result in json.loads(path.read_text(encoding="utf-8"))["results"]:
        report.dbt_results.append(
            {"step": step, "unique_id": result["unique_id"], "status": result["status"]}
        )


def build_on_spark(
    dbt_args: Sequence[str] = (), lakehouse: Path | None = None, target: str = "spark"
) -> BridgeReport:
    """Build every node on ``target`` (a dbt-spark session target), Python models included.

    Must run in the process that owns the SparkSession, i.e. not next to another Spark
    session with other settings. Raises :class:`DbtRunError` on the first failing step.
    """
    extra = list(dbt_args)
    report = BridgeReport()
    run_dbt(["parse", *extra], target=target, lakehouse=lakehouse)
    manifest = _manifest(lakehouse)
    python = _python_models(manifest)
    names = [manifest["nodes"][uid]["name"] for uid in python]
    if not python:
        run_dbt(["build", *extra], target=target, lakehouse=lakehouse)
        _collect(report, lakehouse, "build")
        return _finish(report, lakehouse)
    _check_single_cut(manifest, python)
    print(f"spark bridge: Python models run outside dbt: {', '.join(names)}", flush=True)

    run_dbt(
        ["build", "--exclude", *(f"{n}+" for n in names), *extra],
        target=target,
        lakehouse=lakehouse,
    )
    _collect(report, lakehouse, "build upstream")
    run_dbt(["compile", "--select", *names, *extra], target=target, lakehouse=lakehouse)
    manifest = _manifest(lakehouse)
    for uid in python:
        node = manifest["nodes"][uid]
        bridged = _run_python_model(node, _target_dir(lakehouse), _file_format(node, extra))
        report.python_models.append(bridged)
        print(
            f"spark bridge: built {bridged.relation} from {uid} in the dbt SparkSession "
            f"({bridged.rows} rows, {bridged.file_format}, {bridged.seconds} s)",
            flush=True,
        )
    run_dbt(
        ["test", "--select", *names, "--indirect-selection", "buildable", *extra],
        target=target,
        lakehouse=lakehouse,
    )
    _collect(report, lakehouse, "test python models")
    children = _sql_children(manifest, python)
    if children:
        run_dbt(
            ["build", "--select", *(f"{c}+" for c in children), *extra],
            target=target,
            lakehouse=lakehouse,
        )
        _collect(report, lakehouse, "build downstream")
    return _finish(report, lakehouse)


def _finish(report: BridgeReport, lakehouse: Path | None) -> BridgeReport:
    """Write the combined results next to dbt's own run_results.json."""
    path = _target_dir(lakehouse) / BRIDGE_RESULTS
    path.write_text(json.dumps(asdict(report), indent=2), encoding="utf-8")
    models = sum(1 for r in report.dbt_results if r["unique_id"].startswith("model."))
    print(
        f"spark bridge: {models} models built by dbt, {len(report.python_models)} Python "
        f"models by the bridge; results in {path}",
        flush=True,
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmlake.spark_python_models build [--target spark] [dbt args]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "build":
        print(__doc__, file=sys.stderr)
        return 2
    args = args[1:]
    target = "spark"
    if "--target" in args:
        at = args.index("--target")
        target = args[at + 1] if at + 1 < len(args) else ""
        del args[at : at + 2]
    try:
        build_on_spark(args, target=target)
    except DbtRunError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
