"""Fusion strategies (early, intermediate, late, attention) and their baselines."""
