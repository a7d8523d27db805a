"""note_entities: clinical concepts found in the notes, with their assertion status.

Runs the medspaCy pipeline of ``mmlake.nlp`` (lexicons = the seeds in seeds/notes) over the
bronze view ``brz_notes__keyed_text``. The text is read inside the engine's process and only
the matched spans leave it: a span such as "shortness of breath" or "ECOG 2" is a clinical
concept, not an identifier, and the pipeline drops anything found on identification lines
(banner, signature, institution names), so no PHI category is ever emitted.

On DuckDB (dbt-duckdb runs Python models in-process) the relation comes back as Arrow; on
Spark/Databricks as a Spark DataFrame (the cluster needs requirements/nlp*.txt installed).
"""

from __future__ import annotations

from typing import Any


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("note_key", pa.string()),
            ("patient_key", pa.string()),
            ("note_type", pa.string()),
            ("note_date", pa.date32()),
            ("entity_text", pa.string()),
            ("concept", pa.string()),
            ("category", pa.string()),
            ("concept_class", pa.string()),
            ("code_system", pa.string()),
            ("code", pa.string()),
            ("value", pa.string()),
            ("negated", pa.bool_()),
            ("uncertain", pa.bool_()),
            ("historical", pa.bool_()),
            ("hypothetical", pa.bool_()),
            ("family", pa.bool_()),
            ("section", pa.string()),
            ("start_char", pa.int32()),
            ("end_char", pa.int32()),
            ("rule_id", pa.string()),
        ]
    )


def _notes(relation: Any) -> list[dict[str, Any]]:
    """Rows of the keyed-text relation, whichever engine produced it."""
    if hasattr(relation, "toPandas"):  # Spark / Databricks DataFrame
        return relation.toPandas().to_dict("records")
    data = relation.arrow()  # a Table, or a RecordBatchReader on recent DuckDB versions
    return (data.read_all() if hasattr(data, "read_all") else data).to_pylist()


def model(dbt: Any, session: Any) -> Any:
    dbt.config(materialized="table")
    import pyarrow as pa

    from mmlake.nlp import extract_entities

    notes = _notes(dbt.ref("brz_notes__keyed_text"))
    meta = {n["note_key"]: n for n in notes}
    triples = [
        (n["note_key"], n["text"], n["note_date"])
        for n in notes
        if n["text"] and n["text"].strip() and n["patient_key"]
    ]
    rows = extract_entities(triples)
    for row in rows:
        note = meta[row.pop("note_id")]
        row["note_key"] = note["note_key"]
        row["patient_key"] = note["patient_key"]
        row["note_type"] = note["note_type"]
    schema = _arrow_schema()
    table = pa.Table.from_pylist(rows, schema=schema)
    if hasattr(session, "createDataFrame"):  # Spark: hand back a Spark DataFrame
        from pyspark.sql.pandas.types import from_arrow_schema

        # The schema is given, not inferred: Spark cannot infer one from zero rows (a cohort
        # without notes), and inference would widen int32 offsets to bigint.
        return session.createDataFrame(table.to_pandas(), schema=from_arrow_schema(schema))
    return table
