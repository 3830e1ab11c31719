"""Slack switched on from the environment: the Bolt app, its HTTP route, the outbox
transport, and Socket Mode when an app-level token is given."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.errors import Refusal
from bot.jobs.sla import alert_thread
from bot.models.edges import BandEdges
from bot.models.learning import Learner
from bot.models.live import ActiveModel
from bot.outbox.messages import (
    AlertMessage,
    CoolingMessage,
    CustomerAtRisk,
    DigestMessage,
    Kind,
    Message,
    ProposalMessage,
    SlaEscalation,
    SlaReminder,
)
from bot.slack.alert_blocks import alert_message
from bot.slack.app import build_slack_app
from bot.slack.customer_blocks import customer_alert_message
from bot.slack.digest_blocks import digest_message
from bot.slack.enabled import slack_enabled  # noqa: F401 (re-exported)
from bot.slack.followup_blocks import cooling_message, escalation_message, reminder_message
from bot.slack.gate import SlackGate
from bot.slack.proposal_blocks import proposal_message
from bot.slack.transport import Render, SlackTransport
from bot.web.answers import read_body, refused
from config.loader import LeadbotConfig
from config.settings import Settings
from storage.engine import session_factory
from storage.outbox import Claimed
from storage.posts import record_post

log = logging.getLogger(__name__)

ROUTE = "/slack/events"
Rendered = tuple[list[dict[str, Any]], str]
M = TypeVar("M")
SLACK_APP: web.AppKey[AsyncApp] = web.AppKey("slack_app")
SLACK_GATE: web.AppKey[SlackGate] = web.AppKey("slack_gate")


class SlackConfigError(Exception):
    """Slack is half configured; the message says which variable is missing."""


@dataclass
class Slack:
    app: AsyncApp
    transport: SlackTransport
    app_token: str | None


def check_slack_settings(settings: Settings) -> None:
    """Refuse to start half configured: HTTP mode verifies every request with the signing
    secret; Socket Mode needs the app-level token instead."""
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise SlackConfigError(
            "SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode: Slack posts to "
            "/slack/events) nor SLACK_APP_TOKEN (Socket Mode) is: set one of them"
        )


def build_slack(
    *,
    settings: Settings,
    config: LeadbotConfig,
    engine: AsyncEngine,
    clock: Callable[[], float],
    edges: BandEdges | None = None,
    active: ActiveModel | None = None,
    learner: Learner | None = None,
) -> Slack:
    """``edges``: the server's live band edges, which commands and buttons score with."""
    assert settings.slack_bot_token is not None
    token = settings.slack_bot_token.get_secret_value()
    base_url = _api_url(settings.slack_api_url) or AsyncWebClient.BASE_URL
    client = AsyncWebClient(token=token, base_url=base_url)
    signing = settings.slack_signing_secret
    # Socket Mode alone has no secret and /slack/events is not mounted; Bolt still wants one,
    # and a random one could never verify a request if the route were ever mounted.
    secret = signing.get_secret_value() if signing else secrets.token_hex(32)
    app = build_slack_app(
        config=config, engine=engine, client=client, clock=clock, signing_secret=secret,
        edges=edges, active=active, learner=learner,
    )  # fmt: skip
    sessions = session_factory(engine)

    async def remember(message: Claimed, channel: str, ts: str) -> None:
        if message.kind not in (Kind.ALERT, Kind.CUSTOMER_AT_RISK):  # updated after a click
            return
        async with sessions() as session:
            await record_post(
                session, lead_id=message.lead_id or "", outbox_id=message.id, platform="slack",
                channel=channel, ts=ts, at=datetime.fromtimestamp(clock(), UTC),
            )  # fmt: skip
            await session.commit()

    async def thread_of(lead_id: str, channel: str) -> str | None:
        return await alert_thread(engine, lead_id=lead_id, platform="slack", channel=channel)

    transport = SlackTransport(
        token=token,
        base_url=base_url,
        renderers=renderers(config),
        on_posted=remember,
        thread_of=thread_of,
    )
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    return Slack(app=app, transport=transport, app_token=app_token)


def renderers(config: LeadbotConfig) -> Mapping[str, Render]:
    """Block Kit for each kind of outbox message the bot sends to Slack, from the typed
    message (``bot.outbox.messages``) the transport decodes each row to."""
    crm_url = config.slack.crm_url
    return {
        Kind.ALERT: typed(AlertMessage, lambda alert: alert_message(alert, crm_url=crm_url)),
        Kind.PROPOSAL: typed(ProposalMessage, proposal_message),
        Kind.MODEL_APPLIED: typed(ProposalMessage, proposal_message),
        Kind.SLA_REMINDER: typed(SlaReminder, reminder_message),
        Kind.SLA_ESCALATION: typed(SlaEscalation, escalation_message),
        Kind.COOLING: typed(CoolingMessage, cooling_message),
        Kind.DIGEST: typed(DigestMessage, digest_message),
        Kind.CUSTOMER_AT_RISK: typed(CustomerAtRisk, customer_alert_message),
    }


def typed(kind: type[M], render: Callable[[M], Rendered]) -> Render:
    """``render`` for messages of type ``kind``; another type is a bug, said as such."""

    def checked(message: Message) -> Rendered:
        if not isinstance(message, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(message).__name__}")
        return render(message)

    return checked


@asynccontextmanager
async def socket_mode(slack: Slack) -> AsyncIterator[None]:
    """Connect over Socket Mode (no public URL needed) when an app-level token is set."""
    if slack.app_token is None:
        yield
        return
    handler = AsyncSocketModeHandler(slack.app, slack.app_token)
    await handler.connect_async()
    log.info("Slack Socket Mode connected")
    try:
        yield
    finally:
        await handler.close_async()


def mount_slack(app: web.Application, settings: Settings, config: LeadbotConfig) -> None:
    """``POST /slack/events`` behind the gate (``bot.slack.gate``): signature first, then
    the request's shape; only what passes reaches Bolt. Signatures are fresh by the wall
    clock, as Slack signs them (replay protection), not by the app's business clock."""
    assert settings.slack_signing_secret is not None
    secret = settings.slack_signing_secret.get_secret_value()
    app[SLACK_GATE] = SlackGate(secret, command=config.slack.command)
    app.router.add_post(ROUTE, slack_events)


async def slack_events(request: web.Request) -> web.Response:
    """Commands, clicks and the disqualify form: 401 for a request Slack did not sign, 400
    (naming the field) for one this app cannot read, else Bolt's answer."""
    body = await read_body(request)
    if isinstance(body, web.Response):
        return body
    checked = request.app[SLACK_GATE].check(request.headers, body)
    if isinstance(checked, Refusal):
        return refused("slack", checked.status, checked.reason, checked.to_json())
    bolt_request = AsyncBoltRequest(
        body=checked,
        query=request.query_string,
        headers=request.headers,  # type: ignore[arg-type]
    )
    bolt_response = await request.app[SLACK_APP].async_dispatch(bolt_request)
    return await to_aiohttp_response(bolt_response)


def _api_url(url: str | None) -> str | None:
    if not url:
        return None
    return url if url.endswith("/") else url + "/"
