"""Subgroup AUROC and the largest gap between subgroups, per strategy.

A model that ranks well overall can still rank badly for one sex, age band, ancestry or site;
the gap between the best- and worst-served group is the figure a fairness review asks for first.
Subgroups are evaluated on the ``realistic`` scenario (the deployment as it is).

Rules (stable, relied on by dashboards and checks):
- groups are the columns of SUBGROUP_COLUMNS present in ``cohort_subgroups``, joined on
  ``patient_key``; a test patient with no row or a null value is in value ``"unknown"``;
- every value is listed; its AUROC is null below MIN_N patients or with one class only;
- the gap of a group is max - min AUROC over its values with a non-null AUROC, ``"unknown"``
  excluded (it is not a population one can be fair or unfair to); a group with fewer than two
  such values has no gap entry;
- a gap of at least GAP_FLAG_THRESHOLD is flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.evaluation.metrics import subgroup_auroc

SUBGROUP_COLUMNS: tuple[str, ...] = ("sex", "age_band", "race", "ethnicity", "site")
# An AUROC difference of 0.10 between subgroups is clinically material: it is roughly the
# distance between a useful and a marginal risk model, far beyond run-to-run noise at n >= 10.
GAP_FLAG_THRESHOLD = 0.10
UNKNOWN = "unknown"
KEY = "patient_key"


def subgroup_values(keys: np.ndarray, subgroups: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per subgroup column present: the value of each test patient (aligned with ``keys``)."""
    columns = [c for c in SUBGROUP_COLUMNS if c in subgroups.columns]
    if KEY not in subgroups.columns or not columns:
        return {}
    table = subgroups[[KEY, *columns]].copy()
    table[KEY] = table[KEY].astype(str)
    table = table.drop_duplicates(KEY).set_index(KEY)
    aligned = table.reindex(pd.Index(np.asarray(keys).astype(str)))
    values = {}
    for column in columns:
        series = aligned[column].astype("string").fillna(UNKNOWN)
        values[column] = series.to_numpy(dtype=object)
    return values


def subgroup_rows(
    strategy: str,
    scenario: str,
    y: np.ndarray,
    p: np.ndarray,
    values: dict[str, np.ndarray],
) -> list[dict[str, object]]:
    """One row per (group, value): n, n_positive and AUROC of ``strategy`` in that subgroup."""
    rows = []
    for group, column in values.items():
        for value in sorted(set(column.tolist())):
            members = column == value
            rows.append(
                {
                    "strategy": strategy,
                    "scenario": scenario,
                    "group": group,
                    "value": str(value),
                    "n": int(members.sum()),
                    "n_positive": int(y[members].sum()),
                    "auroc": subgroup_auroc(y[members], p[members]),
                }
            )
    return rows


def largest_gaps(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per (strategy, group): the lowest and highest subgroup AUROC and whether the gap is large."""
    gaps = []
    keyed: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        keyed.setdefault((str(row["strategy"]), str(row["group"])), []).append(row)
    for (strategy, group), members in keyed.items():
        scored = [r for r in members if r["auroc"] is not None and r["value"] != UNKNOWN]
        if len(scored) < 2:
            continue
        lowest = min(scored, key=lambda r: (r["auroc"], str(r["value"])))
        highest = max(scored, key=lambda r: (r["auroc"], str(r["value"])))
        gap = round(float(highest["auroc"]) - float(lowest["auroc"]), 6)
        gaps.append(
            {
                "strategy": strategy,
                "group": group,
                "gap": gap,
                "lowest": {k: lowest[k] for k in ("value", "n", "auroc")},
                "highest": {k: highest[k] for k in ("value", "n", "auroc")},
                "flagged": bool(gap >= GAP_FLAG_THRESHOLD),
            }
        )
    return gaps
