"""PHI leakage and 28 CFR 202 through the consumer views of the local emulation.

Leakage is searched as values, not column names: every direct identifier a bronze table holds
for a patient (names, MRNs, FHIR patient ids, birth dates, addresses, phone numbers, and the
DICOM patient tags PatientName / PatientID / PatientBirthDate) must not appear, as a substring,
in any string value (lists and structs included, as text) a non-privileged principal can read -
notes entities included. Pseudonymous keys (classification study_id) are skipped: they are
64-hex hashes by construction and would only produce chance substring hits.
"""

from __future__ import annotations

import pytest

from tests.governance.conftest import Policy

# Direct identifiers of the patient in bronze: (relation, SQL expression giving the value).
IDENTIFIERS = [
    ("bronze.ehr_patients", "mrn"),
    ("bronze.ehr_patients", "id"),
    ("bronze.ehr_patients", "family"),
    ("bronze.ehr_patients", "given"),
    ("bronze.ehr_patients", "family || ', ' || given"),
    ("bronze.ehr_patients", "address_line"),
    ("bronze.ehr_patients", "phone"),
    ("bronze.ehr_patients", "strftime(birth_date, '%Y-%m-%d')"),
    ("bronze.notes", "patient_mrn"),
    ("bronze.genomics_samples", "patient_mrn"),
    ("bronze.wearables_enrollment", "patient_mrn"),
    ("bronze.imaging_instances", "patient_id"),
    (
        "bronze.imaging_instances",
        """json_extract_string(header_json, '$."00100010".Value[0].Alphabetic')""",
    ),
    ("bronze.imaging_instances", """json_extract_string(header_json, '$."00100030".Value[0]')"""),
]

NEEDLE_MIN_LENGTH = 4


def _needles(conn) -> int:
    parts = [
        f"select distinct '{rel}: {expr.replace(chr(39), chr(39) * 2)}' as source, "
        f"cast({expr} as varchar) as needle from {rel}"
        for rel, expr in IDENTIFIERS
    ]
    conn.execute(
        "create or replace temp table phi_needles as select * from ("
        + " union all ".join(parts)
        + f") where length(needle) >= {NEEDLE_MIN_LENGTH}"
    )
    return conn.execute("select count(*) from phi_needles").fetchone()[0]


def _haystack(conn, policy: Policy) -> int:
    """Distinct text of every readable non-key column of every consumer view, as the session's
    principal sees it (one scan per view: each view expands its mask functions once)."""
    conn.execute("create or replace temp table phi_haystack (location varchar, value varchar)")
    for view in sorted(policy.models):
        entries = [
            f"{{'c': '{name}', 'v': cast(\"{name}\" as varchar)}}"
            for name, dtype, *_ in conn.execute(f"describe consumer.{view}").fetchall()
            # Text, and lists/structs holding text (a float vector's digits are no PHI).
            if "VARCHAR" in dtype and policy.column(view, name)[0] != "study_id"
        ]
        if entries:
            conn.execute(
                f"""
                insert into phi_haystack
                select distinct '{view}.' || e.c, e.v
                from (select unnest([{", ".join(entries)}]) as e from consumer.{view})
                where e.v is not null
                """
            )
    return conn.execute("select count(*) from phi_haystack").fetchone()[0]


def test_phi_needles_are_real(governed) -> None:
    assert _needles(governed) > 500
    sources = {
        r[0].split(":")[0] for r in governed.execute("select source from phi_needles").fetchall()
    }
    assert {"bronze.ehr_patients", "bronze.imaging_instances", "bronze.notes"} <= sources


@pytest.mark.parametrize(
    "principal", ["researcher@mmlake.local", "ml@mmlake.local", "partner@partner.example"]
)
def test_no_phi_value_reaches_an_unprivileged_principal(
    governed, policy: Policy, principal
) -> None:
    assert principal in policy.unprivileged()
    _needles(governed)
    governed.execute("set variable mmlake_principal = ?", [principal])
    try:
        assert _haystack(governed, policy) > 0
    finally:
        governed.execute("reset variable mmlake_principal")
    leaks = governed.execute(
        """
        select h.location, n.source, n.needle, left(h.value, 120)
        from phi_haystack as h
        inner join phi_needles as n on contains(h.value, n.needle)
        order by 1, 2 limit 20
        """
    ).fetchall()
    assert not leaks, "\n".join(map(str, leaks))


def test_steward_sees_identifiers_so_the_search_can_find_them(governed, policy: Policy) -> None:
    """Control: the same search over a privileged principal's view does find identifiers."""
    _needles(governed)
    governed.execute("set variable mmlake_principal = 'steward@mmlake.local'")
    try:
        _haystack(governed, policy)
    finally:
        governed.execute("reset variable mmlake_principal")
    hits = governed.execute(
        "select count(*) from phi_haystack h join phi_needles n on h.value = n.needle"
    ).fetchone()[0]
    assert hits > 0


def test_genomic_views_return_no_rows_to_a_covered_person(governed, policy: Policy) -> None:
    partner = "partner@partner.example"
    assert policy.covered(partner)
    # Genomic = declared cfr202, classified genomic_28cfr202, or holding a genomic column.
    genomic = [
        view
        for view, node in policy.models.items()
        if "cfr202" in policy.row_filters(view)
        or any(policy.column(view, c)[0] == "genomic_28cfr202" for c in node["columns"])
    ]
    assert {"features_genomics", "stg_genomics__variants", "int_genomics__biomarkers"} <= set(
        genomic
    )
    counts = {}
    for principal in (partner, "steward@mmlake.local"):
        governed.execute("set variable mmlake_principal = ?", [principal])
        counts[principal] = {
            view: governed.execute(f"select count(*) from consumer.{view}").fetchone()[0]
            for view in genomic
        }
    governed.execute("reset variable mmlake_principal")
    assert not {v: n for v, n in counts[partner].items() if n}, "covered person sees genomic rows"
    assert counts["steward@mmlake.local"]["stg_genomics__variants"] > 0
