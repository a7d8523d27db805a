"""Evaluation: scenarios, metrics with intervals, subgroup gaps, plots and evaluation.json.

Real sklearn models (logistic regressions wrapped as fusion strategies) are trained on synthetic
multimodal data with a planted signal; every file is written for real under tmp_path.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ml.evaluation import evaluate_models
from ml.evaluation.metrics import auroc_ci, bootstrap_auroc, ece, metric_row
from ml.evaluation.scenarios import build_scenarios
from ml.evaluation.subgroups import GAP_FLAG_THRESHOLD, largest_gaps, subgroup_rows
from ml.evaluation.subgroups import subgroup_values as values_of
from ml.features import MODALITIES, ModalityData
from ml.strategies.base import FitContext, FusionStrategy, prevalence

RATES = {"ehr": 1.0, "genomics": 0.6, "imaging": 0.7, "notes": 0.9, "wearables": 0.4}
PNG = b"\x89PNG\r\n\x1a\n"
TOP_KEYS = {"results", "subgroups", "largest_gaps", "gold_versions", "scenarios", "generated_at"}
RESULT_KEYS = {"strategy", "scenario", "n", "n_positive", "auroc", "auroc_ci", "auprc"}
RESULT_KEYS |= {"brier", "ece"}


def synthetic(n: int, seed: int) -> tuple[ModalityData, np.ndarray]:
    """Patients whose outcome depends on a latent risk every present modality measures noisily."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2.0 * risk))).astype(int)
    x, present = {}, {}
    for modality in MODALITIES:
        has = rng.random(n) < RATES[modality]
        values = risk[:, None] * rng.uniform(0.5, 1.0, 3) + rng.normal(size=(n, 3))
        x[modality] = np.where(has[:, None], values, 0.0).astype(np.float32)
        present[modality] = has
    keys = np.array([f"p{i:05d}_{seed}" for i in range(n)])
    return ModalityData(keys=keys, x=x, present=present), y


class EarlyLogistic(FusionStrategy):
    """Early fusion: one logistic regression on all features plus availability flags."""

    name = "early"

    def fit(self, ctx: FitContext) -> EarlyLogistic:
        self.model = LogisticRegression(max_iter=500).fit(ctx.train.concatenated(), ctx.y_train)
        return self

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        return self.model.predict_proba(data.concatenated())[:, 1]


class SingleModality(FusionStrategy):
    """One modality alone, trained on its holders; prevalence for a patient without it."""

    def __init__(self, modality: str) -> None:
        self.modality = modality
        self.name = f"single:{modality}"

    def fit(self, ctx: FitContext) -> SingleModality:
        has = ctx.train.present[self.modality]
        self.base = prevalence(ctx.y_train)
        self.model = LogisticRegression(max_iter=500)
        self.model.fit(ctx.train.x[self.modality][has], ctx.y_train[has])
        return self

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        p = self.model.predict_proba(data.x[self.modality])[:, 1]
        return np.where(data.present[self.modality], p, self.base)


class LateAverage(FusionStrategy):
    """Late fusion: the mean of the single-modality models over the modalities present."""

    name = "late"

    def fit(self, ctx: FitContext) -> LateAverage:
        self.parts = [SingleModality(m).fit(ctx) for m in ctx.train.modalities]
        return self

    def predict_proba(self, data: ModalityData) -> np.ndarray:
        logits = np.zeros(data.n)
        for part in self.parts:
            p = np.clip(part.predict_proba(data), 1e-6, 1 - 1e-6)
            logits += np.where(data.present[part.modality], np.log(p / (1 - p)), 0.0)
        return 1 / (1 + np.exp(-logits))


@pytest.fixture(scope="module")
def trained() -> tuple[dict[str, FusionStrategy], ModalityData, np.ndarray]:
    train, y_train = synthetic(400, seed=1)
    test, y_test = synthetic(300, seed=2)
    ctx = FitContext(train=train, y_train=y_train, valid=train, y_valid=y_train, seed=0)
    models: dict[str, FusionStrategy] = {"early": EarlyLogistic().fit(ctx)}
    models["late"] = LateAverage().fit(ctx)
    for modality in ("ehr", "genomics"):
        models[f"single:{modality}"] = SingleModality(modality).fit(ctx)
    return models, test, y_test


def subgroup_table(test: ModalityData, y: np.ndarray) -> pd.DataFrame:
    """Subgroups of the test patients; one patient has no row at all (-> 'unknown')."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "patient_key": test.keys,
            "sex": np.where(rng.random(test.n) < 0.5, "female", "male"),
            "site": rng.choice(["site_a", "site_b", "site_c"], size=test.n, p=[0.5, 0.47, 0.03]),
        }
    )
    return frame.iloc[1:]


def run(trained, tmp_path: Path, seed: int = 0, **kwargs) -> tuple[dict, object]:
    models, test, y = trained
    report = evaluate_models(
        models,
        test,
        y,
        kwargs.get("subgroups", subgroup_table(test, y)),
        pd.Series(test.patterns()),
        tmp_path,
        gold_versions={"patient_multimodal": 3, "cohort_subgroups": 2},
        seed=seed,
        n_bootstrap=100,
    )
    return report.json, report


def test_scenarios_simulate_the_missingness_they_claim() -> None:
    test, _ = synthetic(800, seed=5)
    scenarios = build_scenarios(test, seed=0)
    assert list(scenarios) == [
        "complete",
        "realistic",
        *(f"without:{m}" for m in MODALITIES),
        "shifted",
    ]
    complete = scenarios["complete"]
    assert complete.data.n == int(test.presence_matrix().all(axis=1).sum()) > 0
    assert all(complete.data.present[m].all() for m in MODALITIES)
    assert np.array_equal(complete.data.keys, test.keys[complete.rows])
    assert scenarios["realistic"].data is test
    for modality in MODALITIES:
        gone = scenarios[f"without:{modality}"].data
        assert not gone.present[modality].any() and not gone.x[modality].any()
        for other in set(MODALITIES) - {modality}:  # nothing else changes
            assert np.array_equal(gone.present[other], test.present[other])
            assert np.array_equal(gone.x[other], test.x[other])
    shifted = scenarios["shifted"].data
    assert shifted.n == test.n and not shifted.present["wearables"].any()
    holders = int(test.present["genomics"].sum())
    assert int(shifted.present["genomics"].sum()) == round(0.25 * holders)
    assert not (shifted.present["genomics"] & ~test.present["genomics"]).any()
    assert not shifted.x["genomics"][~shifted.present["genomics"]].any()
    # Seeded: the same patients keep genomics for the same seed, others for another seed.
    again = build_scenarios(test, seed=0)["shifted"].data.present["genomics"]
    other = build_scenarios(test, seed=1)["shifted"].data.present["genomics"]
    assert np.array_equal(again, shifted.present["genomics"])
    assert not np.array_equal(other, shifted.present["genomics"])
    assert all(s.description for s in scenarios.values())


def test_metrics_match_sklearn_on_known_inputs() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.4, 0.05, 0.4, 0.6, 0.7, 0.3])
    row = metric_row(y, p, n_bootstrap=50, seed=0)
    assert row["n"] == 12 and row["n_positive"] == 5
    assert row["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert row["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert row["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-6)
    # Hand count: 35 positive-negative pairs, 29 won, 2 tied at 0.4 -> 30/35.
    assert row["auroc"] == pytest.approx(30 / 35, abs=1e-6)
    # The vectorised bootstrap AUROC with every patient drawn once is the plain AUROC (ties too).
    ones_pos, ones_neg = np.ones((1, 5)), np.ones((1, 7))
    assert bootstrap_auroc(y, p, ones_pos, ones_neg)[0] == pytest.approx(30 / 35)
    # ... and with arbitrary counts it is the AUROC of the sample those counts describe.
    rng = np.random.default_rng(0)
    w_pos, w_neg = rng.integers(0, 4, (3, 5)), rng.integers(0, 4, (3, 7))
    w_pos[:, 0] += 1  # at least one patient of each class per replicate
    w_neg[:, 0] += 1
    for b in range(3):
        counts = np.concatenate([w_pos[b], w_neg[b]])
        order = np.concatenate([np.flatnonzero(y == 1), np.flatnonzero(y == 0)])
        expected = roc_auc_score(np.repeat(y[order], counts), np.repeat(p[order], counts))
        assert bootstrap_auroc(y, p, w_pos, w_neg)[b] == pytest.approx(expected)


def test_ece_is_zero_when_perfectly_calibrated_and_exact_otherwise() -> None:
    # In each bin, the share of positives equals the predicted probability.
    p = np.repeat([0.05, 0.25, 0.5, 0.75, 0.95], 20)
    y = np.concatenate([(np.arange(20) < k).astype(int) for k in (1, 5, 10, 15, 19)])
    assert ece(y, p) == pytest.approx(0.0, abs=1e-12)
    # Everyone told 90 %, half progress: off by 0.4 everywhere.
    assert ece(np.tile([0, 1], 50), np.full(100, 0.9)) == pytest.approx(0.4)
    # Two bins of different size: weighted by size, 0.75 * 0.1 + 0.25 * 0.3.
    p = np.concatenate([np.full(75, 0.2), np.full(25, 0.9)])
    y = np.concatenate([(np.arange(75) < 0.3 * 75).astype(int), np.arange(25) < 0.6 * 25])
    assert ece(y, p) == pytest.approx(0.75 * abs(23 / 75 - 0.2) + 0.25 * abs(15 / 25 - 0.9))


def test_auroc_interval_contains_estimate_and_narrows_with_n() -> None:
    widths = []
    for n in (100, 1600):
        rng = np.random.default_rng(n)
        y = rng.integers(0, 2, n)
        p = 1 / (1 + np.exp(-(1.5 * y - 0.75 + rng.normal(size=n))))
        row = metric_row(y, p, n_bootstrap=300, seed=0)
        lo, hi = row["auroc_ci"]
        assert lo < row["auroc"] < hi
        assert lo > 0.5 and hi < 1.0
        widths.append(hi - lo)
        assert (lo, hi) == pytest.approx(auroc_ci(y, p, 300, seed=0), abs=1e-6)  # seeded
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n): 16x the patients, ~4x narrower


def test_undefined_metrics_are_null_not_nan() -> None:
    one_class = metric_row(np.zeros(40, dtype=int), np.linspace(0, 1, 40))
    assert one_class["auroc"] is None and one_class["auroc_ci"] is None
    assert one_class["auprc"] is None
    assert one_class["brier"] is not None and one_class["ece"] is not None
    tiny = metric_row(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]))
    assert tiny["n"] == 4 and all(tiny[k] is None for k in ("auroc", "auprc", "brier", "ece"))
    with pytest.raises(ValueError, match="NaN"):
        metric_row(np.array([0, 1] * 10), np.full(20, np.nan))


def test_subgroup_gap_is_found_and_flagged_on_a_planted_gap() -> None:
    rng = np.random.default_rng(0)
    n = 200
    keys = np.array([f"k{i}" for i in range(n)])
    y = np.tile([0, 1], n // 2)
    sex = np.where(np.arange(n) < 100, "female", "male")
    # Perfect ranking for women, noise for men: a planted gap the report must find.
    p = np.where(sex == "female", 0.2 + 0.6 * y, rng.random(n))
    site = np.where((np.arange(n) // 2) % 2 == 0, "a", "b").astype(object)  # both classes each
    site[:6] = "tiny"  # 6 patients: listed, but too few for an AUROC
    table = pd.DataFrame({"patient_key": keys, "sex": sex, "site": site, "other": 1})
    table = table.iloc[::-1].drop(index=[107, 108])  # order irrelevant; 2 men have no row
    values = values_of(keys, table)
    assert set(values) == {"sex", "site"}  # only known subgroup columns
    rows = subgroup_rows("early", "realistic", y, p, values)
    by = {(r["group"], r["value"]): r for r in rows}
    male = (sex == "male") & ~np.isin(np.arange(n), [107, 108])
    assert by[("sex", "female")]["auroc"] == 1.0
    assert by[("sex", "male")]["auroc"] == pytest.approx(roc_auc_score(y[male], p[male]))
    assert by[("sex", "unknown")]["n"] == 2 and by[("sex", "unknown")]["auroc"] is None
    assert by[("site", "tiny")]["n"] == 6 and by[("site", "tiny")]["auroc"] is None
    gaps = {g["group"]: g for g in largest_gaps(rows)}
    sex_gap = gaps["sex"]
    assert sex_gap["gap"] == pytest.approx(1.0 - by[("sex", "male")]["auroc"], abs=1e-6)
    assert sex_gap["lowest"]["value"] == "male" and sex_gap["highest"]["value"] == "female"
    assert sex_gap["gap"] >= GAP_FLAG_THRESHOLD and sex_gap["flagged"] is True
    # Sites: "tiny" has no AUROC and "unknown" is no population, so the gap is a vs b.
    site_gap = gaps["site"]
    assert {site_gap["lowest"]["value"], site_gap["highest"]["value"]} == {"a", "b"}
    site_aurocs = [by[("site", v)]["auroc"] for v in ("a", "b")]
    assert site_gap["gap"] == pytest.approx(abs(site_aurocs[0] - site_aurocs[1]), abs=1e-6)
    # The threshold is inclusive and not fooled by float error (0.80 - 0.70 == 0.0999...).
    for low, flagged in ((0.71, False), (0.70, True)):
        planted = [
            {"strategy": "s", "group": "g", "value": v, "n": 50, "auroc": a}
            for v, a in (("x", 0.80), ("y", low), ("unknown", 0.1))
        ]
        (gap,) = largest_gaps(planted)
        assert gap["flagged"] is flagged and gap["lowest"]["value"] == "y"
    assert values_of(keys, pd.DataFrame({"patient_key": keys})) == {}
    assert values_of(keys, pd.DataFrame()) == {}


def test_evaluate_writes_complete_json_and_plots(trained, tmp_path: Path) -> None:
    payload, report = run(trained, tmp_path)
    models, test, y = trained
    text = report.json_path.read_text(encoding="utf-8")

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} in evaluation.json")

    assert json.loads(text, parse_constant=no_constants) == payload
    assert set(payload) >= TOP_KEYS and payload["gold_versions"]["patient_multimodal"] == 3
    scenarios = list(payload["scenarios"])
    assert {"complete", "realistic", "shifted", "without:genomics"} <= set(scenarios)
    assert len(payload["results"]) == len(models) * len(scenarios)
    for row in payload["results"]:
        assert set(row) >= RESULT_KEYS
        if row["auroc"] is not None:
            lo, hi = row["auroc_ci"]
            assert 0 <= lo <= hi <= 1 and 0 <= row["ece"] <= 1
    realistic = report.result("early", "realistic")
    assert realistic["n"] == test.n and realistic["n_positive"] == int(y.sum())
    assert report.result("early", "complete")["n"] == int(test.presence_matrix().all(1).sum())
    # The planted signal is found, and single:ehr is untouched by removing genomics.
    assert realistic["auroc"] > 0.75
    ehr = report.result("single:ehr", "realistic")["auroc"]
    assert report.result("single:ehr", "without:genomics")["auroc"] == ehr
    # Subgroups: every strategy x (sex, site) value on the realistic scenario.
    groups = {(r["strategy"], r["group"], r["value"]) for r in payload["subgroups"]}
    assert ("late", "sex", "unknown") in groups and ("early", "site", "site_c") in groups
    assert {r["scenario"] for r in payload["subgroups"]} == {"realistic"}
    assert {(g["strategy"], g["group"]) for g in payload["largest_gaps"]} == {
        (s, g) for s in models for g in ("sex", "site")
    }
    assert set(report.plots) == {
        "roc_realistic",
        "calibration",
        "missingness_robustness",
        "modality_availability",
    }
    for path in report.plots.values():
        assert path.parent == tmp_path and path.stat().st_size > 5_000
        assert path.read_bytes()[:8] == PNG


def test_evaluate_is_deterministic_for_a_seed(trained, tmp_path: Path) -> None:
    first, _ = run(trained, tmp_path / "a", seed=4)
    second, _ = run(trained, tmp_path / "b", seed=4)
    other, _ = run(trained, tmp_path / "c", seed=5)
    for payload in (first, second, other):
        payload.pop("generated_at")
    assert first == second
    assert first["results"] != other["results"]  # the seed drives the intervals and shift


def test_evaluate_without_subgroups_and_rejects_bad_predictions(trained, tmp_path: Path) -> None:
    payload, _ = run(trained, tmp_path, subgroups=pd.DataFrame({"patient_key": []}))
    assert payload["subgroups"] == [] and payload["largest_gaps"] == []

    class Broken(EarlyLogistic):
        def predict_proba(self, data: ModalityData) -> np.ndarray:
            return np.full(data.n, np.nan)

    _, test, y = trained
    with pytest.raises(ValueError, match=r"broken returned NaN"):
        evaluate_models({"broken": Broken()}, test, y, pd.DataFrame(), pd.Series([]), tmp_path, {})
