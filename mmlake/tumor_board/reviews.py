"""The clinician checkpoint: tumor-board decisions as an append-only Delta table.

``<lakehouse>/clinical/tumor_board_reviews`` holds one row per recorded decision: who decided,
what, why (comment), when (UTC), which page they were looking at (its render time) and which
risk model version that page showed. It records a human decision; nothing reads it to act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from mmlake.delta import write_delta
from mmlake.tumor_board.reads import Reader, TumorBoardError, visible_patients

REVIEWS_RELATIVE = Path("clinical") / "tumor_board_reviews"

REVIEWS_SCHEMA = pa.schema(
    [
        ("patient_key", pa.string()),
        ("reviewer", pa.string()),
        ("decision", pa.string()),
        ("comment", pa.string()),
        ("reviewed_at", pa.timestamp("us", tz="UTC")),
        ("page_generated_at", pa.timestamp("us", tz="UTC")),
        ("risk_model_version", pa.string()),
    ]
)


@dataclass(frozen=True)
class Review:
    patient_key: str
    reviewer: str
    decision: str
    comment: str = ""
    page_generated_at: datetime | None = None
    risk_model_version: str | None = None


def reviews_path(lakehouse: Path) -> Path:
    return lakehouse / REVIEWS_RELATIVE


def parse_timestamp(value: str | None) -> datetime | None:
    """An ISO time from a page's hidden field (UTC assumed when it carries no offset)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise TumorBoardError(f"not an ISO timestamp: {value!r}") from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def record_review(lakehouse: Path, review: Review) -> datetime:
    """Append one decision; the reviewer must be a principal who can see the patient.

    The visibility check is a governed read as the reviewer, so a reviewer cannot record a
    decision about a patient their groups may not see, and the check itself is audited.
    """
    if not review.decision.strip():
        raise TumorBoardError("a review needs a decision")
    if not review.reviewer.strip():
        raise TumorBoardError("a review needs a reviewer")
    visible = visible_patients(Reader(lakehouse, review.reviewer))
    if review.patient_key not in set(visible):
        raise TumorBoardError(
            f"unknown patient key {review.patient_key!r} (not in the cohort, or not visible "
            f"to {review.reviewer})"
        )
    reviewed_at = datetime.now(UTC)
    row = {
        "patient_key": review.patient_key,
        "reviewer": review.reviewer,
        "decision": review.decision.strip(),
        "comment": review.comment,
        "reviewed_at": reviewed_at,
        "page_generated_at": review.page_generated_at,
        "risk_model_version": review.risk_model_version or None,
    }
    write_delta(
        reviews_path(lakehouse),
        pa.Table.from_pylist([row], schema=REVIEWS_SCHEMA),
        mode="append",
        description="tumor-board review",
    )
    return reviewed_at
