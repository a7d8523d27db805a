"""Drift monitoring of gold against the data a model was trained on (`mmlake drift`)."""

from ml.drift.run import DriftResult, run_drift

__all__ = ["DriftResult", "run_drift"]
