"""Alert buttons (Claim, Qualified, Disqualify, Snooze) and the feedback they share with
``/lead feedback``: chat-agnostic, so Slack and Teams adapters only render the result.

Every judgement stores the lead's feature values at the moment of the click — the row the
learner fits on — never values from later events.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.messages import Action, Actor, DisqualifyReason, Outcome
from scoring import LeadState, Model
from scoring.bands import Thresholds
from scoring.engine import feature, score
from scoring.snapshot import lead_snapshot
from storage.claims import claim_lead, snooze_lead
from storage.engine import session_factory
from storage.feedback import latest_feedback, record_feedback
from storage.labels import event_counts
from storage.tables import Feedback, Lead

HOUR = 3600.0


def at(now: float) -> datetime:
    """Unix seconds as the UTC datetime storage takes."""
    return datetime.fromtimestamp(now, UTC)


def _seconds(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def lead_label(lead: Lead) -> str:
    """``Dana Reyes (AcmeSoft)``: how replies and notices name a lead."""
    who = lead.name or lead.email or lead.id
    return f"{who} ({lead.company})" if lead.company else who


def features_at(
    state: LeadState,
    model: Model,
    now: float,
    thresholds: Thresholds | None = None,
    events: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The snapshot stored with a label: totals, the band the rep saw (by ``thresholds``,
    the live edges), every rule's feature value at ``now`` (zeros included, so the
    learner sees which rules did not fire) and, under ``lead``, the lead's traits and
    ``events``, its event counts up to ``now`` (``storage.labels.event_counts``), as
    ``scoring.snapshot`` keeps them: what new rules are built from."""
    result = score(state, model, now, thresholds, explain=False)
    return {
        "model": model.name,
        "at": now,
        "score": result.total,
        "band": str(result.band),
        "fit": result.fit,
        "intent": result.intent,
        "rules": {rule.id: feature(rule, state, now) for rule in model.rules},
        "lead": lead_snapshot(state.traits, events or {}),
    }


def _reason_pattern(reason: DisqualifyReason) -> re.Pattern[str]:
    words = r"[\s_\-]+".join(re.escape(w) for w in reason.value.split())
    return re.compile(rf"\s*{words}(?![\w])[\s:,;.\-—]*(?P<rest>.*)", re.IGNORECASE | re.DOTALL)


# Built from the enum, so a new reason is understood everywhere without retyping it.
_REASONS = [(reason, _reason_pattern(reason)) for reason in DisqualifyReason]


def split_reason(text: str) -> tuple[DisqualifyReason | None, str]:
    """The ``DisqualifyReason`` the text starts with (any case; ``no-budget``,
    ``NO_BUDGET`` and ``no budget`` alike) and the rest of the text."""
    for reason, pattern in _REASONS:
        found = pattern.match(text)
        if found is not None:
            return reason, found["rest"].strip()
    return None, text.strip()


def canonical_reason(outcome: Outcome, text: str | None) -> str | None:
    """Free text for the feedback row; a disqualification that starts with a known reason
    keeps it in canonical form first (``no budget: until Q3``)."""
    if not text or not text.strip():
        return None
    if outcome is not Outcome.DISQUALIFIED:
        return text.strip()
    reason, rest = split_reason(text)
    if reason is None:
        return rest
    return f"{reason.value}: {rest}" if rest else reason.value


async def judge(
    session: AsyncSession,
    *,
    lead: Lead,
    outcome: Outcome,
    reason: str | None,
    actor: Actor,
    model: Model,
    now: float,
    thresholds: Thresholds | None = None,
) -> Feedback:
    """Store a label with the lead's features at ``now``. Does not commit."""
    conn = await session.connection()
    until = at(now)
    events = await conn.run_sync(lambda c: event_counts(c, lead_id=lead.id, until=until))
    features = features_at(LeadState.from_dict(lead.state), model, now, thresholds, events)
    return await record_feedback(
        session,
        lead_id=lead.id,
        outcome=outcome.value,
        reason=reason,
        by=actor.ref,
        at=at(now),
        features=features,
    )


@dataclass(frozen=True)
class ActionResult:
    """The lead's state after a click (times in unix seconds) for the adapter to redraw
    the alert; ``changed`` is False when the click did nothing (a lost claim race, a
    repeated judgement); ``notice`` is for the clicker only, with actor refs
    (``slack:U123``) that the adapter turns into mentions."""

    state: dict[str, Any]
    changed: bool
    notice: str | None = None


# What a click stored, in the words a rep reads when the alert could not show it.
STORED = {
    Action.CLAIM: "Claimed",
    Action.QUALIFY: "Qualified",
    Action.DISQUALIFY: "Disqualified",
    Action.SNOOZE: "Snoozed",
}


def not_refreshed(action: Action) -> str:
    """For the clicker when ``apply_action`` committed but the alert could not be redrawn
    (the update failed, the post is unknown): what was stored. Never "nothing was
    changed", which is only true of a failure before the commit."""
    return f"{STORED[action]} — I couldn't refresh the alert."


def decision_not_refreshed(decision: str) -> str:
    """The same for a manager's decision on a proposal (``describe``'s sentence), stored
    before its message could be updated."""
    return f"{decision} (I couldn't refresh the proposal message.)"


def disqualify_reason(reason: str | None, note: str | None = None) -> str:
    """The disqualification as stored: ``reason`` must start with a ``DisqualifyReason``;
    free text after it, or in ``note`` (a form's text field), is kept after a colon, as
    ``/lead feedback`` keeps it."""
    found, _ = split_reason(reason or "")
    if found is None:
        allowed = ", ".join(r.value for r in DisqualifyReason)
        raise ValueError(f"reason must be one of {allowed}; got {reason!r}")
    stored = canonical_reason(Outcome.DISQUALIFIED, reason) or found.value
    note = (note or "").strip()
    if not note:
        return stored
    return f"{stored}: {note}" if stored == found.value else f"{stored}; {note}"


async def _action_state(session: AsyncSession, lead: Lead) -> dict[str, Any]:
    await session.refresh(lead)
    latest = await latest_feedback(session, lead_id=lead.id)
    return {
        "claimed_by": lead.claimed_by,
        "claimed_at": _seconds(lead.claimed_at),
        "outcome": latest.outcome if latest else None,
        "outcome_by": latest.by if latest else None,
        "reason": latest.reason if latest else None,
        "snoozed_until": _seconds(lead.snoozed_until),
    }


async def _claim(session: AsyncSession, lead: Lead, actor: Actor, now: float) -> str | None:
    """None when the claim won; else the notice for the clicker."""
    if await claim_lead(session, lead_id=lead.id, by=actor.ref, at=at(now)):
        return None
    await session.refresh(lead)
    if lead.claimed_by == actor.ref:
        return f"You have already claimed {lead_label(lead)}."
    return f"{lead_label(lead)} is already claimed by {lead.claimed_by}"


@dataclass(frozen=True, slots=True)
class _Scoring:
    model: Model
    now: float
    thresholds: Thresholds | None


async def _judge_once(
    session: AsyncSession,
    lead: Lead,
    outcome: Outcome,
    reason: str | None,
    actor: Actor,
    scoring: _Scoring,
) -> str | None:
    """Store the judgement unless it is the one that already stands (one label per
    decision, not one per click); returns the notice for a repeat."""
    latest = await latest_feedback(session, lead_id=lead.id)
    if latest is not None and (latest.outcome, latest.reason) == (outcome.value, reason):
        return f"{lead_label(lead)} is already marked {outcome.value} by {latest.by}"
    await judge(
        session, lead=lead, outcome=outcome, reason=reason, actor=actor,
        model=scoring.model, now=scoring.now, thresholds=scoring.thresholds,
    )  # fmt: skip
    return None


async def apply_action(
    *,
    engine: AsyncEngine,
    model: Model,
    action: Action,
    lead_id: str,
    actor: Actor,
    now: float,
    reason: str | None = None,
    note: str | None = None,
    snooze_hours: float = 24,
    thresholds: Thresholds | None = None,
) -> ActionResult:
    """Apply one button click in its own transaction and return the lead's new state.

    ``reason`` is required for Disqualify; ``note`` is free text kept with a Qualify or
    Disqualify; ``thresholds`` are the live band edges the stored label's band is read
    with (the model's fixed or floor edges when None). Raises ValueError for an unknown
    lead, a disqualification without a known reason, or a snooze that is not in the future;
    nothing is changed then."""
    if action is Action.SNOOZE and not snooze_hours > 0:
        raise ValueError(f"snooze_hours must be more than 0, got {snooze_hours!r}")
    why: str | None = (note or "").strip() or None
    if action is Action.DISQUALIFY:
        why = disqualify_reason(reason, note)
    async with session_factory(engine)() as session:
        lead = await session.get(Lead, lead_id)
        if lead is None:
            raise ValueError(f"no lead with id {lead_id!r}: it may have been merged or deleted")
        if action is Action.CLAIM:
            notice = await _claim(session, lead, actor, now)
        elif action is Action.SNOOZE:
            await snooze_lead(session, lead_id=lead.id, until=at(now + snooze_hours * HOUR))
            notice = None
        else:
            outcome = Outcome.QUALIFIED if action is Action.QUALIFY else Outcome.DISQUALIFIED
            scoring = _Scoring(model, now, thresholds)
            notice = await _judge_once(session, lead, outcome, why, actor, scoring)
        await session.commit()
        return ActionResult(await _action_state(session, lead), notice is None, notice)
