"""Tests of the Spark Declarative Pipeline definitions under pipelines/."""
