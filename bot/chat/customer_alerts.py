"""The "slipping customer" alert, chat-agnostic: queued when the RFM recompute moves a
customer the config's ``rfm.alert_moves`` flags (Champions/Loyal → At risk/Can't lose
them), and its buttons ("Reached out", "Snooze", "Not a concern").

The outbox rows are written by ``queue_alerts`` inside the recompute's write transaction
(``bot.jobs.rfm``'s ``on_moves``): a crash before the commit loses both the segment change
and its alert, so the next run finds the move again and queues it then; after the commit
the move is history, and no later run alerts it again. The dedupe key is the lead id, the
recompute's time and the destination. Alerts are routed like lead alerts, on the lead's
traits plus ``rfm_segment`` (the segment it moved to), so routing rules can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.alerts import iso
from bot.chat.messages import Actor
from bot.chat.routing import Router
from bot.jobs.rfm import Move, OnMoves, Recomputed, recompute_rfm
from bot.outbox.messages import CustomerAtRisk, LeadRef, outbox_row
from config.rfm import Rfm
from scoring import LeadState
from scoring.rfm import DAY
from storage import customer_alerts as repo
from storage.ingest import enqueue

SEGMENT_TRAIT = "rfm_segment"  # what routing conditions read the customer's segment as


class CustomerAction(StrEnum):
    """The buttons on a customer alert."""

    REACHED_OUT = "reached_out"
    SNOOZE = "snooze"
    NOT_A_CONCERN = "not_a_concern"


LABELS = {
    CustomerAction.REACHED_OUT: "Reached out",
    CustomerAction.SNOOZE: "Snooze",
    CustomerAction.NOT_A_CONCERN: "Not a concern",
}
DONE = {
    CustomerAction.REACHED_OUT: "Reached out",
    CustomerAction.SNOOZE: "Snoozed",
    CustomerAction.NOT_A_CONCERN: "Marked not a concern",
}


def _amount(value: float) -> str:
    return f"{value:,.0f}"


def _days(value: float) -> str:
    n = round(value)
    return f"{n} day{'' if n == 1 else 's'}"


def why(move: Move, rfm: Rfm) -> str:
    """``last order 94 days ago, usually every 21 days; 14,200 EUR in the last year``."""
    parts = [f"last order {_days(move.recency_days)} ago"]
    if move.interval_days is not None:
        parts.append(f"usually every {_days(move.interval_days)}")
    window = "the last year" if rfm.window_days == 365 else f"the last {_days(rfm.window_days)}"
    return f"{', '.join(parts)}; {_amount(move.revenue)} {rfm.currency} in {window}"


def alert_message(move: Move, lead: Mapping[str, Any], rfm: Rfm, *, now: float) -> CustomerAtRisk:
    ref = LeadRef(str(lead["id"]), lead.get("email"), lead.get("name"), lead.get("company"))
    text = f"{ref.shown} slipped from {move.source} to {move.to}: {why(move, rfm)}"
    return CustomerAtRisk(
        ref, move.source or "", move.to, move.cell, round(move.recency_days, 1),
        None if move.interval_days is None else round(move.interval_days, 1),
        round(move.revenue, 2), rfm.currency, now, text,
    )  # fmt: skip


def queue_alerts(
    conn: Connection, moves: Sequence[Move], *, rfm: Rfm, router: Router, now: float
) -> int:
    """Outbox rows for the flagged moves, in the caller's transaction; a customer under a
    snooze gets none. Returns the rows added."""
    flagged = [m for m in moves if m.alert]
    if not flagged:
        return 0
    quiet = repo.snoozed(conn, (m.lead_id for m in flagged), now=now)
    leads = repo.alert_leads(conn, (m.lead_id for m in flagged))
    rows = []
    for move in flagged:
        lead = leads.get(move.lead_id)
        if move.lead_id in quiet or lead is None:
            continue
        traits = {**LeadState.from_dict(lead["state"] or {}).traits, SEGMENT_TRAIT: move.to}
        message = alert_message(move, lead, rfm, now=now)
        for dest in router.destinations(traits):
            key = f"{message.kind}:{move.lead_id}:{now:.3f}:{dest}"
            rows.append(
                outbox_row(message, destination=dest, dedupe_key=key, now=now, lead_id=lead["id"])
            )
    return enqueue(conn, rows=rows)


def alerting(rfm: Rfm, router: Router, *, now: float) -> OnMoves:
    """The recompute's ``on_moves``: queue the flagged moves' alerts with their change."""

    def on_moves(conn: Connection, moves: Sequence[Move]) -> None:
        queue_alerts(conn, moves, rfm=rfm, router=router, now=now)

    return on_moves


async def recompute_and_alert(
    engine: AsyncEngine, rfm: Rfm, *, router: Router, now: float
) -> Recomputed:
    """``recompute_rfm`` with the alerts of its flagged moves queued in its transactions."""
    return await recompute_rfm(engine, rfm, now=now, on_moves=alerting(rfm, router, now=now))


@dataclass(frozen=True)
class CustomerActionResult:
    """The customer's alert state after a click: the stored action (``action``, ``by``,
    ``at``, ``snoozed_until``, unix seconds) for the adapter to redraw the alert."""

    lead_id: str
    state: dict[str, Any]


async def apply_customer_action(
    engine: AsyncEngine,
    *,
    action: CustomerAction,
    lead_id: str,
    actor: Actor,
    rfm: Rfm,
    now: float,
) -> CustomerActionResult:
    """Store one click (who, when; a snooze until ``now + rfm.snooze_days``) in its own
    transaction. ValueError for an unknown lead; nothing is stored then."""
    until = now + rfm.snooze_days * DAY if action is CustomerAction.SNOOZE else None
    async with engine.begin() as conn:
        known = await conn.run_sync(lambda c: repo.alert_leads(c, [lead_id]))
        if lead_id not in known:
            raise ValueError(f"no lead with id {lead_id!r}: it may have been merged or deleted")
        await conn.run_sync(
            lambda c: repo.record_action(
                c, lead_id=lead_id, action=action.value, by=actor.ref, at=now, snoozed_until=until
            )
        )
        state = await conn.run_sync(lambda c: repo.latest_action(c, lead_id))
    return CustomerActionResult(lead_id, state or {})


def done_line(state: Mapping[str, Any], name: str) -> str | None:
    """``Snoozed by Riley until 2026-12-17`` (``name``: the actor ref as the platform shows
    it); None before any click."""
    action = state.get("action")
    if not action:
        return None
    text = f"{DONE[CustomerAction(action)]} by {name}"
    until = state.get("snoozed_until")
    if until:
        text += f" until {iso(until)[:10]}"
    return text


async def rfm_job(
    engine: AsyncEngine,
    rfm: Rfm,
    *,
    router: Router,
    now: float,
    on_queued: Callable[[], None] | None = None,
) -> str:
    """The scheduler's ``rfm`` job: recompute, queue the alerts, wake the outbox."""
    done = await recompute_and_alert(engine, rfm, router=router, now=now)
    if on_queued is not None and any(m.alert for m in done.moves):
        on_queued()
    return done.summary()


def remaining(state: Mapping[str, Any] | None) -> tuple[CustomerAction, ...]:
    """The buttons still useful: all before a click; after a snooze the two decisions;
    none once someone reached out or said it is not a concern."""
    action = (state or {}).get("action")
    if action is None:
        return tuple(CustomerAction)
    if action == CustomerAction.SNOOZE:
        return (CustomerAction.REACHED_OUT, CustomerAction.NOT_A_CONCERN)
    return ()
