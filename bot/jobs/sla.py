"""SLA follow-up: a hot lead nobody acts on gets a reminder in its alert's thread, then an
escalation to the managers.

``sla_sweep`` is what the scheduler runs (every 15 minutes by default). In one transaction
it reads the leads that are waiting — band hot, known, unclaimed, not snoozed at ``now``, no
feedback since their last alert — and queues through the outbox:

- ``sla_reminder`` once ``sla.remind_after_hours`` have passed since the alert: one per place
  the alert was posted (``alert_posts``; the alert's outbox destinations when it has no post,
  e.g. on the console), with ``thread_of`` so a chat transport replies in the alert's thread;
- ``sla_escalation`` once ``sla.escalate_after_hours`` have passed: to ``sla.escalate_to``,
  else the managers (``bot.models.learning.manager_destinations``), else the alert's channel.

Dedupe keys carry the lead, the alert's time and the destination, so a sweep repeated (or
run by two replicas) queues nothing twice, and a new alert about the lead starts a new
cycle. Stopping is part of the query: a claim, a feedback or a snooze takes the lead out of
it, and a lead that cooled below hot leaves it too.

Stop-on-claim at delivery is deliberately not re-checked: a message is queued only once it
is due and the dispatcher delivers it within seconds, so the window in which a claim could
overtake a queued reminder is that short (longer only during a chat outage, when a late
reminder is harmless). Checking again at delivery would need SQL in every transport.

The messages are ``bot.outbox.messages.SlaReminder`` and ``SlaEscalation`` (data; each chat
adapter renders them); a reminder carries ``thread_of``, an escalation stands on its own
where managers read it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.plain import clean
from bot.chat.routing import CONSOLE
from bot.models.learning import manager_destinations
from bot.outbox.messages import (
    Kind,
    LeadRef,
    Message,
    SlaEscalation,
    SlaReminder,
    outbox_row,
)
from config.loader import LeadbotConfig
from storage import offloop
from storage.ingest import enqueue
from storage.sweeps import (
    DueLead,
    alerts_queued_since_alert,
    due_for_follow_up,
    latest_alert_post,
    posts_since_alert,
)

REMINDER = Kind.SLA_REMINDER
ESCALATION = Kind.SLA_ESCALATION
Row = dict[str, Any]
HOT = "hot"
SLACK = "slack:"
TEAMS = "teams:"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A hot lead waiting since its last alert, and where that alert went."""

    lead: dict[str, Any]  # id, email, name, company
    score: float
    band: str
    alerted_at: datetime
    alerted_in: tuple[str, ...]  # outbox-style destinations: slack:C…, console
    routed_to: tuple[str, ...]  # Slack user ids the alert was sent to directly


def lead_label(lead: Mapping[str, Any]) -> str:
    """``Dana Reyes (AcmeSoft)`` as one clean line of text."""
    who = clean(lead.get("name") or lead.get("email") or lead["id"])
    return f"{who} ({clean(lead['company'])})" if lead.get("company") else who


def waited(hours: float) -> str:
    """``40 min``, ``4 h``, ``3.5 days``."""
    if hours < 1:
        return f"{max(0, round(hours * 60))} min"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


def reminder_text(lead: Mapping[str, Any], score: float, hours: float) -> str:
    return (
        f"Reminder: {lead_label(lead)} is still waiting. Hot lead, score {score:.1f}, alerted "
        f"{waited(hours)} ago; nobody has claimed it or given feedback yet."
    )


def escalation_text(lead: Mapping[str, Any], score: float, hours: float) -> str:
    return (
        f"SLA missed: {lead_label(lead)}, a hot lead (score {score:.1f}), has waited "
        f"{waited(hours)} since its alert with no claim and no feedback."
    )


def escalation_destinations(config: LeadbotConfig, alerted_in: Sequence[str]) -> tuple[str, ...]:
    """``sla.escalate_to``, else the managers, else the alert's channel. An alert that went
    to the console (no chat platform) is escalated there too."""
    slack = [d for d in alerted_in if d.startswith(SLACK)]
    teams = any(d.startswith(TEAMS) for d in alerted_in)
    if not slack and not teams:
        return tuple(alerted_in[:1]) or (CONSOLE,)
    if config.sla.escalate_to and slack:
        return (f"{SLACK}{config.sla.escalate_to}",)
    channel = slack[0].removeprefix(SLACK) if slack else None
    return manager_destinations(config.learning, config.managers, channel, teams=teams)


def _due(conn: Connection, *, now: datetime, since: datetime) -> list[DueLead]:
    """Waiting leads alerted at or before ``since`` and not escalated for that alert yet."""
    return due_for_follow_up(conn, now=now, since=since, escalation=ESCALATION)


def _where_alerted(
    conn: Connection, ids: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per lead: where its last alert was posted, and the destinations it was queued for."""
    posted: dict[str, list[str]] = defaultdict(list)
    queued: dict[str, list[str]] = defaultdict(list)
    for lead_id, platform, channel in posts_since_alert(conn, ids):
        # A Teams post's channel is its conversation id; the outbox names it that way.
        where = f"{TEAMS}conversation:{channel}" if platform == "teams" else f"{platform}:{channel}"
        _add(posted[lead_id], where)
    for lead_id, destination in alerts_queued_since_alert(conn, ids):
        _add(queued[lead_id], destination)
    return posted, queued


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def waiting_leads(conn: Connection, *, now: datetime, since: datetime) -> list[Waiting]:
    """The leads ``sla_sweep`` follows up, with where their last alert went."""
    rows = _due(conn, now=now, since=since)
    if not rows:
        return []
    posted, queued = _where_alerted(conn, [r.id for r in rows])
    out = []
    for r in rows:
        sent_to = queued.get(r.id, [])
        routed = tuple(d.removeprefix(f"{SLACK}@") for d in sent_to if d.startswith(f"{SLACK}@"))
        out.append(
            Waiting(
                lead={"id": r.id, "email": r.email, "name": r.name, "company": r.company},
                score=float(r.score), band=str(r.band), alerted_at=r.alerted_at,
                alerted_in=tuple(posted.get(r.id) or sent_to), routed_to=routed,
            )
        )  # fmt: skip
    return out


def _row(key: str, lead: Waiting, destination: str, message: Message, now: float) -> Row:
    alert = int(lead.alerted_at.timestamp())
    return outbox_row(
        message, destination=destination, lead_id=lead.lead["id"], now=now,
        dedupe_key=f"{key}:{lead.lead['id']}:{alert}:{destination}",
    )  # fmt: skip


def follow_ups(lead: Waiting, config: LeadbotConfig, now: float) -> list[Row]:
    """The outbox rows due for ``lead`` at ``now``: reminders, and the escalation once due."""
    hours = (now - lead.alerted_at.timestamp()) / 3600
    base: dict[str, Any] = {
        "lead": LeadRef.from_json(lead.lead), "score": round(lead.score, 1), "band": lead.band,
        "hours_waiting": round(hours, 1), "alerted_at": lead.alerted_at.isoformat(),
        "alerted_in": lead.alerted_in, "routed_to": lead.routed_to,
    }  # fmt: skip
    reminder = SlaReminder(**base, text=reminder_text(lead.lead, lead.score, hours))
    rows = [_row("sla-remind", lead, d, reminder, now) for d in lead.alerted_in or (CONSOLE,)]
    # Compared as datetimes, like the query: both sides rounded to the microsecond alike.
    due = datetime.fromtimestamp(now, UTC) - timedelta(hours=config.sla.escalate_after_hours)
    if lead.alerted_at <= due:
        escalation = SlaEscalation(**base, text=escalation_text(lead.lead, lead.score, hours))
        rows += [
            _row("sla-escalate", lead, d, escalation, now)
            for d in escalation_destinations(config, lead.alerted_in)
        ]
    return rows


async def sla_sweep(engine: AsyncEngine, *, config: LeadbotConfig, now: float) -> int:
    """Queue the reminders and escalations due at ``now`` (unix seconds); returns how many
    outbox messages were added (those queued by an earlier sweep are not counted)."""
    moment = datetime.fromtimestamp(now, UTC)
    since = moment - timedelta(hours=config.sla.remind_after_hours)

    def sweep(conn: Connection) -> int:
        rows = [
            row
            for lead in waiting_leads(conn, now=moment, since=since)
            for row in follow_ups(lead, config, now)
        ]
        return enqueue(conn, rows=rows)

    return await offloop.write(engine, sweep)


async def alert_thread(
    engine: AsyncEngine, *, lead_id: str, platform: str, channel: str
) -> str | None:
    """The message id (Slack ``ts``) of the lead's latest alert posted in ``channel``: the
    thread a follow-up about the lead replies in. None when no alert of it is there."""
    return await latest_alert_post(engine, lead_id=lead_id, platform=platform, channel=channel)
