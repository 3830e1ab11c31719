"""Follow-ups about a lead already alerted, as Adaptive Cards: the SLA reminder, the
escalation to the managers, and the "cooling down" notice of the decay sweep, built at send
time from ``bot.outbox.messages`` (``SlaReminder``, ``SlaEscalation``, ``CoolingMessage``).
The scheduled digest's card is ``bot/teams/digest_card.py``.
"""

from __future__ import annotations

from bot.jobs.sla import waited
from bot.outbox.messages import CoolingMessage, Kind, LeadRef, SlaEscalation, SlaReminder
from bot.teams.card_parts import (
    Card,
    Element,
    card,
    clip,
    fit_card,
    heading,
    plain,
    subtle,
    text,
)

FOLLOWUPS = ", ".join((Kind.SLA_REMINDER, Kind.SLA_ESCALATION, Kind.COOLING))
NAME_MAX = 80
FollowUp = SlaReminder | SlaEscalation | CoolingMessage


def followup_card(message: FollowUp) -> Card:
    """The card for an ``sla_reminder``, ``sla_escalation`` or ``cooling`` message."""
    if isinstance(message, SlaReminder):
        body = _reminder(message)
    elif isinstance(message, SlaEscalation):
        body = _escalation(message)
    elif isinstance(message, CoolingMessage):
        body = _cooling(message)
    else:
        raise ValueError(f"follow-up {type(message).__name__}: expected one of {FOLLOWUPS}")
    return fit_card(lambda _: card(body, summary=clip(message.text, 500)), (0,), message.kind)


def who(lead: LeadRef) -> str:
    """``Dana Reyes (AcmeSoft)``, inert and clipped."""
    name = clip(lead.shown, NAME_MAX)
    return f"{name} ({clip(lead.company, NAME_MAX)})" if lead.company else name


def place(destination: str) -> str:
    """Where an alert went, for a Teams reader (ids there mean nothing to people)."""
    platform, _, target = destination.partition(":")
    if platform == "teams":
        kind = target.partition(":")[0]
        return {"user": "a rep's chat", "default": "the default Teams channel"}.get(
            kind, "a Teams conversation"
        )
    if platform == "slack":
        if target.startswith("#"):
            return f"Slack {clip(target, 80)}"
        return "a Slack DM" if target.startswith(("@", "D")) else "a Slack channel"
    return clip(destination, 80)


def _routed(message: SlaEscalation | SlaReminder) -> str:
    count = len(message.routed_to)
    return f"routed to {count} rep{'s' if count != 1 else ''}" if count else ""


def _context(message: SlaEscalation | SlaReminder) -> list[Element]:
    places = sorted({place(d) for d in message.alerted_in})
    parts = [f"Alerted in {', '.join(places)}"] if places else []
    if _routed(message):
        parts.append(_routed(message))
    return [subtle(" · ".join(parts))] if parts else []


def _reminder(message: SlaReminder) -> list[Element]:
    return [
        text(
            f"⏰ **Still waiting:** {who(message.lead)} is hot (score {message.score:.1f}) and "
            f"was alerted {waited(message.hours_waiting)} ago; nobody has claimed it or given "
            "feedback yet. Claim it with the alert's buttons."
        ),
        *_context(message),
    ]


def _escalation(message: SlaEscalation) -> list[Element]:
    lead = message.lead
    email = f" · {clip(lead.email, 200)}" if lead.email else ""
    return [
        heading(f"SLA missed: {clip(lead.shown, 120)}"),
        text(f"{who(lead)}{email}"),
        text(
            f"A hot lead (score {message.score:.1f}) has waited "
            f"**{waited(message.hours_waiting)}** since its alert, with no claim and no feedback."
        ),
        *_context(message),
    ]


def _cooling(message: CoolingMessage) -> list[Element]:
    before, after = plain(message.before), plain(message.after)
    return [
        text(
            f"❄️ {who(message.lead)} is cooling down: {before} → {after} "
            f"(score {message.score:.1f})."
        )
    ]
