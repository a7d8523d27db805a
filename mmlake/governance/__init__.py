"""Governance of the lakehouse: the local emulation's governed reads and audit tables.

The declaration (classification, mask, row filters, owner) lives in dbt meta and the seeds of
seeds/governance/; macros compile it per engine (macros/governance/). See docs/governance.md.
"""
