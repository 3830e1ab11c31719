"""Teams delivery for the outbox: one Bot Connector POST per delivery attempt.

A destination (``teams:conversation:<id>``, ``teams:user:<AAD object id>``,
``teams:default``) is resolved to a stored conversation reference (``storage.teams``), the
message is rendered as an Adaptive Card attachment, and posted as a new message with the
Microsoft 365 Agents SDK's ``ConnectorClient`` (``conversations.send_to_conversation``).
The dispatcher marks a message sent only after ``deliver`` returns, so an outage delays
alerts and never loses them:

- no reference stored yet → ``DeliveryError`` (not permanent) saying where to install the
  app; the message waits in the outbox, retried with backoff up to the outbox's give-up
  time (24 h by default), and goes once the reference exists;
- 429 → ``DeliveryError(retry_after=Retry-After)``, and no call to that conversation
  before then; 5xx, connection errors, timeouts, a token that cannot be had → retried with
  backoff; 401 and 403 (a refused token, a bot removed from the conversation: an
  admin fixes them) → retried the same way, with what to do; any other 4xx (a card the
  connector refuses) → permanent, with the connector's own error.

Why the ``ConnectorClient`` and not ``CloudAdapter.continue_conversation`` (SDK 1.9,
``microsoft_agents/hosting/core``):

- ``continue_conversation`` runs the turn pipeline on a continuation activity whose ``id``
  is a fresh uuid (``activity/conversation_reference.py`` ``get_continuation_activity``);
  ``TurnContext.send_activity`` applies that reference, so ``reply_to_id`` is set
  (``activity/activity.py`` ``apply_conversation_reference``) and the post goes to
  ``POST …/activities/{uuid}`` (``channel_service_adapter.py`` ``send_activities``): a
  reply to a message that does not exist, not a new post in the channel.
- An exception in the callback (a 429, a 500) reaches ``run_pipeline``
  (``channel_adapter.py``), which calls the adapter's ``on_turn_error``; the default one
  (``_http_adapter_base.py``) posts "Exception caught : …" into the same conversation: a
  second POST per failed attempt, in front of users. The SDK's own ``Proactive`` helper
  catches inside its callback for that reason (``app/proactive/proactive.py``).
- It also builds a ``UserTokenClient`` per send that a post does not use.

The ``ConnectorClient`` is built by the SDK's own ``RestChannelServiceClientFactory`` (the
adapter's), so tokens come from the same connection manager: with credentials, MSAL's
client-credentials token for the Bot Framework scope (cached by ``MsalAuth``); with
``app_id=None`` (anonymous mode, ``…SETTINGS__ANONYMOUS_ALLOWED=true`` and no client id)
the ``AnonymousTokenProvider``'s empty token, and no ``Authorization`` header is sent
(``connector_client.py``: the header is set only for a token longer than one character).
The client makes one HTTP request per call and never retries
(``connector/client/connector_client.py`` ``send_to_conversation``); a non-2xx answer
raises ``aiohttp.ClientResponseError`` carrying the status, the response headers
(``Retry-After`` readable) and the body as ``message`` (``connector/_utils.py``).

The SDK's ``OutboundHostValidator`` (``security/outbound_host_validator.py``) is consulted
by the adapter for inbound activities only when enabled (``_http_adapter_base.py``
``_validate_service_url``; off by default) and never on the proactive path. This transport
checks each service URL with one before a token is sent: on by default with credentials
(Microsoft's hosts, https only), off in anonymous mode. It refuses plain http and loopback
whatever hosts it is given, so no allow-list admits the fake connector; tests pass a
disabled validator explicitly instead.

Posted once, as far as the Bot Connector allows: the service assigns activity ids (the
answer to the POST is the first time the bot learns one), takes no idempotency key, and
gives a bot no way to read a conversation's messages (no GET of a conversation's
activities; only Microsoft Graph, with other permissions, can), so an earlier post cannot
be looked for. What can be done:
the post's activity id is recorded (``on_posted``: the alert's ``alert_posts`` row, its
own transaction) the moment the POST answers, and the dispatcher, before re-sending a
message whose earlier attempt may have reached Teams, checks that record. The message
shows twice only when Teams stored it and its answer never reached the bot (a timeout, a
dropped connection, a 5xx after storing), or the process died in the few milliseconds
between the answer and that commit; the retry then posts it once more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from microsoft_agents.activity import Activity, Attachment, ResourceResponse
from microsoft_agents.hosting.core import (
    ClaimsIdentity,
    OutboundHostValidator,
    RestChannelServiceClientFactory,
)
from microsoft_agents.hosting.core.authorization import AuthenticationConstants, Connections
from microsoft_agents.hosting.core.connector import ConnectorClientBase
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox.dispatcher import DeliveryError
from bot.outbox.messages import Kind, Message, UnknownKind, decode
from bot.teams.cards import card_for, summary_text, text_card
from bot.teams.references import conversation_reference
from storage.engine import session_factory
from storage.outbox import Claimed
from storage.posts import record_post
from storage.teams import BadDestination, StoredReference, find_conversation, resolve_destination

log = logging.getLogger(__name__)

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
Card = Mapping[str, Any]
Render = Callable[[Message], Card]  # typed outbox message → Adaptive Card
OnPosted = Callable[[Claimed, str, str], Awaitable[None]]  # (message, conversation, activity)
Sleep = Callable[[float], Awaitable[None]]
Operation = Callable[[ConnectorClientBase], Awaitable[ResourceResponse]]


def missing_reference_advice(destination: str) -> str:
    """What an admin does so that ``destination`` gets a conversation reference."""
    kind, _, key = destination.removeprefix("teams:").partition(":")
    if kind == "user":
        return (
            f"no 1:1 chat with Teams user {key} is known yet: the user must open the bot in "
            "Teams and write to it once (or an admin installs the app for them personally)"
        )
    if kind == "default":
        return (
            "no default Teams channel is known yet: install the app in a team (its first "
            "channel becomes the default), or check the configured default channel's id"
        )
    return (
        f"the bot has not been in Teams conversation {key} yet: install the app in that team "
        "or add it to that chat, then the alert goes out"
    )


class TeamsTransport:
    """Posts outbox messages to Teams; satisfies ``bot.outbox.dispatcher.Transport``.

    ``connections`` is the SDK connection manager the ``CloudAdapter`` uses;
    ``app_id`` the bot's app (client) id, or None in anonymous mode. ``render(message)``
    gives the card of the typed message a row decodes to (default
    ``bot.teams.cards.card_for``). ``on_posted(message,
    conversation_id, activity_id)`` runs after each post, to record where it lives.
    ``default_conversation`` is the configured default channel for ``teams:default``.
    ``clock``/``sleep`` pace posts per conversation; tests inject a controlled pair.
    ``host_validator`` (the SDK's) vets each service URL before a token is sent to it; by
    default it is on with credentials (Microsoft's hosts, https only) and off in anonymous
    mode. It refuses plain http and loopback whatever hosts it lists, so tests against the
    fake connector pass ``OutboundHostValidator(enabled=False)`` explicitly.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        connections: Connections,
        app_id: str | None,
        render: Render = card_for,
        on_posted: OnPosted | None = None,
        default_conversation: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        pace_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        host_validator: OutboundHostValidator | None = None,
    ) -> None:
        self.engine = engine
        self.factory = RestChannelServiceClientFactory(connections)
        self.app_id = app_id or None
        self.render = render
        self.on_posted = on_posted
        self.default_conversation = default_conversation
        self.clock = clock
        self.sleep = sleep
        self.pace_seconds = pace_seconds
        self.timeout_seconds = timeout_seconds
        # The bot's token goes to the reference's service URL: with credentials, only to
        # Microsoft's hosts unless the caller says otherwise (tests pass a disabled one).
        self.host_validator = host_validator or OutboundHostValidator(enabled=app_id is not None)
        self._next_slot: dict[str, float] = {}
        self._blocked_until: dict[str, float] = {}

    async def deliver(self, message: Claimed) -> None:
        stored = await self._reference(message)
        card = self._card(message)
        conversation = stored.conversation_id
        self._refuse_while_rate_limited(conversation)
        await self._pace(conversation)
        activity = self._activity(stored, card)
        response = await self._call(
            "send to", stored,
            lambda client: client.conversations.send_to_conversation(conversation, activity),
        )  # fmt: skip
        await self._posted(message, conversation, response.id)

    async def update(self, conversation_id: str, activity_id: str, card: Card) -> None:
        """Replace the card of a message the bot posted (a card refresh after a click).
        Raises ``DeliveryError`` like ``deliver`` (the caller decides whether to retry)."""
        async with self.engine.connect() as conn:
            stored = await find_conversation(conn, conversation_id=conversation_id)
        if stored is None:
            raise DeliveryError(missing_reference_advice(f"teams:conversation:{conversation_id}"))
        self._refuse_while_rate_limited(conversation_id)
        activity = self._activity(stored, card)
        activity.id = activity_id
        await self._call(
            "update in", stored,
            lambda client: client.conversations.update_activity(
                conversation_id, activity_id, activity
            ),
        )  # fmt: skip

    async def delete(self, conversation_id: str, activity_id: str) -> bool:
        """Delete a message the bot posted (``leadbot forget``); False when Teams no longer
        has it (404). Raises ``DeliveryError`` like ``deliver`` for anything else."""
        async with self.engine.connect() as conn:
            stored = await find_conversation(conn, conversation_id=conversation_id)
        if stored is None:
            raise DeliveryError(missing_reference_advice(f"teams:conversation:{conversation_id}"))
        try:
            await self._call(
                "delete in", stored,
                lambda client: client.conversations.delete_activity(conversation_id, activity_id),
            )  # fmt: skip
        except DeliveryError as exc:
            if (
                isinstance(exc.__cause__, aiohttp.ClientResponseError)
                and exc.__cause__.status == 404
            ):
                return False
            raise
        return True

    # -- steps --------------------------------------------------------------------------

    async def _reference(self, message: Claimed) -> StoredReference:
        try:
            async with self.engine.connect() as conn:
                stored = await resolve_destination(
                    conn, message.destination, default=self.default_conversation
                )
        except BadDestination as exc:
            raise DeliveryError(f"outbox message {message.id}: {exc}", permanent=True) from exc
        if stored is None:  # the dispatcher's throttled log says it, with the retry time
            advice = missing_reference_advice(message.destination)
            raise DeliveryError(f"{message.destination}: {advice}")
        return stored

    def _card(self, message: Claimed) -> Card:
        """The row decoded to its typed message and rendered; a kind newer than this code
        shows its ``text``, if it has one."""
        try:
            try:
                typed = decode(message.kind, message.payload)
            except UnknownKind:
                text = message.payload.get("text")
                if isinstance(text, str) and text:
                    return text_card(text)
                raise
            return self.render(typed)
        except Exception as exc:  # the same payload renders the same way next time
            raise DeliveryError(
                f"outbox message {message.id}: rendering the {message.kind} card failed: {exc!r}",
                permanent=True,
            ) from exc

    @staticmethod
    def _activity(stored: StoredReference, card: Card) -> Activity:
        """A new message (no ``replyToId``) carrying the card, addressed by the reference."""
        activity = Activity(
            type="message", attachments=[Attachment(content_type=CARD_TYPE, content=dict(card))]
        )
        summary = summary_text(card)
        if summary:  # what a notification shows; unset, it stays out of the JSON
            activity.summary = summary
        return activity.apply_conversation_reference(conversation_reference(stored))

    async def _call(
        self, what: str, stored: StoredReference, operation: Operation
    ) -> ResourceResponse:
        where = f"Teams conversation {stored.conversation_id}"
        if not self.host_validator.is_allowed(stored.service_url):
            raise DeliveryError(
                f"the service URL {stored.service_url!r} of {where} is not a Microsoft host "
                "allowed by the outbound host validator: the bot's token is not sent there",
                permanent=True,
            )
        client = await self._client(stored)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await operation(client)
        except aiohttp.ClientResponseError as exc:
            raise self._http_error(what, stored.conversation_id, exc) from exc
        except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
            raise DeliveryError(  # never connected: Teams has nothing
                f"Bot Connector at {stored.service_url} unreachable to {what} {where}: {exc!r}",
                maybe_sent=False,
            ) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(  # the request may have been stored before the answer was lost
                f"Bot Connector at {stored.service_url} did not answer to {what} {where}: {exc!r}",
                maybe_sent=True,
            ) from exc
        finally:
            await client.close()

    async def _client(self, stored: StoredReference) -> ConnectorClientBase:
        """A connector client for the reference's service URL, with a token (or none, in
        anonymous mode). A token that cannot be had is worth retrying: the identity
        service may be down, and a fixed config is picked up on restart."""
        if self.app_id is None:
            claims, anonymous = ClaimsIdentity(), True
        else:
            claims = ClaimsIdentity({
                AuthenticationConstants.AUDIENCE_CLAIM: self.app_id,
                AuthenticationConstants.APP_ID_CLAIM: self.app_id,
            })  # fmt: skip
            anonymous = False
        try:
            return await self.factory.create_connector_client(
                None, claims, stored.service_url, claims.get_token_audience(),
                use_anonymous=anonymous,
            )  # fmt: skip
        except Exception as exc:
            raise DeliveryError(
                f"no Bot Connector token for app {self.app_id} ({exc!r}): check the "
                "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ CLIENTID, CLIENTSECRET and "
                "TENANTID settings and that the identity service is reachable"
            ) from exc

    def _http_error(
        self, what: str, conversation: str, exc: aiohttp.ClientResponseError
    ) -> DeliveryError:
        where = f"Teams conversation {conversation}"
        body = (exc.message or "")[:500]
        if exc.status == 429:
            wait = retry_after_seconds(exc.headers)
            if wait is not None:
                self._blocked_until[conversation] = self.clock() + wait
            return DeliveryError(
                f"Teams rate limit to {what} {where}: {body}", retry_after=wait, maybe_sent=False
            )
        if exc.status >= 500 or exc.status == 408:
            return DeliveryError(
                f"Bot Connector failed to {what} {where}: HTTP {exc.status} {body}",
                maybe_sent=True,
            )
        return DeliveryError(
            f"Bot Connector refused to {what} {where}: HTTP {exc.status} {body}"
            f"{client_error_advice(exc.status)}",
            permanent=exc.status not in ADMIN_FIXES, maybe_sent=False,
        )  # fmt: skip

    def _refuse_while_rate_limited(self, conversation: str) -> None:
        """After Teams said "wait N seconds", do not call it about this conversation sooner."""
        remaining = self._blocked_until.get(conversation, float("-inf")) - self.clock()
        if remaining > 0:
            raise DeliveryError(
                f"Teams rate limit on conversation {conversation}: waiting {remaining:.0f} s more",
                retry_after=remaining,
            )

    async def _pace(self, conversation: str) -> None:
        """At most one post per ``pace_seconds`` per conversation (Teams allows about 7 a
        second, 60 in 30 s): reserve the next free slot, then sleep until it."""
        now = self.clock()
        slot = max(now, self._next_slot.get(conversation, now))
        self._next_slot[conversation] = slot + self.pace_seconds
        if slot > now:
            await self.sleep(slot - now)

    async def _posted(self, message: Claimed, conversation: str, activity_id: str | None) -> None:
        # The message is in Teams now: a failing callback must not make the outbox resend it.
        if not activity_id:
            log.warning("Teams answered no activity id for outbox message %d in %s",
                        message.id, conversation)  # fmt: skip
            return
        if self.on_posted is None:
            return
        try:
            await self.on_posted(message, conversation, activity_id)
        except Exception:
            log.exception("on_posted failed for outbox message %d (%s %s)",
                          message.id, conversation, activity_id)  # fmt: skip


def post_recorder(engine: AsyncEngine, *, clock: Callable[[], float]) -> OnPosted:
    """An ``on_posted`` that remembers where each alert went (``alert_posts``, platform
    ``teams``, channel = conversation id, ts = activity id), so a card action can find the
    alert and refresh its card. Other kinds are not updated later, so not recorded."""
    sessions = session_factory(engine)

    async def remember(message: Claimed, conversation_id: str, activity_id: str) -> None:
        if message.kind not in (Kind.ALERT, Kind.CUSTOMER_AT_RISK):  # updated after a click
            return
        async with sessions() as session:
            await record_post(
                session, lead_id=message.lead_id or "", outbox_id=message.id, platform="teams",
                channel=conversation_id, ts=activity_id, at=datetime.fromtimestamp(clock(), UTC),
            )  # fmt: skip
            await session.commit()

    return remember


ADMIN_FIXES = frozenset({401, 403})  # credentials, a reinstall: the message waits for them


def client_error_advice(status: int) -> str:
    """What an admin can do about a 4xx no retry fixes."""
    if status == 401:
        return ": the Bot Connector refused the bot's token; check the app id, secret and tenant"
    if status == 403:
        return ": the bot is not in that conversation any more; reinstall the app there"
    if status == 404:
        return ": no such conversation or activity; reinstall the app there"
    return ""


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The ``Retry-After`` header in seconds; None when absent or not a number."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None
