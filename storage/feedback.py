"""Feedback rows: a rep's judgement of a lead and the features the lead had at that moment.

Learning (scoring/learn.py) fits on exactly these rows. Functions take the session and
keyword-only arguments; writers add and flush but never commit — the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import Feedback

MAX_OUTCOME = 16


async def record_feedback(
    session: AsyncSession,
    *,
    lead_id: str,
    outcome: str,
    reason: str | None,
    by: str,
    at: datetime,
    features: Mapping[str, Any],
) -> Feedback:
    """Add one judgement; ``features`` is the snapshot the learner will train on."""
    if not outcome or len(outcome) > MAX_OUTCOME:
        raise ValueError(f"outcome must be 1 to {MAX_OUTCOME} characters, got {outcome!r}")
    row = Feedback(
        lead_id=lead_id, outcome=outcome, reason=reason, by=by, at=at, features=dict(features)
    )
    session.add(row)
    await session.flush()
    return row


async def count_labels(session: AsyncSession) -> int:
    """Every feedback row: the labels collected so far."""
    return int((await session.exec(select(func.count()).select_from(Feedback))).one())


async def latest_feedback(session: AsyncSession, *, lead_id: str) -> Feedback | None:
    """The lead's most recent judgement (the one that stands), or None."""
    query = (
        select(Feedback)
        .where(Feedback.lead_id == lead_id)
        .order_by(col(Feedback.at).desc(), col(Feedback.id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
