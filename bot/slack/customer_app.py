"""The customer alert's buttons in Slack: a click goes to the chat-agnostic core
(``bot.chat.customer_alerts.apply_customer_action``), then the alert is redrawn for
everyone with who did what, as claim and qualify redraw a lead alert."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.customer_alerts import DONE, CustomerAction, apply_customer_action
from bot.chat.messages import Actor
from bot.outbox.messages import CustomerAtRisk
from bot.slack.customer_blocks import CUSTOMER_BUTTONS, PREFIX, customer_alert_message
from config.rfm import Rfm
from storage.engine import session_factory
from storage.posts import find_post

log = logging.getLogger(__name__)


def register_customer_actions(
    app: AsyncApp, *, engine: AsyncEngine, rfm: Rfm, clock: Callable[[], float]
) -> None:
    from bot.slack.app import reported  # the app module registers this one: import late

    @app.action(CUSTOMER_BUTTONS)
    async def customer_button(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
        client: AsyncWebClient,
    ) -> None:  # fmt: skip
        await ack()
        async with reported(body):
            which = CustomerAction(action["action_id"].removeprefix(PREFIX))
            user = body["user"]
            result = await apply_customer_action(
                engine, action=which, lead_id=action["value"],
                actor=Actor("slack", user["id"], user.get("name", "")), rfm=rfm, now=clock(),
            )  # fmt: skip
            channel, ts = body["channel"]["id"], body["message"]["ts"]
            if not await _redraw(engine, client, channel, ts, result.state):
                text = f"{DONE[which]} — I couldn't refresh the alert."
                await respond(response_type="ephemeral", replace_original=False, text=text)


async def _redraw(
    engine: AsyncEngine, client: AsyncWebClient, channel: str, ts: str, state: dict[str, Any]
) -> bool:
    """Update the alert in place; False when it is unknown or the update failed (the click
    is stored either way)."""
    try:
        async with session_factory(engine)() as session:
            posted = await find_post(session, platform="slack", channel=channel, ts=ts)
        if posted is None:
            log.warning("no customer alert recorded at %s/%s: not updated", channel, ts)
            return False
        alert = CustomerAtRisk.from_payload(posted.payload)
        blocks, text = customer_alert_message(alert, state=state)
        await client.chat_update(channel=channel, ts=ts, blocks=blocks, text=text)
    except Exception as exc:
        log.warning("customer alert %s/%s stored but not refreshed: %r", channel, ts, exc)
        return False
    return True
