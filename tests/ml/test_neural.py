"""Intermediate and attention fusion: learn a planted signal, survive missing modalities.

The synthetic cohort plants a progression risk split across four modalities: a shared factor
(clean in EHR, noisy copies in the others) plus one factor of each modality's own, so every
modality adds something and EHR adds the most. EHR is always present, the others are missing at
random, which leaves patterns such as "genomics only" that training never shows.
"""

from __future__ import annotations

import cloudpickle
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from ml.data import MLInputError
from ml.features import ModalityData
from ml.strategies.base import FitContext
from ml.strategies.neural import AttentionFusion, IntermediateFusion, NeuralFusion
from ml.strategies.neural_modules import modality_dropout_mask

NAMES = ("ehr", "genomics", "imaging", "notes")
DIMS = (10, 8, 12, 6)
PRESENT_RATE = (1.0, 0.6, 0.7, 0.8)
OWN_WEIGHT = np.array([0.8, 0.8, 0.8, 0.6])
TRAIN, VALID, TEST = 600, 200, 600


def synthetic(n: int, seed: int) -> tuple[ModalityData, np.ndarray]:
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=n)
    own = rng.normal(size=(n, len(NAMES)))
    logit = 1.5 * shared + own @ OWN_WEIGHT
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    x, present = {}, {}
    for i, (name, width, rate) in enumerate(zip(NAMES, DIMS, PRESENT_RATE, strict=True)):
        values = rng.normal(size=(n, width))
        values[:, 0] = shared + rng.normal(size=n) * (0.2 if name == "ehr" else 0.8)
        values[:, 1] += own[:, i]
        values[:, 2] += own[:, i]
        values[:, 3] += shared
        mask = rng.random(n) < rate
        values[~mask] = 0.0  # absent rows are zeros, as FeatureSpace.transform leaves them
        x[name] = values.astype(np.float32)
        present[name] = mask
    keys = np.array([f"p{i:05d}" for i in range(n)])
    return ModalityData(keys=keys, x=x, present=present), y


@pytest.fixture(scope="module")
def cohort() -> dict[str, tuple[ModalityData, np.ndarray]]:
    data, y = synthetic(TRAIN + VALID + TEST, seed=0)
    cuts = {"train": (0, TRAIN), "valid": (TRAIN, TRAIN + VALID), "test": (TRAIN + VALID, None)}
    return {k: (data.subset(np.arange(data.n)[a:b]), y[a:b]) for k, (a, b) in cuts.items()}


def context(cohort: dict, seed: int = 0, modality_dropout: float = 0.3) -> FitContext:
    (train, y_train), (valid, y_valid) = cohort["train"], cohort["valid"]
    return FitContext(train, y_train, valid, y_valid, seed, modality_dropout)


@pytest.fixture(scope="module")
def fitted(cohort: dict) -> dict[str, NeuralFusion]:
    return {cls.name: cls().fit(context(cohort)) for cls in (IntermediateFusion, AttentionFusion)}


STRATEGIES = ["intermediate", "attention"]


def only(data: ModalityData, keep: tuple[str, ...]) -> ModalityData:
    for name in data.modalities:
        if name not in keep:
            data = data.without(name)
    return data


@pytest.mark.parametrize("name", STRATEGIES)
def test_learns_the_planted_signal(fitted: dict, cohort: dict, name: str) -> None:
    test, y = cohort["test"]
    proba = fitted[name].predict_proba(test)
    assert proba.shape == (test.n,) and proba.dtype == np.float64
    assert np.all((proba > 0) & (proba < 1))
    assert roc_auc_score(y, proba) > 0.74  # oracle (true logit) ~0.88, chance 0.5
    params = fitted[name].params()
    assert params["modality_dropout"] == 0.3 and params["modalities"] == "+".join(NAMES)
    assert 1 <= params["best_epoch"] <= params["epochs_run"] <= params["max_epochs"]
    assert {"hidden", "emb", "dropout", "lr", "weight_decay", "batch_size"} <= set(params)
    assert ("heads" in params) == (name == "attention")


@pytest.mark.parametrize("cls", [IntermediateFusion, AttentionFusion])
def test_same_seed_same_predictions_and_global_state_untouched(
    fitted: dict, cohort: dict, cls: type[NeuralFusion]
) -> None:
    threads = torch.get_num_threads()
    rng_state = torch.get_rng_state()
    again = cls().fit(context(cohort))
    test, _ = cohort["test"]
    assert np.array_equal(again.predict_proba(test), fitted[cls.name].predict_proba(test))
    # Fitting must not leak its thread count or consume the caller's random stream.
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert not torch.are_deterministic_algorithms_enabled()


def test_another_seed_gives_another_model(fitted: dict, cohort: dict) -> None:
    other = IntermediateFusion().fit(context(cohort, seed=1))
    test, _ = cohort["test"]
    assert not np.allclose(other.predict_proba(test), fitted["intermediate"].predict_proba(test))


@pytest.mark.parametrize("name", STRATEGIES)
def test_patterns_never_seen_in_training(fitted: dict, cohort: dict, name: str) -> None:
    test, y = cohort["test"]
    train, _ = cohort["train"]
    assert train.present["ehr"].all()  # so "genomics only" never occurs in training
    genomics_only = only(test, ("genomics",)).subset(test.present["genomics"])
    proba = fitted[name].predict_proba(genomics_only)
    assert np.all(np.isfinite(proba)) and np.all((proba > 0) & (proba < 1))
    assert roc_auc_score(y[test.present["genomics"]], proba) > 0.6  # genomics still informs
    # With no modality at all nothing tells patients apart: one value, near the prevalence.
    nothing = fitted[name].predict_proba(only(test, ()))
    assert np.ptp(nothing) < 1e-6 and 0.2 < nothing[0] < 0.8


@pytest.mark.parametrize("name", STRATEGIES)
def test_absent_is_not_the_same_as_all_zero_features(fitted: dict, cohort: dict, name: str) -> None:
    test, _ = cohort["test"]
    rows = test.subset(test.present["genomics"])
    absent = rows.without("genomics")
    zero_features = ModalityData(
        keys=rows.keys,
        x={**rows.x, "genomics": np.zeros_like(rows.x["genomics"])},
        present=rows.present,
    )
    model = fitted[name]
    assert not np.allclose(model.predict_proba(absent), model.predict_proba(zero_features))
    # ...and the values of an absent modality are never read.
    noisy = ModalityData(
        keys=absent.keys,
        x={**absent.x, "genomics": np.full_like(absent.x["genomics"], 3.0)},
        present=absent.present,
    )
    assert np.array_equal(model.predict_proba(absent), model.predict_proba(noisy))


def test_absent_embedding_is_a_trained_parameter(fitted: dict) -> None:
    net = fitted["intermediate"].net
    assert "absent" in dict(net.named_parameters())  # the optimiser updates it
    assert net.absent.shape == (len(NAMES), 16)
    assert torch.all(net.absent.detach().abs().sum(dim=1) > 0)  # never the zero vector


def test_attention_weights_cover_present_modalities_only(fitted: dict, cohort: dict) -> None:
    test, _ = cohort["test"]
    model = fitted["attention"]
    assert model.modalities == NAMES
    weights = model.attention_weights(test)
    present = test.presence_matrix().astype(bool)
    assert weights.shape == (test.n, len(NAMES))
    assert np.all(weights[~present] == 0.0)
    assert np.all(weights >= 0) and np.allclose(weights.sum(axis=1), 1.0)
    # A patient with a single modality puts all attention on it.
    ehr_only = model.attention_weights(only(test, ("ehr",)))
    assert np.allclose(ehr_only[:, 0], 1.0) and np.all(ehr_only[:, 1:] == 0.0)


def test_modality_dropout_never_hides_all_modalities() -> None:
    rng = np.random.default_rng(3)
    present = torch.from_numpy(rng.random((5000, 5)) < 0.6)
    present[:50] = False  # patients with nothing stay with nothing
    for rate in (0.3, 0.9):
        keep = modality_dropout_mask(present, rate, torch.Generator().manual_seed(0))
        assert not torch.any(keep & ~present)  # only present modalities can be kept
        assert torch.equal(keep.any(dim=1), present.any(dim=1))
        hidden = float((present & ~keep).sum() / present.sum())
        if rate == 0.3:  # the fallback rarely fires: the hidden share is close to the rate
            assert abs(hidden - rate) < 0.03
        else:  # it fires often: many patients are left with exactly one modality
            assert 0.5 < hidden < rate
            assert (keep.sum(dim=1) == 1).float().mean() > 0.5
    again = modality_dropout_mask(present, 0.3, torch.Generator().manual_seed(0))
    assert torch.equal(again, modality_dropout_mask(present, 0.3, torch.Generator().manual_seed(0)))
    assert torch.equal(modality_dropout_mask(present, 0.0, torch.Generator()), present)
    with pytest.raises(ValueError, match="dropout rate"):
        modality_dropout_mask(present, 1.0, torch.Generator())


@pytest.mark.parametrize("name", STRATEGIES)
def test_cloudpickle_round_trip_predicts_identically(fitted: dict, cohort: dict, name: str) -> None:
    test, _ = cohort["test"]
    restored = cloudpickle.loads(cloudpickle.dumps(fitted[name]))
    assert np.array_equal(restored.predict_proba(test), fitted[name].predict_proba(test))
    if name == "attention":
        assert np.array_equal(
            restored.attention_weights(test), fitted[name].attention_weights(test)
        )


def test_feature_width_mismatch_is_a_clear_error(fitted: dict, cohort: dict) -> None:
    test, _ = cohort["test"]
    wrong = ModalityData(
        keys=test.keys, x={**test.x, "notes": test.x["notes"][:, :3]}, present=test.present
    )
    with pytest.raises(MLInputError, match="'notes' has 3 features"):
        fitted["attention"].predict_proba(wrong)


def test_modality_dropout_and_removing_ehr(
    fitted: dict, cohort: dict, record_property: pytest.RecordProperty
) -> None:
    """Measured, not asserted: the effect of dropout on one fit is within seed-to-seed noise.

    Across training seeds, attention with modality dropout 0.3 lost about as much or less
    AUROC when EHR was removed than with dropout 0; on a single fit the sign can flip, so only
    the robustness floor is asserted and the numbers are recorded.
    """
    test, y = cohort["test"]
    no_dropout = AttentionFusion().fit(context(cohort, modality_dropout=0.0))
    report = {}
    for label, model in (("dropout=0.3", fitted["attention"]), ("dropout=0", no_dropout)):
        full = roc_auc_score(y, model.predict_proba(test))
        without = roc_auc_score(y, model.predict_proba(test.without("ehr")))
        report[label] = (round(full, 3), round(without, 3), round(full - without, 3))
        assert without > 0.68  # the other three modalities still carry most of the signal
    record_property("attention_auroc_full_without_ehr_drop", report)
    print(f"attention AUROC (full, without ehr, drop): {report}")


@pytest.mark.slow
def test_on_generated_gold(ml_cohort) -> None:
    from sklearn.model_selection import train_test_split

    from ml.data import load_gold
    from ml.features import FeatureSpace

    # Sorted: delta_scan's row order is not stable, and the split below is positional.
    frame = load_gold(ml_cohort.lakehouse).labelled().sort_values("patient_key")
    y = frame["label"].to_numpy(int)
    rest, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    train, valid = train_test_split(rest, test_size=0.2, stratify=y[rest], random_state=0)
    space = FeatureSpace.fit(frame.iloc[train])
    part = {
        k: space.transform(frame.iloc[v]) for k, v in {"tr": train, "va": valid, "te": test}.items()
    }
    ctx = FitContext(part["tr"], y[train], part["va"], y[valid], seed=0)
    ehr_only = only(part["te"], ("ehr",))
    for cls in (IntermediateFusion, AttentionFusion):
        model = cls().fit(ctx)
        # One 200-patient test set: well above chance (EHR alone reaches ~0.72 on this cohort).
        assert roc_auc_score(y[test], model.predict_proba(part["te"])) > 0.65
        proba = model.predict_proba(ehr_only)  # scoring a patient with only EHR works
        assert np.all(np.isfinite(proba)) and np.ptp(proba) > 0
