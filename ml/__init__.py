"""Fusion models on gold tables: early, intermediate, late and attention-based fusion.

Each strategy is trained, evaluated under realistic modality missingness and tracked in MLflow.
Run with `mmlake train`, `mmlake evaluate` and `mmlake score`.
"""
