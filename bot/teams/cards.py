"""Adaptive Cards for Teams: one entry point per outbox kind, and the renderers by name.

``card_for(message)`` is what the Teams transport calls for an outbox row, decoded to its
typed message (``bot.outbox.messages``); a kind newer than this code gets ``text_card`` of
its text. The handlers call ``alert_card`` (with the state after a click), ``proposal_card``
(with the decision) and ``reply_card`` (a command's answer) directly. Every function is pure: plain
data in, a plain-dict card (schema 1.5, within ``MAX_CARD_BYTES``) out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.chat.alerts import crm_link
from bot.outbox.messages import (
    AlertMessage,
    CoolingMessage,
    CustomerAtRisk,
    DigestMessage,
    Message,
    ProposalMessage,
    SlaEscalation,
    SlaReminder,
)
from bot.teams.alert_card import alert_card
from bot.teams.card_parts import MAX_CARD_BYTES, Card, CardTooLargeError, card, guard, plain
from bot.teams.customer_card import customer_alert_card
from bot.teams.digest_card import digest_card, digest_message_card
from bot.teams.followup_cards import followup_card
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


def card_for(message: Message, *, crm_url: str | None = None) -> Card:
    """The card for a typed outbox message (``bot.outbox.messages.decode`` of its row)."""
    if isinstance(message, AlertMessage):
        return alert_card(message, crm_url=crm_url)
    if isinstance(message, ProposalMessage):
        return proposal_card(message)
    if isinstance(message, SlaReminder | SlaEscalation | CoolingMessage):
        return followup_card(message)
    if isinstance(message, DigestMessage):
        return digest_message_card(message)
    if isinstance(message, CustomerAtRisk):
        return customer_alert_card(message)
    raise TypeError(f"no Teams card for a {type(message).__name__}")


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
