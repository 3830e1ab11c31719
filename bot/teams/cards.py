"""Adaptive Cards for Teams: one entry point per outbox kind, and the renderers by name.

``card_for(kind, payload)`` is what the Teams transport calls for an outbox message; the
handlers call ``alert_card`` (with the state after a click), ``proposal_card`` (with the
decision) and ``reply_card`` (a command's answer) directly. Every function is pure: plain
dicts in, a plain-dict card (schema 1.5, within ``MAX_CARD_BYTES``) out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.chat.alerts import crm_link
from bot.teams.alert_card import alert_card
from bot.teams.card_parts import MAX_CARD_BYTES, Card, CardTooLargeError, card, guard, plain
from bot.teams.followup_cards import FOLLOWUPS, digest_card, followup_card
from bot.teams.proposal_card import proposal_card
from bot.teams.reply_card import reply_card, text_body

__all__ = [
    "MAX_CARD_BYTES",
    "CardTooLargeError",
    "alert_card",
    "card_for",
    "crm_link",
    "digest_card",
    "followup_card",
    "plain",
    "proposal_card",
    "reply_card",
    "summary_text",
]

ALERT = "alert"
PROPOSAL = "proposal"  # bot.models.learning.PROPOSAL
APPLIED = "model_applied"  # bot.models.learning.APPLIED
DIGEST = "digest"  # bot.digest.delivery.KIND


def card_for(kind: str, payload: Mapping[str, Any], *, crm_url: str | None = None) -> Card:
    """The card for an outbox message of ``kind``. An unknown kind with a ``text`` becomes
    a plain text card; without one it is refused, naming the kinds this knows."""
    if kind == ALERT:
        return alert_card(payload, state=payload.get("state"), crm_url=crm_url)
    if kind in (PROPOSAL, APPLIED):
        return proposal_card(payload)
    if kind in FOLLOWUPS:
        return followup_card(kind, payload)
    if kind == DIGEST:
        return digest_card(payload)
    if isinstance(payload.get("text"), str) and payload["text"]:
        return text_card(payload["text"])
    known = ", ".join([ALERT, PROPOSAL, APPLIED, *FOLLOWUPS, DIGEST])
    raise ValueError(f"outbox kind {kind!r}: no Teams card for it (known: {known}) and no text")


def text_card(value: str) -> Card:
    """Any text as a card: each line inert, long text cut with "… and N more lines"."""
    return guard(
        card(text_body(value), summary=plain((value.splitlines() or ["-"])[0][:200])), "text"
    )


_ESCAPE = re.compile(r"\\(.)")


def summary_text(value: Mapping[str, Any]) -> str:
    """A card's ``fallbackText`` without its markdown escapes (``Jean\\-Luc`` → ``Jean-Luc``),
    for places that show plain text and never render markdown: an activity's ``summary``,
    a notification, a log line."""
    return _ESCAPE.sub(r"\1", str(value.get("fallbackText") or ""))
