"""Evaluation of fusion strategies under deployment-like modality missingness.

``evaluate_models`` scores every trained strategy on the held-out test set in each scenario
(complete, realistic, without:<modality>, shifted), with interval estimates, subgroup gaps and
calibration, and writes ``<lakehouse>/reports/evaluation.json`` plus the PNG figures.
"""

from ml.evaluation.report import EvaluationReport, evaluate_models

__all__ = ["EvaluationReport", "evaluate_models"]
