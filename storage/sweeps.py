"""The decay and SLA sweeps' queries (``bot.jobs.decay``, ``bot.jobs.sla``): synchronous
functions on a ``Connection`` in the caller's transaction (the sweeps run off the event
loop, ``storage.offloop``), with typed rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import AlertPost, Feedback, Lead, OutboxMessage

LEADS = Lead.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]

ALERT = "alert"


class DecayRow(NamedTuple):
    """A lead as the decay sweep reads it; ``scored_at`` guards its write."""

    id: str
    state: dict[str, Any]
    score: float
    band: str
    scored_at: datetime
    email: str | None
    name: str | None
    company: str | None


class NewScore(NamedTuple):
    score: float
    fit: float
    intent: float
    band: str
    grade: str
    engagement: int
    probability: float


class SentAlert(NamedTuple):
    lead_id: str
    destination: str
    created_at: datetime


class DueLead(NamedTuple):
    """A hot lead the SLA sweep follows up."""

    id: str
    email: str | None
    name: str | None
    company: str | None
    score: float
    band: str
    alerted_at: datetime


class Post(NamedTuple):
    lead_id: str
    platform: str
    channel: str


class Queued(NamedTuple):
    lead_id: str
    destination: str


def all_scores(conn: Connection) -> list[float]:
    """Every lead's stored score (percentile band edges are read from them)."""
    return list(conn.execute(select(LEADS.c.score)).scalars())


def ids_scored_at_least(conn: Connection, points: float) -> list[str]:
    """Ids of the leads whose stored score is at least ``points``, in id order."""
    query = select(LEADS.c.id).where(LEADS.c.score >= points).order_by(LEADS.c.id)
    return list(conn.execute(query).scalars())


def decay_rows(conn: Connection, ids: Sequence[str], points: float) -> list[DecayRow]:
    """The leads of ``ids`` still scored at least ``points``."""
    columns = [LEADS.c[c] for c in DecayRow._fields]
    query = select(*columns).where(LEADS.c.id.in_(ids), LEADS.c.score >= points)
    return [DecayRow(*row) for row in conn.execute(query)]


def set_score_if_unchanged(
    conn: Connection, *, lead_id: str, scored_at: datetime, new: NewScore, at: datetime
) -> bool:
    """Store ``new`` as the lead's score unless it was rescored since ``scored_at``."""
    stmt = (
        update(LEADS)
        .where(and_(LEADS.c.id == lead_id, LEADS.c.scored_at == scored_at))
        .values(**new._asdict(), scored_at=at)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def set_band_firm(conn: Connection, *, rows: Sequence[tuple[str, datetime, datetime]]) -> None:
    """Record (lead id, scored_at, firm until): the lead's band holds until that time, for
    the score stored at ``scored_at`` — a lead rescored since is left alone."""
    if not rows:
        return
    stmt = (
        update(LEADS)
        .where(LEADS.c.id == bindparam("lid"), LEADS.c.scored_at == bindparam("for_"))
        .values(band_firm_until=bindparam("until"), band_firm_for=bindparam("for_"))
    )
    conn.execute(stmt, [{"lid": i, "for_": at, "until": until} for i, at, until in rows])


def sent_alerts(conn: Connection, lead_ids: Sequence[str]) -> list[SentAlert]:
    """The delivered alert messages about ``lead_ids`` (keep the list under ~500 ids)."""
    query = select(OUTBOX.c.lead_id, OUTBOX.c.destination, OUTBOX.c.created_at).where(
        OUTBOX.c.kind == ALERT, OUTBOX.c.status == "sent", OUTBOX.c.lead_id.in_(lead_ids)
    )
    return [SentAlert(*row) for row in conn.execute(query)]


def due_for_follow_up(
    conn: Connection, *, now: datetime, since: datetime, escalation: str
) -> list[DueLead]:
    """Hot, known, unclaimed leads not snoozed at ``now``, alerted at or before ``since``,
    with no feedback and no ``escalation`` message since their last alert; oldest alert
    first."""
    judged = exists(
        select(FEEDBACK.c.id).where(
            FEEDBACK.c.lead_id == LEADS.c.id, FEEDBACK.c.at >= LEADS.c.alerted_at
        )
    )
    escalated = exists(
        select(OUTBOX.c.id).where(
            OUTBOX.c.lead_id == LEADS.c.id,
            OUTBOX.c.kind == escalation,
            OUTBOX.c.created_at >= LEADS.c.alerted_at,
        )
    )
    query = (
        select(*(LEADS.c[c] for c in DueLead._fields))
        .where(
            LEADS.c.band == "hot",
            LEADS.c.anonymous.is_(False),
            LEADS.c.claimed_by.is_(None),
            or_(LEADS.c.snoozed_until.is_(None), LEADS.c.snoozed_until <= now),
            LEADS.c.alerted_at.is_not(None),
            LEADS.c.alerted_at <= since,
            ~judged,
            ~escalated,
        )
        .order_by(LEADS.c.alerted_at, LEADS.c.id)
    )
    return [DueLead(*row) for row in conn.execute(query)]


def _since_alert(table: Any, column: Any, ids: Sequence[str], *where: Any) -> Any:
    """Rows of ``table`` about ``ids`` written at or after each lead's last alert."""
    return (
        select(table.c.lead_id, *where)
        .join(LEADS, LEADS.c.id == table.c.lead_id)
        .where(table.c.lead_id.in_(ids), column >= LEADS.c.alerted_at)
    )


def posts_since_alert(conn: Connection, ids: Sequence[str]) -> list[Post]:
    """Where each lead's alerts were posted since its last alert, oldest first."""
    query = _since_alert(POSTS, POSTS.c.posted_at, ids, POSTS.c.platform, POSTS.c.channel)
    return [Post(*row) for row in conn.execute(query.order_by(POSTS.c.posted_at, POSTS.c.id))]


def alerts_queued_since_alert(conn: Connection, ids: Sequence[str]) -> list[Queued]:
    """The destinations each lead's alert messages were queued for since its last alert."""
    query = _since_alert(OUTBOX, OUTBOX.c.created_at, ids, OUTBOX.c.destination)
    rows = conn.execute(query.where(OUTBOX.c.kind == ALERT).order_by(OUTBOX.c.id))
    return [Queued(*row) for row in rows]


async def latest_alert_post(
    engine: AsyncEngine, *, lead_id: str, platform: str, channel: str
) -> str | None:
    """The message id (Slack ``ts``) of the lead's latest alert posted in ``channel``."""
    query = (
        select(POSTS.c.ts)
        .where(POSTS.c.lead_id == lead_id, POSTS.c.platform == platform)
        .where(POSTS.c.channel == channel)
        .order_by(POSTS.c.posted_at.desc(), POSTS.c.id.desc())
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else str(row[0])
