"""What reps did with leads: claims and snoozes, and the leads still waiting for someone.

Functions take the session and keyword-only arguments; writers never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import Feedback, Lead


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")


async def claim_lead(session: AsyncSession, *, lead_id: str, by: str, at: datetime) -> bool:
    """Claim the lead for ``by`` if nobody has: True for the one claim that wins.

    One conditional UPDATE, so two reps clicking together cannot both win: on PostgreSQL
    the second waits on the row lock and then finds ``claimed_by`` set; SQLite has one
    writer at a time."""
    statement = (
        update(Lead)
        .where(col(Lead.id) == lead_id, col(Lead.claimed_by).is_(None))
        .values(claimed_by=by, claimed_at=at)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1


async def snooze_lead(session: AsyncSession, *, lead_id: str, until: datetime) -> bool:
    """Hide the lead from ``top`` until ``until``; False when there is no such lead."""
    statement = (
        update(Lead)
        .where(col(Lead.id) == lead_id)
        .values(snoozed_until=until)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1


def _no_feedback() -> ColumnElement[bool]:
    return ~exists(select(Feedback.id).where(Feedback.lead_id == Lead.id))


def _below(after: tuple[float, str]) -> ColumnElement[bool]:
    """Rows after ``(score, id)`` in the order hottest first, then by id."""
    score, lead_id = after
    return or_(col(Lead.score) < score, and_(col(Lead.score) == score, col(Lead.id) > lead_id))


async def open_leads(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = 10,
    after: tuple[float, str] | None = None,
) -> list[Lead]:
    """The hottest known leads nobody has acted on: unclaimed, never judged, and not
    snoozed past ``now``. ``after`` is the ``(score, id)`` of the last lead of the previous
    page, for callers that filter leads further and read page after page."""
    _check_limit(limit)
    waiting = [
        col(Lead.anonymous).is_(False),
        col(Lead.claimed_by).is_(None),
        or_(col(Lead.snoozed_until).is_(None), col(Lead.snoozed_until) <= now),
        _no_feedback(),
    ]
    if after is not None:
        waiting.append(_below(after))
    query = select(Lead).where(*waiting).order_by(col(Lead.score).desc(), col(Lead.id))
    return list(await session.exec(query.limit(limit)))


async def claimed_leads(session: AsyncSession, *, by: str, limit: int = 10) -> list[Lead]:
    """The leads ``by`` claimed and nobody has judged yet, hottest first."""
    _check_limit(limit)
    query = (
        select(Lead)
        .where(col(Lead.claimed_by) == by, _no_feedback())
        .order_by(col(Lead.score).desc(), col(Lead.id))
        .limit(limit)
    )
    return list(await session.exec(query))
