"""The Databricks Asset Bundle (databricks.yml + databricks/resources/*.yml), checked offline.

`databricks bundle validate` needs a workspace. What it would catch is checked here instead:
the bundle is resolved per target the way the CLI does (includes merged, `${var.*}` replaced
by target values or defaults), then every job, pipeline and cluster is loaded into the
databricks-sdk request dataclasses of the REST API the bundle deploys to. A round trip that
loses a key means the key is not part of the documented object (a typo, a wrong nesting).
On top: every file a resource names exists, every variable and resource reference resolves,
and the settings agree with the repository (dbt profile, layer schemas, pinned libraries).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from databricks.sdk.service import compute, jobs, pipelines

from mmlake.dbt_runner import REPO_ROOT

BUNDLE = REPO_ROOT / "databricks.yml"
VAR = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")
RESOURCE_REF = re.compile(r"\$\{resources\.(\w+)\.(\w+)\.\w+\}")
TASK_KINDS = {
    "spark_python_task",
    "python_wheel_task",
    "notebook_task",
    "dbt_task",
    "pipeline_task",
    "run_job_task",
    "sql_task",
    "spark_jar_task",
    "spark_submit_task",
    "condition_task",
    "for_each_task",
}
# Bundle-level keys of a resource that are not part of the REST object.
BUNDLE_ONLY_KEYS = {"permissions", "lifecycle"}


def load_bundle() -> tuple[dict[str, Any], dict[str, Path]]:
    """The merged bundle and, per resource, the file that defines it (paths are relative to it)."""
    root = yaml.safe_load(BUNDLE.read_text())
    origin: dict[str, Path] = {}
    resources: dict[str, dict[str, Any]] = {}
    for pattern in root.get("include", []):
        for path in sorted(REPO_ROOT.glob(pattern)):
            for kind, items in (yaml.safe_load(path.read_text()).get("resources") or {}).items():
                for name, body in items.items():
                    assert name not in resources.get(kind, {}), f"{kind}.{name} defined twice"
                    resources.setdefault(kind, {})[name] = body
                    origin[f"{kind}.{name}"] = path
    root["resources"] = resources
    return root, origin


BUNDLE_CONFIG, ORIGIN = load_bundle()
TARGETS = sorted(BUNDLE_CONFIG["targets"])


def resolve(value: Any, variables: dict[str, Any]) -> Any:
    """Replace ``${var.x}``: a whole-string reference keeps the variable's type, as the CLI does."""
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, str):
        whole = VAR.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return VAR.sub(lambda m: str(variables[m.group(1)]), value)
    return value


def target_variables(target: str) -> dict[str, Any]:
    values = {name: spec.get("default") for name, spec in BUNDLE_CONFIG["variables"].items()}
    values.update(BUNDLE_CONFIG["targets"][target].get("variables") or {})
    return values


def all_strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in all_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return [value] if isinstance(value, str) else []


def tasks() -> list[tuple[str, dict[str, Any]]]:
    return [
        (job, task)
        for job, body in BUNDLE_CONFIG["resources"]["jobs"].items()
        for task in body["tasks"]
    ]


def local_path(resource: str, relative: str) -> Path:
    return (ORIGIN[resource].parent / relative).resolve()


def test_bundle_defines_the_issue_resources() -> None:
    resources = BUNDLE_CONFIG["resources"]
    assert BUNDLE_CONFIG["bundle"]["name"] == "multimodal_lakehouse"
    assert {"ingest", "dbt_build", "ml", "lakehouse"} <= set(resources["jobs"])
    assert set(resources["pipelines"]) == {"wearables"}
    assert set(TARGETS) == {"dev", "prod"}
    assert BUNDLE_CONFIG["targets"]["dev"]["mode"] == "development"
    assert BUNDLE_CONFIG["targets"]["prod"]["mode"] == "production"
    # Unity Catalog placement is a bundle variable, and differs per target.
    assert {"catalog", "bronze_schema", "gold_schema"} <= set(BUNDLE_CONFIG["variables"])
    catalogs = {target_variables(t)["catalog"] for t in TARGETS}
    assert len(catalogs) == len(TARGETS)


def test_every_variable_used_is_declared_and_overrides_are_known() -> None:
    declared = set(BUNDLE_CONFIG["variables"])
    used = {m for s in all_strings(BUNDLE_CONFIG) for m in VAR.findall(s)}
    assert used <= declared, f"undeclared: {sorted(used - declared)}"
    assert declared <= used, f"declared but unused: {sorted(declared - used)}"
    for target in TARGETS:
        overrides = set(BUNDLE_CONFIG["targets"][target].get("variables") or {})
        assert overrides <= declared, f"{target} overrides unknown {overrides - declared}"
    for name, spec in BUNDLE_CONFIG["variables"].items():
        assert spec.get("description"), f"variable {name} has no description"
        assert "default" in spec, f"variable {name} has no default: validate would prompt"


def test_resource_references_resolve() -> None:
    resources = BUNDLE_CONFIG["resources"]
    refs = {m for s in all_strings(resources) for m in RESOURCE_REF.findall(s)}
    assert refs, "the orchestration job should reference the other resources"
    for kind, name in refs:
        assert name in resources.get(kind, {}), f"${{resources.{kind}.{name}}} does not exist"


@pytest.mark.parametrize("target", TARGETS)
def test_jobs_pipelines_and_clusters_are_valid_api_objects(target: str) -> None:
    resources = resolve(BUNDLE_CONFIG["resources"], target_variables(target))
    loaders = {
        "jobs": jobs.JobSettings,
        "pipelines": pipelines.PipelineSpec,
        "clusters": compute.ClusterSpec,
    }
    assert set(resources) <= set(loaders)
    for kind, items in resources.items():
        for name, body in items.items():
            body = {k: v for k, v in body.items() if k not in BUNDLE_ONLY_KEYS}
            assert loaders[kind].from_dict(body).as_dict() == body, f"{kind}.{name}"
    for job, body in resources["jobs"].items():
        for cluster in body.get("job_clusters", []):
            assert isinstance(cluster["new_cluster"]["num_workers"], int), job


def test_every_task_has_exactly_one_known_kind_and_valid_dependencies() -> None:
    for job, task in tasks():
        kinds = [key for key in task if key.endswith("_task")]
        assert len(kinds) == 1 and kinds[0] in TASK_KINDS, (job, task["task_key"], kinds)
    for job, body in BUNDLE_CONFIG["resources"]["jobs"].items():
        keys = [t["task_key"] for t in body["tasks"]]
        assert len(keys) == len(set(keys)), job
        clusters = {c["job_cluster_key"] for c in body.get("job_clusters", [])}
        for task in body["tasks"]:
            for dep in task.get("depends_on", []):
                assert dep["task_key"] in keys, (job, dep)
            if "job_cluster_key" in task:
                assert task["job_cluster_key"] in clusters, (job, task["task_key"])


def test_files_named_by_resources_exist() -> None:
    artifact = BUNDLE_CONFIG["artifacts"]["mmlake"]
    assert (REPO_ROOT / artifact["path"] / "pyproject.toml").is_file()
    wheel_dir = artifact["build"].split("--wheel-dir", 1)[1].split()[0]
    for job, task in tasks():
        resource = f"jobs.{job}"
        if "spark_python_task" in task:
            assert local_path(resource, task["spark_python_task"]["python_file"]).is_file()
        for library in task.get("libraries", []):
            if "whl" in library:
                # The wheel is the artifact's build output, which deploy substitutes.
                whl = local_path(resource, library["whl"])
                assert whl.parent == (REPO_ROOT / wheel_dir).resolve(), whl
                assert whl.name.endswith(".whl")


def test_pipeline_points_at_the_wearables_definition() -> None:
    (library,) = BUNDLE_CONFIG["resources"]["pipelines"]["wearables"]["libraries"]
    path = local_path("pipelines.wearables", library["file"]["path"])
    assert path == REPO_ROOT / "pipelines" / "wearables" / "wearables_pipeline.py"
    assert path.is_file(), "pipelines/wearables/wearables_pipeline.py (the pipeline) is missing"


def test_dbt_task_builds_the_repository_project_on_the_databricks_target() -> None:
    ((job, task),) = [(j, t) for j, t in tasks() if "dbt_task" in t]
    dbt = task["dbt_task"]
    project = local_path(f"jobs.{job}", dbt["project_directory"])
    assert project == REPO_ROOT
    assert (project / "dbt_project.yml").is_file()
    profiles = project / dbt["profiles_directory"] / "profiles.yml"
    outputs = yaml.safe_load(profiles.read_text())["multimodal_lakehouse"]["outputs"]
    assert outputs["databricks"]["type"] == "databricks"
    assert dbt["warehouse_id"] == "${var.warehouse_id}"
    assert dbt["catalog"] == "${var.catalog}"
    commands = [" ".join(c.split()) for c in dbt["commands"]]
    assert commands[-1].startswith("dbt build --target databricks")
    assert commands[0].startswith("dbt seed --target databricks --select path:seeds/governance")
    # The profile reads its connection from these variables; the job cluster sets each one.
    wanted = set(re.findall(r"env_var\('(DATABRICKS_\w+)'", profiles.read_text()))
    cluster = BUNDLE_CONFIG["resources"]["jobs"][job]["job_clusters"][0]["new_cluster"]
    env = cluster["spark_env_vars"]
    assert wanted <= set(env), wanted - set(env)
    assert env["MMLAKE_TARGET"] == "databricks"
    assert env["DATABRICKS_TOKEN"].startswith("{{secrets/"), "the token comes from a secret"
    # The dbt vars naming the pseudonym secret follow the bundle's variables.
    for command in commands:
        assert "pseudonym_secret_scope: ${var.pseudonym_secret_scope}" in command
    packages = [lib["pypi"]["package"] for lib in task["libraries"]]
    assert packages == [f"dbt-databricks=={pinned('spark.txt', 'dbt-databricks')}"]


def test_layer_schemas_match_dbt() -> None:
    project = yaml.safe_load((REPO_ROOT / "dbt_project.yml").read_text())
    models = project["models"]["multimodal_lakehouse"]
    defaults = target_variables("dev")
    assert models["silver"]["+schema"] == "silver"
    assert defaults["gold_schema"] == models["gold"]["+schema"]
    assert defaults["bronze_schema"] == project["seeds"]["multimodal_lakehouse"]["+schema"]
    assert defaults["pseudonym_secret_scope"] == project["vars"]["pseudonym_secret_scope"]
    assert defaults["pseudonym_secret_key"] == project["vars"]["pseudonym_secret_key"]


def pinned(requirements: str, package: str) -> str:
    text = (REPO_ROOT / "requirements" / requirements).read_text()
    match = re.search(rf"^{re.escape(package)}==(\S+)", text, re.MULTILINE)
    assert match, f"{package} not pinned in requirements/{requirements}"
    return match.group(1)


def test_glow_and_medspacy_libraries() -> None:
    variables = target_variables("prod")
    group, artifact, version = variables["glow_coordinates"].split(":")
    assert group == "io.projectglow"
    # The Scala binary version of the Glow artifact must be the runtime's.
    scala = re.fullmatch(r"glow-spark4_(2\.1[23])", artifact)
    assert scala and variables["spark_version"].endswith(f"-scala{scala.group(1)}")
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    genomics = next(t for _, t in tasks() if t["task_key"] == "ingest_genomics")
    assert {"maven": {"coordinates": "${var.glow_coordinates}"}} in genomics["libraries"]
    assert variables["medspacy_requirement"] == f"medspacy=={pinned('nlp-nodeps.txt', 'medspacy')}"


def test_ml_job_uses_the_documented_mlflow_environment() -> None:
    cluster = BUNDLE_CONFIG["resources"]["jobs"]["ml"]["job_clusters"][0]["new_cluster"]
    env = resolve(cluster["spark_env_vars"], target_variables("prod"))
    assert env["MLFLOW_TRACKING_URI"] == "databricks"
    assert env["MLFLOW_REGISTRY_URI"] == "databricks-uc"
    assert env["MMLAKE_UC_MODEL_NAME"] == "precision_medicine.gold.multimodal_fusion"
    ml_doc = (REPO_ROOT / "docs" / "ml.md").read_text()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MMLAKE_UC_MODEL_NAME"):
        assert name in ml_doc
    keys = [t["task_key"] for t in BUNDLE_CONFIG["resources"]["jobs"]["ml"]["tasks"]]
    assert keys == ["train", "score"]


def entry_point(name: str) -> ModuleType:
    path = REPO_ROOT / "databricks" / "jobs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bundle_jobs_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def job_parameters(job: str, task: dict[str, Any]) -> list[str]:
    """The task's arguments as the job passes them, job parameters filled with defaults."""
    variables = target_variables("dev")
    defaults = {
        p["name"]: resolve(p["default"], variables)
        for p in BUNDLE_CONFIG["resources"]["jobs"][job].get("parameters", [])
    }
    args = resolve(task["spark_python_task"]["parameters"], variables)
    return [
        re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: defaults[m.group(1)], a) for a in args
    ]


def test_entry_points_accept_the_arguments_the_jobs_pass() -> None:
    seen = set()
    for job, task in tasks():
        if "spark_python_task" not in task:
            continue
        module = entry_point(Path(task["spark_python_task"]["python_file"]).stem)
        args = module.parse_args(job_parameters(job, task))
        assert args.catalog == "mmlake_dev"
        seen.add(getattr(args, "modality", None) or args.action)
    assert seen == {"ehr", "genomics", "imaging", "notes", "wearables", "train", "score"}


def test_ingest_publishes_the_modality_tables_and_the_ledger(tmp_path: Path) -> None:
    module = entry_point("ingest")
    for name in ("ehr_patients", "ehr_conditions", "notes", "wearables_events", "_ingest_log"):
        (tmp_path / name / "_delta_log").mkdir(parents=True)
    (tmp_path / "_staging").mkdir()  # not a Delta table
    assert module.landed_tables(tmp_path, "ehr") == [
        "_ingest_log",
        "ehr_conditions",
        "ehr_patients",
    ]
    assert module.landed_tables(tmp_path, "notes") == ["_ingest_log", "notes"]
    assert module.quoted("main", "bronze", "_ingest_log") == "`main`.`bronze`.`_ingest_log`"
