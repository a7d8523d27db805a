"""The classification registry and column lineage built by the on-run-end hook."""

from __future__ import annotations

from tests.governance.conftest import Policy


def test_registry_covers_every_model_column_as_declared(warehouse, policy: Policy) -> None:
    registry = {
        (uid.split(".")[-1], col.lower()): (cls, declared)
        for uid, col, cls, declared in warehouse.execute(
            "select unique_id, column_name, classification, declared "
            "from governance.classification_registry where node_type = 'model'"
        ).fetchall()
    }
    for model, node in policy.models.items():
        for column in node["columns"]:
            expected = policy.column(model, column)[0]
            assert registry[(model, column.lower())][0] == expected, (model, column)
    for (model, column), (classification, declared) in registry.items():
        if not declared:
            assert classification == "phi", (model, column)  # undeclared: fail closed


def test_registry_has_sources_seeds_and_policy_columns(warehouse) -> None:
    kinds = dict(
        warehouse.execute(
            "select node_type, count(*) from governance.classification_registry group by 1"
        ).fetchall()
    )
    assert kinds.keys() >= {"model", "source", "seed"}
    bad = warehouse.execute(
        "select relation_name, column_name, classification from governance.classification_registry "
        "where not in_vocabulary or mask is null"
    ).fetchall()
    assert not bad


def test_column_lineage_carries_classification(warehouse) -> None:
    rows = warehouse.execute(
        """
        select upstream_unique_id, classification, upstream_classification
        from governance.column_lineage
        where unique_id = 'model.multimodal_lakehouse.stg_ehr__patients'
            and column_name = 'patient_key'
        """
    ).fetchall()
    assert rows == [] or all(r[1] and r[2] for r in rows)
    downstream = warehouse.execute(
        """
        select count(*) from governance.column_lineage
        where unique_id = 'model.multimodal_lakehouse.features_notes'
            and upstream_unique_id like 'model.%' and column_name = 'patient_key'
            and classification = 'study_id' and upstream_classification = 'study_id'
        """
    ).fetchone()[0]
    assert downstream >= 1
