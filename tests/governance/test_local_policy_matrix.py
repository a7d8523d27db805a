"""Policy matrix of the local emulation: every principal x every consumer view x every column.

The expectation is computed from the seeds and the manifest meta (tests/governance/conftest.py),
not from the macros: for each column the visible value must be the full value, the masked form
named by its meta (or the classification's default mask), or null, on exactly the rows the
model's row filters let through for that principal.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.governance.conftest import Policy, visible_keys

PRINCIPALS = [
    "steward@mmlake.local",
    "oncologist@mmlake.local",
    "researcher@mmlake.local",
    "ml@mmlake.local",
    "partner@partner.example",
    "fellow@mmlake.local",
]


def _family(dtype: str) -> str:
    t = dtype.upper().strip()
    if t == "VARCHAR":
        return "string"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP") and not t.endswith("]"):
        return "timestamp"
    return "other"


def expected_expression(column: str, dtype: str, access: str, mask: str) -> str:
    """The documented visible form of a column (docs/governance.md, 'Masks')."""
    col = f'base."{column}"'
    if access == "full":
        return col
    if access == "denied":
        return "null"
    family = _family(dtype)
    forms = {
        ("string", "redact"): "'[REDACTED]'",
        ("string", "hash"): f"sha256({col})",
        ("string", "last4"): f"'***' || right({col}, 4)",
        ("string", "year_only"): f"left({col}, 4)",
        ("date", "year_only"): f"make_date(year({col}), 1, 1)",
        ("timestamp", "year_only"): f"date_trunc('year', {col})",
    }
    return forms.get((family, mask), "null")


def test_seeds_name_the_principals_under_test(policy: Policy) -> None:
    assert sorted(PRINCIPALS) == policy.principals


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_policy_matrix(governed, policy: Policy, principal: str) -> None:
    views = [
        r[0]
        for r in governed.execute(
            "select view_name from duckdb_views() where schema_name = 'consumer' order by 1"
        ).fetchall()
    ]
    assert set(policy.models) <= set(views), "every silver/gold model has a consumer view"
    governed.execute("set variable mmlake_principal = ?", [principal])
    problems = []
    for view in views:
        node = policy.models[view]
        base = f"{node['config']['schema']}.{view}"
        described = governed.execute(f"describe {base}").fetchall()
        columns = [(r[0], r[1]) for r in described]
        filters = policy.row_filters(view)
        names = {c.lower() for c, _ in columns}
        where = ["true"]
        if "cfr202" in filters and policy.covered(principal):
            where.append("false")
        if filters & {"consent", "study"}:
            if "patient_key" not in names:
                where.append("false")
            else:
                keys = visible_keys(governed, policy, principal, filters)
                if keys is not None:
                    governed.register("allowed_keys", pa.table({"k": sorted(keys)}))
                    where.append("base.patient_key in (select k from allowed_keys)")
        select = ", ".join(
            f'{expected_expression(c, t, *_access_mask(policy, principal, view, c))} as "{c}"'
            for c, t in columns
        )
        expected = f"select {select} from {base} as base where {' and '.join(where)}"
        n_expected, n_actual, missing, extra = governed.execute(
            f"""
            with e as ({expected}), a as (select * from consumer.{view})
            select (select count(*) from e), (select count(*) from a),
                (select count(*) from (select * from e except all select * from a)),
                (select count(*) from (select * from a except all select * from e))
            """
        ).fetchone()
        if (n_expected, missing, extra) != (n_actual, 0, 0):
            problems.append(
                f"{view}: expected {n_expected} rows, got {n_actual}; "
                f"{missing} expected rows missing, {extra} unexpected"
            )
    governed.execute("reset variable mmlake_principal")
    assert not problems, f"{principal}:\n" + "\n".join(problems)


def _access_mask(policy: Policy, principal: str, view: str, column: str) -> tuple[str, str]:
    classification, mask = policy.column(view, column)
    return policy.access(principal, classification), mask


def test_filters_and_masks_bite(governed) -> None:
    """The matrix is not vacuous: a researcher gets fewer rows and redacted names."""
    seen = {}
    for principal in ("steward@mmlake.local", "researcher@mmlake.local"):
        governed.execute("set variable mmlake_principal = ?", [principal])
        seen[principal] = governed.execute(
            "select count(*), count(distinct family_name), max(family_name) "
            "from consumer.stg_ehr__patient_identifiers"
        ).fetchone()
    governed.execute("reset variable mmlake_principal")
    steward, researcher = seen["steward@mmlake.local"], seen["researcher@mmlake.local"]
    assert 0 < researcher[0] < steward[0]
    assert steward[1] > 1
    assert researcher[1:] == (1, "[REDACTED]")


def test_no_principal_no_rows(governed) -> None:
    governed.execute("reset variable mmlake_principal")
    for (view,) in governed.execute(
        "select view_name from duckdb_views() where schema_name = 'consumer'"
    ).fetchall():
        assert governed.execute(f"select count(*) from consumer.{view}").fetchone()[0] == 0, view
