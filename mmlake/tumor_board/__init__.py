"""Tumor-board evidence pages: every modality of a patient on one page, each item traceable.

Public API: :func:`render_pages`, :func:`record_review`, the typer app ``cli.app``
(docs/tumor_board.md).
"""

from mmlake.tumor_board.pages import RenderedPages, default_output, render_pages
from mmlake.tumor_board.reads import TumorBoardError
from mmlake.tumor_board.reviews import Review, record_review, reviews_path

__all__ = [
    "RenderedPages",
    "Review",
    "TumorBoardError",
    "default_output",
    "record_review",
    "render_pages",
    "reviews_path",
]
