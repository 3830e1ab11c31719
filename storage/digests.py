"""The SQL behind manager digests: what happened to leads in a period, for everyone or for
the leads of a few Slack users.

Synchronous functions on a ``Connection`` (run them with ``AsyncConnection.run_sync``), so a
digest reads every figure inside one transaction: one consistent snapshot. Nothing here
writes. Times are UTC-aware datetimes; a period is ``start <= at < end``.

Scope: ``members=None`` means every lead. Otherwise a lead belongs to the scope when it was
claimed by one of the members (``leads.claimed_by = 'slack:U…'``) or an alert about it was
routed to one of them (an outbox row with destination ``slack:@U…``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, true
from sqlalchemy.engine import Connection

from storage.tables import AlertPost, Feedback, Lead, OutboxMessage, ScoreChange

LEADS = Lead.__table__  # type: ignore[attr-defined]
HISTORY = ScoreChange.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]

HOT = "hot"
# History written by an activation or a rollback (bot/models/versions.py): the weights moved, the
# lead did nothing. Not a mover.
RESCORE_CAUSE = "model v%"


@dataclass(frozen=True, slots=True)
class LeadName:
    """How a digest names a lead (raw data: escape it where it is rendered)."""

    id: str
    name: str | None
    email: str | None
    company: str | None


@dataclass(frozen=True, slots=True)
class HotEntry:
    """A lead entering hot in the period (its first entry there), and who took it."""

    lead: LeadName
    at: datetime
    score: float
    claimed_by: str | None
    claimed_at: datetime | None


@dataclass(frozen=True, slots=True)
class HotLead:
    """A lead hot now that nobody claimed, judged or snoozed; ``since`` is when it last
    turned hot or was last alerted, whichever is later (None when neither is recorded)."""

    lead: LeadName
    score: float
    since: datetime | None


@dataclass(frozen=True, slots=True)
class Label:
    lead_id: str
    outcome: str
    at: datetime
    features: dict[str, Any]
    source: str = "rep"  # or the CRM it came from: "crm:hubspot", "crm:salesforce"


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim in the period and the alert it answered (None when none came before it)."""

    lead_id: str
    by: str
    claimed_at: datetime
    alerted_at: datetime | None


@dataclass(frozen=True, slots=True)
class Move:
    """A lead's net score change over the period's history rows."""

    lead: LeadName
    change: float
    score: float
    band: str


def in_scope(lead_id: Any, members: Sequence[str] | None) -> ColumnElement[bool]:
    """Whether the lead ``lead_id`` (a column) belongs to ``members``' leads."""
    if members is None:
        return true()
    # An alias, so that inside a query on ``leads`` this reads the row at hand, not any row.
    claimer = LEADS.alias("scope_leads")
    claimed = select(claimer.c.id).where(
        claimer.c.id == lead_id, claimer.c.claimed_by.in_([f"slack:{m}" for m in members])
    )
    routed = select(OUTBOX.c.id).where(
        OUTBOX.c.lead_id == lead_id, OUTBOX.c.destination.in_([f"slack:@{m}" for m in members])
    )
    return or_(exists(claimed), exists(routed))


def _during(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _named() -> tuple[Any, ...]:
    """The lead columns ``_name`` reads."""
    return (LEADS.c.id, LEADS.c.name, LEADS.c.email, LEADS.c.company)


def _name(row: Any) -> LeadName:
    return LeadName(row.id, row.name, row.email, row.company)


def _entered_hot() -> ColumnElement[bool]:
    return and_(
        HISTORY.c.band == HOT,
        or_(HISTORY.c.previous_band.is_(None), HISTORY.c.previous_band != HOT),
    )


def hot_entries(
    conn: Connection, *, start: datetime, end: datetime, members: Sequence[str] | None = None
) -> list[HotEntry]:
    """Leads that entered hot in the period, first entry each, oldest first."""
    first = (
        select(HISTORY.c.lead_id, func.min(HISTORY.c.at).label("at"))
        .where(_entered_hot(), _during(HISTORY.c.at, start, end))
        .where(in_scope(HISTORY.c.lead_id, members))
        .group_by(HISTORY.c.lead_id)
        .subquery()
    )
    entry_score = (
        select(HISTORY.c.score)
        .where(HISTORY.c.lead_id == first.c.lead_id, HISTORY.c.at == first.c.at, _entered_hot())
        .order_by(HISTORY.c.id)
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(
            *_named(),
            LEADS.c.claimed_by,
            LEADS.c.claimed_at,
            first.c.at,
            entry_score.label("score"),
        )
        .join(first, first.c.lead_id == LEADS.c.id)
        .order_by(first.c.at, LEADS.c.id)
    )
    return [
        HotEntry(_name(r), r.at, float(r.score), r.claimed_by, r.claimed_at)
        for r in conn.execute(query)
    ]


def _latest(column: Any, *where: ColumnElement[bool]) -> Any:
    return select(func.max(column)).where(*where).scalar_subquery()


def waiting_hot(
    conn: Connection, *, now: datetime, members: Sequence[str] | None = None
) -> list[HotLead]:
    """Known leads hot now with no claim, no feedback and no snooze running at ``now``,
    hottest first, with the moment their wait started (``HotLead.since``)."""
    turned = _latest(HISTORY.c.at, HISTORY.c.lead_id == LEADS.c.id, _entered_hot())
    posted = _latest(POSTS.c.posted_at, POSTS.c.lead_id == LEADS.c.id)
    judged = exists(select(FEEDBACK.c.id).where(FEEDBACK.c.lead_id == LEADS.c.id))
    query = select(
        *_named(),
        LEADS.c.score,
        LEADS.c.alerted_at,
        turned.label("turned"),
        posted.label("posted"),
    ).where(
        LEADS.c.band == HOT,
        LEADS.c.anonymous.is_(False),
        LEADS.c.claimed_by.is_(None),
        or_(LEADS.c.snoozed_until.is_(None), LEADS.c.snoozed_until <= now),
        ~judged,
        in_scope(LEADS.c.id, members),
    )  # sorted here: an ORDER BY score would lead SQLite's planner to walk ix_leads_ranked
    out = []  # through every lead instead of reading the hot ones from ix_leads_band
    for r in sorted(conn.execute(query), key=lambda r: (-r.score, r.id)):
        moments = [t for t in (r.alerted_at, r.turned, r.posted) if t is not None]
        out.append(HotLead(_name(r), float(r.score), max(moments, default=None)))
    return out


def funnel(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    members: Sequence[str] | None = None,
    positive: Collection[str] = ("qualified", "won"),
) -> dict[str, int]:
    """Counts of distinct leads in the period: ``new`` (first seen), ``hot`` (entered hot),
    ``claimed``, ``qualified`` (a ``positive`` outcome: won counts as qualified too) and
    ``won``."""

    def count(table: Any, column: Any, *where: ColumnElement[bool]) -> int:
        key = table.c.id if table is LEADS else table.c.lead_id
        query = select(func.count(func.distinct(key))).where(
            _during(column, start, end), in_scope(key, members), *where
        )
        return int(conn.execute(query).scalar_one())

    return {
        "new": count(LEADS, LEADS.c.first_seen_at, LEADS.c.anonymous.is_(False)),
        "hot": count(HISTORY, HISTORY.c.at, _entered_hot()),
        "claimed": count(LEADS, LEADS.c.claimed_at),
        "qualified": count(FEEDBACK, FEEDBACK.c.at, FEEDBACK.c.outcome.in_(list(positive))),
        "won": count(FEEDBACK, FEEDBACK.c.at, FEEDBACK.c.outcome == "won"),
    }


def labels(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    outcomes: Collection[str],
    members: Sequence[str] | None = None,
) -> list[Label]:
    """Feedback rows in the period whose outcome is a label, oldest first."""
    query = (
        select(
            FEEDBACK.c.lead_id,
            FEEDBACK.c.outcome,
            FEEDBACK.c.at,
            FEEDBACK.c.features,
            FEEDBACK.c.source,
        )
        .where(
            _during(FEEDBACK.c.at, start, end),
            FEEDBACK.c.outcome.in_(list(outcomes)),
            in_scope(FEEDBACK.c.lead_id, members),
        )
        .order_by(FEEDBACK.c.at, FEEDBACK.c.id)
    )
    return [
        Label(r.lead_id, r.outcome, r.at, dict(r.features or {}), r.source or "rep")
        for r in conn.execute(query)
    ]


def claims(
    conn: Connection, *, start: datetime, end: datetime, members: Sequence[str] | None = None
) -> list[Claim]:
    """Claims made in the period with the latest alert before each: the alert's post, else
    the lead's ``alerted_at``, else its latest entry into hot, at or before the claim."""
    claimed_at = LEADS.c.claimed_at
    posted = _latest(
        POSTS.c.posted_at, POSTS.c.lead_id == LEADS.c.id, POSTS.c.posted_at <= claimed_at
    )
    turned = _latest(
        HISTORY.c.at, HISTORY.c.lead_id == LEADS.c.id, _entered_hot(), HISTORY.c.at <= claimed_at
    )
    alerted = case((LEADS.c.alerted_at <= claimed_at, LEADS.c.alerted_at), else_=None)
    query = (
        select(
            LEADS.c.id,
            LEADS.c.claimed_by,
            claimed_at,
            posted.label("posted"),
            alerted.label("alerted"),
            turned.label("turned"),
        )
        .where(LEADS.c.claimed_by.is_not(None), _during(claimed_at, start, end))
        .where(in_scope(LEADS.c.id, members))
        .order_by(claimed_at, LEADS.c.id)
    )
    out = []
    for r in conn.execute(query):
        alert = next((t for t in (r.posted, r.alerted, r.turned) if t is not None), None)
        out.append(Claim(r.id, r.claimed_by, r.claimed_at, alert))
    return out


def movers(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    members: Sequence[str] | None = None,
    limit: int = 5,
    rising: bool = True,
) -> list[Move]:
    """The leads whose score moved most in the period (``rising``: up, else down), by the
    net change from the first history row's previous score (0 for a new lead) to the last
    row's score. Rescores by a model version are left out."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    order = (HISTORY.c.at, HISTORY.c.id)
    ranked = (
        select(
            HISTORY.c.lead_id,
            HISTORY.c.score,
            HISTORY.c.previous_score,
            func.row_number().over(partition_by=HISTORY.c.lead_id, order_by=order).label("first"),
            func.row_number()
            .over(partition_by=HISTORY.c.lead_id, order_by=[c.desc() for c in order])
            .label("last"),
        )
        .where(_during(HISTORY.c.at, start, end), ~HISTORY.c.cause.like(RESCORE_CAUSE))
        .where(in_scope(HISTORY.c.lead_id, members))
        .subquery()
    )
    before = func.coalesce(ranked.c.previous_score, 0.0)
    net = (
        func.sum(case((ranked.c.last == 1, ranked.c.score), else_=0.0))
        - func.sum(case((ranked.c.first == 1, before), else_=0.0))
    ).label("change")
    nets = select(ranked.c.lead_id, net).group_by(ranked.c.lead_id).subquery()
    query = (
        select(
            *_named(),
            LEADS.c.score,
            LEADS.c.band,
            nets.c.change,
        )
        .join(nets, nets.c.lead_id == LEADS.c.id)
        .where(nets.c.change > 0 if rising else nets.c.change < 0)
        .order_by(nets.c.change.desc() if rising else nets.c.change, LEADS.c.id)
        .limit(limit)
    )
    return [Move(_name(r), float(r.change), float(r.score), r.band) for r in conn.execute(query)]


def count_labels_since(
    conn: Connection, *, since: datetime | None, outcomes: Collection[str]
) -> int:
    """Feedback rows with a label outcome at or after ``since`` (all of them when None)."""
    query = select(func.count()).where(FEEDBACK.c.outcome.in_(list(outcomes)))
    if since is not None:
        query = query.where(FEEDBACK.c.at >= since)
    return int(conn.execute(query).scalar_one())


def latest_activity(conn: Connection) -> datetime | None:
    """When the newest lead activity happened, or None without leads: the "now" of a
    replayed or imported history (``leadbot digest --now latest``)."""
    newest: datetime | None = conn.execute(select(func.max(LEADS.c.last_event_at))).scalar_one()
    return newest
