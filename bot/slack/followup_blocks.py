"""Follow-ups about a lead already alerted, as Block Kit: the SLA reminder (posted in the
alert's thread), the escalation to the managers, and the "cooling down" notice of the decay
sweep.

Built from ``bot.outbox.messages`` (``SlaReminder``, ``SlaEscalation``, ``CoolingMessage``) at
send time. Lead data reaches Slack
only through ``clip``/``escape``; people and channels are ids from our own rows, shown as
mentions. The fallback text is the message's plain ``text``, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock

from bot.jobs.sla import waited
from bot.outbox.messages import CoolingMessage, LeadRef, SlaEscalation, SlaReminder
from bot.slack.blocks import clip, escape, fallback, header, mrkdwn, render, section, user_mention

NAME_MAX = 80
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")


def who(lead: LeadRef) -> str:
    """``Dana Reyes (AcmeSoft)``, escaped and clipped."""
    name = clip(lead.shown, NAME_MAX)
    return f"{name} ({clip(lead.company, NAME_MAX)})" if lead.company else name


def place(destination: str) -> str | None:
    """Where an alert went, for a reader: ``<#C123>``, ``#sales``, a DM; None for others."""
    platform, _, target = destination.partition(":")
    if platform != "slack" or not target:
        return None
    if _CHANNEL_ID.fullmatch(target):
        return f"<#{target}>"
    if target.startswith("@"):
        return user_mention(target[1:], field="alerted_in") + "'s DM"
    if target.startswith("D"):
        return "a direct message"
    return escape(target)


def _routed(user_ids: Sequence[str]) -> str:
    return ", ".join(user_mention(u, field="routed_to") for u in user_ids)


def _context(message: SlaEscalation) -> list[Block]:
    parts = []
    places = [p for p in (place(d) for d in message.alerted_in) if p]
    if places:
        parts.append(f"Alerted in {', '.join(places)}")
    if message.routed_to:
        parts.append(f"routed to {_routed(message.routed_to)}")
    return [ContextBlock(elements=[mrkdwn(" · ".join(parts))])] if parts else []


def reminder_message(message: SlaReminder) -> tuple[list[dict[str, Any]], str]:
    """An ``sla_reminder``: the lead is still waiting (the alert's buttons are just above)."""
    routed = f" {_routed(message.routed_to)}" if message.routed_to else ""
    blocks: list[Block] = [
        section(
            f":alarm_clock: *Still waiting:*{routed} {who(message.lead)} is hot (score "
            f"{message.score:.1f}) and was alerted {waited(message.hours_waiting)} ago; nobody "
            "has claimed it or given feedback yet. Claim it with the alert's buttons."
        )
    ]
    return render(blocks), fallback(message.text)


def escalation_message(message: SlaEscalation) -> tuple[list[dict[str, Any]], str]:
    """An ``sla_escalation``: for the managers, a hot lead past the SLA."""
    lead = message.lead
    email = f" · {escape(lead.email)}" if lead.email else ""
    blocks: list[Block] = [
        header(f"SLA missed: {clip(lead.shown, 120)}"),
        section(
            f"{who(lead)}{email}\nA hot lead (score {message.score:.1f}) has waited "
            f"*{waited(message.hours_waiting)}* since its alert, with no claim and no feedback."
        ),
        *_context(message),
    ]
    return render(blocks), fallback(message.text)


def cooling_message(message: CoolingMessage) -> tuple[list[dict[str, Any]], str]:
    """A ``cooling`` notice from the decay sweep: the lead left the hot band."""
    before, after = escape(message.before), escape(message.after)
    blocks: list[Block] = [
        section(
            f":snowflake: {who(message.lead)} is cooling down: {before} → {after} "
            f"(score {message.score:.1f})."
        )
    ]
    return render(blocks), fallback(message.text)
