"""A click on a customer alert's card in Teams: stored by the chat-agnostic core
(``bot.chat.customer_alerts.apply_customer_action``), then the card redrawn from the
payload it was posted with, as ``bot.teams.clicks`` does for lead alerts."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.customer_alerts import DONE, apply_customer_action
from bot.chat.messages import Actor
from bot.outbox.messages import CustomerAtRisk
from bot.teams.card_parts import Card
from bot.teams.customer_card import customer_alert_card, customer_click
from config.rfm import Rfm
from storage.engine import session_factory
from storage.posts import find_post

log = logging.getLogger(__name__)

# (card for everyone or None, notice for the clicker, what to tell them if the card fails)
Outcome = tuple[Card | None, str | None, str | None]


async def customer_clicked(
    engine: AsyncEngine,
    rfm: Rfm,
    *,
    data: Mapping[str, Any],
    actor: Actor,
    now: float,
    conversation: str,
    card_id: str | None,
) -> Outcome:
    action, lead_id = customer_click(data)  # ValueError: a bad click, nothing stored
    result = await apply_customer_action(
        engine, action=action, lead_id=lead_id, actor=actor, rfm=rfm, now=now
    )
    stored = f"{DONE[action]} — I couldn't refresh the alert."
    posted = None
    if card_id:
        async with session_factory(engine)() as session:
            posted = await find_post(session, platform="teams", channel=conversation, ts=card_id)
    if posted is None:
        log.warning("no Teams customer alert at %s/%s: not updated", conversation, card_id)
        return None, stored, None
    alert = CustomerAtRisk.from_payload(posted.payload)
    card = customer_alert_card(alert, state=result.state, names={actor.ref: actor.name})
    return card, None, stored
