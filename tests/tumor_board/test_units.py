"""Pieces of the tumor-board pages that need no warehouse: masks, keys, plots, escaping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mmlake.tumor_board.html import cell, render_section, svg_plot
from mmlake.tumor_board.lineage import apply_mask, provenance
from mmlake.tumor_board.model import Fact, Figure, Section
from mmlake.tumor_board.reads import TumorBoardError, key_list
from mmlake.tumor_board.reviews import parse_timestamp


@pytest.mark.parametrize(
    ("access", "mask", "expected"),
    [
        ("full", "redact", "file.ndjson"),
        ("masked", "redact", "[REDACTED]"),
        ("masked", "last4", "***json"),
        ("masked", "year_only", "file"),
        ("masked", "null", None),
        ("denied", None, None),
    ],
)
def test_apply_mask_mirrors_the_views(access: str, mask: str | None, expected: str | None):
    assert apply_mask("file.ndjson", access, mask) == expected


def test_key_list_refuses_sql() -> None:
    assert key_list(["ab12", "cd34"]) == "('ab12', 'cd34')"
    with pytest.raises(TumorBoardError):
        key_list(["x' or '1'='1"])


def test_values_are_escaped_and_masks_marked() -> None:
    prov = provenance("gold.x", {"k": "<b>"}, delta_table="gold/x", delta_version=3)
    section = Section("demographics", facts=[Fact("Name", "<script>", prov)])
    out = render_section(section)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert json.loads(prov.to_json())["record_key"] == {"k": "<b>"}
    assert 'class="masked"' in cell("[REDACTED]")
    assert "not available" in cell(None)


def test_svg_plot_has_provenance() -> None:
    prov = provenance(
        "gold.wearables_daily", {"patient_key": "p"}, delta_table="g", delta_version=0
    )
    out = svg_plot(Figure("Steps", [(0.0, 10.0), (1.0, 20.0)], "steps", prov))
    assert out.startswith("<figure data-provenance=") and "<polyline" in out


def test_parse_timestamp_assumes_utc() -> None:
    assert parse_timestamp("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("") is None
    with pytest.raises(TumorBoardError):
        parse_timestamp("yesterday")
