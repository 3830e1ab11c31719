"""Follow-ups about a lead already alerted, as Block Kit: the SLA reminder (posted in the
alert's thread), the escalation to the managers, and the "cooling down" notice of the decay
sweep; and the scheduled digest, whose blocks were rendered when it was queued.

Built from the neutral payloads of ``bot.jobs.sla`` and ``bot.jobs.decay``. Lead data reaches Slack
only through ``clip``/``escape``; people and channels are ids from our own rows, shown as
mentions. The fallback text is the payload's plain ``text``, escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock

from bot.jobs.sla import waited
from bot.slack.blocks import clip, escape, fallback, header, mrkdwn, render, section, user_mention

NAME_MAX = 80
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,30}")


def who(lead: Mapping[str, Any]) -> str:
    """``Dana Reyes (AcmeSoft)``, escaped and clipped."""
    name = clip(lead.get("name") or lead.get("email") or lead["id"], NAME_MAX)
    return f"{name} ({clip(lead['company'], NAME_MAX)})" if lead.get("company") else name


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


def _context(payload: Mapping[str, Any]) -> list[Block]:
    parts = []
    places = [p for p in (place(d) for d in payload.get("alerted_in") or ()) if p]
    if places:
        parts.append(f"Alerted in {', '.join(places)}")
    if payload.get("routed_to"):
        parts.append(f"routed to {_routed(payload['routed_to'])}")
    return [ContextBlock(elements=[mrkdwn(" · ".join(parts))])] if parts else []


def reminder_message(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """An ``sla_reminder``: the lead is still waiting (the alert's buttons are just above)."""
    hours = float(payload["hours_waiting"])
    routed = f" {_routed(payload['routed_to'])}" if payload.get("routed_to") else ""
    blocks: list[Block] = [
        section(
            f":alarm_clock: *Still waiting:*{routed} {who(payload['lead'])} is hot (score "
            f"{float(payload['score']):.1f}) and was alerted {waited(hours)} ago; nobody has "
            "claimed it or given feedback yet. Claim it with the alert's buttons."
        )
    ]
    return render(blocks), fallback(str(payload["text"]))


def escalation_message(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """An ``sla_escalation``: for the managers, a hot lead past the SLA."""
    lead = payload["lead"]
    hours = float(payload["hours_waiting"])
    email = f" · {escape(lead['email'])}" if lead.get("email") else ""
    blocks: list[Block] = [
        header(f"SLA missed: {clip(lead.get('name') or lead.get('email') or lead['id'], 120)}"),
        section(
            f"{who(lead)}{email}\nA hot lead (score {float(payload['score']):.1f}) has waited "
            f"*{waited(hours)}* since its alert, with no claim and no feedback."
        ),
        *_context(payload),
    ]
    return render(blocks), fallback(str(payload["text"]))


def cooling_message(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """A ``cooling`` notice from the decay sweep: the lead left the hot band."""
    before, after = escape(payload.get("from", "hot")), escape(payload.get("to", "warm"))
    blocks: list[Block] = [
        section(
            f":snowflake: {who(payload['lead'])} is cooling down: {before} → {after} "
            f"(score {float(payload['score']):.1f})."
        )
    ]
    return render(blocks), fallback(str(payload["text"]))


def digest_message(payload: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """A scheduled ``digest``: the blocks and fallback rendered when it was queued."""
    blocks = payload.get("blocks")
    text = payload.get("text")
    if not isinstance(blocks, list) or not isinstance(text, str) or not text:
        raise ValueError(
            f"digest payload: blocks must be a list and text a non-empty string, got "
            f"{type(blocks).__name__} and {text!r}"
        )
    return list(blocks), text
