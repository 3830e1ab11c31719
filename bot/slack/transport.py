"""Slack delivery for the outbox: one ``chat.postMessage`` per claimed message.

A brief hiccup (a connection refused, a short ``Retry-After``; for other methods a 500 or
a dropped connection too) is absorbed in place by ``slack_sdk``'s retry handlers. Anything
longer becomes a ``DeliveryError`` carrying Slack's ``Retry-After``, so the outbox
reschedules the message: the dispatcher marks a message sent only after ``deliver``
returns, so an outage delays alerts and never loses them. What an admin can fix (a bad
token, a channel the bot is not in, a missing scope) waits in the outbox, up to its
give-up time, with a message saying what to do; what no retry can fix (a user id that does
not exist, a message Slack refuses) is permanent.

Posted once: every post carries message metadata ``{"event_type": "leadbot_outbox",
"event_payload": {"outbox_id": N}}``. A post whose outcome is unknown (a 5xx, a timeout or
a dropped connection after the request went out, or a crash: the row is ``unsure``) is
never retried in place; before posting an ``unsure`` message again, the transport reads
the destination's history since the message was created (``conversations.history``, or
``conversations.replies`` in a thread, ``include_all_metadata``) for a message of this bot
with that metadata. If it is there, it is recorded through ``on_posted`` (the alert's
``alert_posts`` row, so clicks on it work) and nothing is posted. When history cannot be
read (a missing ``*:history`` scope, a ``#name`` destination whose id is not known yet),
the message is posted again with a warning that it may show twice.

Follow-ups about a lead (an SLA reminder, "cooling down") carry ``thread_of: {"lead_id"}``
and are posted in the thread of the lead's latest alert in that channel, found through the
injected ``thread_of`` look-up (the transport runs no SQL). A message with a ``chart``
(a scheduled digest) is posted, then the PNG is uploaded in its thread with
``files_upload_v2``. The upload comes after the post: if it fails for good, the digest
stays delivered without its chart and the failure is logged, rather than the outbox
posting the digest a second time.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_base_client import AsyncBaseClient
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.outbox.dispatcher import DeliveryError
from bot.outbox.messages import Message, decode
from storage.outbox import Claimed

log = logging.getLogger(__name__)

Render = Callable[[Message], tuple[list[dict[str, Any]], str]]  # typed message → blocks, text
OnPosted = Callable[[Claimed, str, str], Awaitable[None]]  # (message, channel id, ts)
ThreadOf = Callable[[str, str], Awaitable[str | None]]  # (lead id, channel id) → thread ts
Sleep = Callable[[float], Awaitable[None]]

API_URL_ENV = "SLACK_API_URL"
PREFIX = "slack:"
EVENT_TYPE = "leadbot_outbox"  # the metadata event type of every post of the outbox
HISTORY_PAGE = 200
HISTORY_PAGES = 10  # messages read at most when looking for an earlier post: 2,000
CLOCK_SKEW = 600.0  # seconds: read history from this long before the message was created
POST = "chat.postMessage"


class _Unknown(Exception):
    """History could not say whether the message was posted; post it (it may show twice)."""


class SlackTransport:
    """Posts outbox messages to Slack; satisfies ``bot.outbox.dispatcher.Transport``.

    ``renderers[kind](message) -> (blocks, fallback_text)`` renders each kind of message
    (alerts, proposals…) from the typed message the row decodes to; a kind without one
    posts ``payload["text"]`` (and ``payload["blocks"]`` if any). ``on_posted(message,
    channel_id, ts)`` runs after every successful post so the caller can remember where the
    message lives (to update it or reply in its thread). ``thread_of(lead_id, channel_id)``
    finds the ts of the lead's latest alert in a channel, for payloads with ``thread_of``.
    ``clock`` and ``sleep`` pace the posts per channel and time the in-place retries; tests
    inject a controlled pair.
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str | None = None,
        renderers: Mapping[str, Render],
        on_posted: OnPosted | None = None,
        thread_of: ThreadOf | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        pace_seconds: float = 1.0,
        retries: int = 2,
        max_wait_in_place: float = 2.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if not token:
            raise ValueError("SlackTransport: the bot token is empty: set SLACK_BOT_TOKEN")
        env = os.environ if environ is None else environ
        url = base_url or env.get(API_URL_ENV) or AsyncBaseClient.BASE_URL
        self.base_url = url if url.endswith("/") else url + "/"
        handlers = retry_handlers(retries=retries, max_wait=max_wait_in_place, sleep=sleep)
        self.client = AsyncWebClient(token=token, base_url=self.base_url, retry_handlers=handlers)
        self.renderers = dict(renderers)
        self.on_posted = on_posted
        self.thread_of = thread_of
        self.clock = clock
        self.pace = ChannelPace(clock=clock, sleep=sleep, interval=pace_seconds)
        self._dms: dict[str, str] = {}
        self._blocked_until: dict[str, float] = {}  # destination → when Slack takes it again
        self._bot_id: str | None = None

    async def deliver(self, message: Claimed) -> None:
        target = parse_destination(message.destination, message_id=message.id)
        blocks, text = self._content(message)
        self._refuse_while_rate_limited(target)
        channel = await self._open_dm(target[1:]) if target.startswith("@") else target
        thread_ts = await self._thread(message, channel)
        if message.unsure and await self._found_earlier(message, target, channel, thread_ts):
            return
        await self.pace.wait(channel)
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"outbox_id": message.id}}
        response = await self._call(
            POST, target,
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False, metadata=metadata,
            ),
        )  # fmt: skip
        posted_in, ts = str(response["channel"]), str(response["ts"])
        self.pace.alias(channel, posted_in)
        await self._posted(message, posted_in, ts)
        await self._attach_chart(message, posted_in, ts)

    async def _found_earlier(
        self, message: Claimed, target: str, channel: str, thread_ts: str | None
    ) -> bool:
        """For a message an earlier attempt may have posted: find that post and record it
        (True), or learn that there is none (False). A failure to read that may pass is a
        ``DeliveryError`` that keeps the message unsure; one that will not (a missing
        scope) is logged and the message is posted again."""
        channel_id = self._channel_id(channel, message.seen_in)
        try:
            if channel_id is None:
                raise _Unknown(f"the id of {channel} is not known yet")
            ts = await self._earlier_post(message, channel_id, thread_ts)
        except _Unknown as why:
            log.warning(
                "outbox message %d may already be in Slack %s, but that cannot be checked "
                "(%s): posting it again, it may show twice", message.id, target, why,
            )  # fmt: skip
            return False
        if ts is None:
            return False
        log.info("outbox message %d was already posted in %s (ts %s): recorded, not posted "
                 "again", message.id, channel_id, ts)  # fmt: skip
        await self._posted(message, channel_id, ts)
        return True

    def _channel_id(self, channel: str, seen_in: str | None) -> str | None:
        """A channel id for history: ids as they are, a ``#name`` as learnt from a post."""
        if not channel.startswith("#"):
            return channel
        known = self.pace.channel_id(channel)
        return known if known != channel else seen_in

    async def _earlier_post(
        self, message: Claimed, channel: str, thread_ts: str | None
    ) -> str | None:
        """The ts of this bot's message with ``message``'s outbox metadata, read from the
        channel's history (or the thread's replies) since shortly before it was created."""
        created = message.created_at.timestamp() if message.created_at else 0.0
        oldest = f"{max(0.0, created - CLOCK_SKEW):.6f}"
        bot_id = await self._own_bot_id()
        cursor: str | None = None
        for _ in range(HISTORY_PAGES):
            page = await self._history_page(channel, thread_ts, oldest, cursor)
            for item in page.get("messages") or []:
                if _is_post_of(item, message.id, bot_id):
                    return str(item["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not page.get("has_more") or cursor is None:
                return None
        raise _Unknown(f"more than {HISTORY_PAGE * HISTORY_PAGES} messages since it was queued")

    async def _history_page(
        self, channel: str, thread_ts: str | None, oldest: str, cursor: str | None
    ) -> Mapping[str, Any]:
        method = "conversations.replies" if thread_ts else "conversations.history"
        args: dict[str, Any] = {
            "channel": channel, "oldest": oldest, "inclusive": True, "limit": HISTORY_PAGE,
            "include_all_metadata": True, "cursor": cursor,
        }  # fmt: skip
        try:
            if thread_ts:
                response = await self.client.conversations_replies(ts=thread_ts, **args)
            else:
                response = await self.client.conversations_history(**args)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") in _CANNOT_READ:
                raise _Unknown(f"{method}: {data.get('error')} {_history_advice()}") from exc
            raise self._api_error(method, channel, exc.response) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Slack {method} at {self.base_url} unreachable: {exc!r}") from exc
        return response.data if isinstance(response.data, dict) else {}

    async def _own_bot_id(self) -> str | None:
        """This token's bot id (``auth.test``, once): only our own posts are matched."""
        if self._bot_id is None:
            response = await self._call("auth.test", "auth", self.client.auth_test)
            self._bot_id = str(response.get("bot_id") or "")
        return self._bot_id or None

    async def _thread(self, message: Claimed, channel: str) -> str | None:
        """The ts to reply under for a payload with ``thread_of``; None for a new message
        (no look-up given, or no alert of the lead in this channel)."""
        about = message.payload.get("thread_of")
        if self.thread_of is None or not isinstance(about, Mapping) or not about.get("lead_id"):
            return None
        return await self.thread_of(str(about["lead_id"]), self.pace.channel_id(channel))

    async def _attach_chart(self, message: Claimed, channel: str, ts: str) -> None:
        """Upload ``payload.chart`` (base64 PNG) in the thread of the message just posted.
        Never raises: the message is delivered, a resend would double it."""
        chart = message.payload.get("chart")
        if not isinstance(chart, Mapping):
            return
        try:
            png = base64.b64decode(str(chart["png_base64"]), validate=True)
            filename = str(chart.get("filename") or "chart.png")
            await self._call(
                "files_upload_v2", channel,
                lambda: self.client.files_upload_v2(
                    channel=channel, content=png, filename=filename,
                    title=str(chart.get("title") or filename), alt_txt=chart.get("alt"),
                    thread_ts=ts,
                ),
            )  # fmt: skip
        except (DeliveryError, KeyError, binascii.Error, SlackClientError) as exc:
            log.error(
                "outbox message %d (%s) was posted in %s (ts %s) but its chart could not be "
                "uploaded: %s", message.id, message.kind, channel, ts, exc,
            )  # fmt: skip

    def _content(self, message: Claimed) -> tuple[list[dict[str, Any]], str]:
        """Blocks and fallback text: the row decoded to its typed message
        (``bot.outbox.messages.decode``) and rendered, for kinds with a renderer;
        ``payload["text"]`` otherwise."""
        render = self.renderers.get(message.kind)
        if render is not None:
            try:
                return render(decode(message.kind, message.payload))
            except Exception as exc:  # the same payload renders the same way next time
                raise DeliveryError(
                    f"outbox message {message.id}: rendering the {message.kind} failed: {exc!r}",
                    permanent=True,
                ) from exc
        text = message.payload.get("text")
        if not isinstance(text, str) or not text:
            raise DeliveryError(
                f"outbox message {message.id} ({message.kind}): payload.text must be a "
                f"non-empty string, got {text!r}",
                permanent=True,
            )
        blocks = message.payload.get("blocks")
        return (list(blocks) if isinstance(blocks, list) else []), text

    async def _open_dm(self, user: str) -> str:
        """The DM channel with ``user``, opened once and remembered."""
        if user not in self._dms:
            response = await self._call(
                "conversations.open", f"@{user}", lambda: self.client.conversations_open(users=user)
            )
            self._dms[user] = str(response["channel"]["id"])
        return self._dms[user]

    async def _posted(self, message: Claimed, channel: str, ts: str) -> None:
        # The message is in Slack now: a failing callback must not make the outbox resend it.
        if self.on_posted is None:
            return
        try:
            await self.on_posted(message, channel, ts)
        except Exception:
            log.exception("on_posted failed for outbox message %d (%s %s)", message.id, channel, ts)

    def _refuse_while_rate_limited(self, target: str) -> None:
        """After Slack said "wait N seconds" about a destination, do not post there again
        before then; other destinations go on (Slack limits posts per channel)."""
        remaining = self._blocked_until.get(target, float("-inf")) - self.clock()
        if remaining > 0:
            raise DeliveryError(
                f"Slack rate limit on {target}: waiting {remaining:.0f} s more",
                retry_after=remaining,
            )

    async def _call(
        self, method: str, target: str, send: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        """Errors of a post say whether Slack may have the message anyway (``maybe_sent``);
        errors of anything before a post say nothing new (None)."""
        posting = method == POST
        try:
            return await send()
        except SlackApiError as exc:
            raise self._api_error(method, target, exc.response) from exc
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise DeliveryError(
                f"Slack {method} at {self.base_url} unreachable: {exc!r}",
                maybe_sent=False if posting else None,
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(
                f"Slack {method} at {self.base_url} did not answer: {exc!r}",
                maybe_sent=True if posting else None,
            ) from exc

    def _api_error(self, method: str, target: str, response: Any) -> DeliveryError:
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {response.status_code}")
        posting = method == POST
        if response.status_code == 429 or error == "ratelimited":
            wait = retry_after_seconds(response.headers)
            if wait is not None:
                until = max(self._blocked_until.get(target, float("-inf")), self.clock() + wait)
                self._blocked_until[target] = until
            return DeliveryError(
                f"Slack {method} to {target}: rate limited", retry_after=wait,
                maybe_sent=False if posting else None,
            )  # fmt: skip
        # Slack's own words for a 5xx: some of the operation may have succeeded.
        unknown = response.status_code >= 500 or error in ("internal_error", "fatal_error")
        sure = None if not posting else unknown
        advice = admin_advice(error, target, data)
        if advice is not None:
            return DeliveryError(
                f"Slack {method} to {target}: {advice}",
                permanent=error not in _ADMIN_FIXES, maybe_sent=sure,
            )  # fmt: skip
        return DeliveryError(f"Slack {method} to {target} failed: {error}", maybe_sent=sure)


def parse_destination(destination: str, *, message_id: int) -> str:
    """``slack:C123`` / ``slack:#sales`` → the channel; ``slack:@U123`` → ``@U123`` (a DM)."""
    target = destination.removeprefix(PREFIX).strip()
    if not destination.startswith(PREFIX) or target in ("", "#", "@"):
        raise DeliveryError(
            f"outbox message {message_id}: destination {destination!r} is not "
            f"'{PREFIX}<channel id or #name>' or '{PREFIX}@<user id>'",
            permanent=True,
        )
    return target


_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
_MESSAGE_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments"}
)
# An admin fixes these without touching the message (a token, an invite, a scope, an
# unarchive): the message waits for it, up to the outbox's give-up time. A user id that
# does not exist, or a message Slack refuses, stays wrong: those are permanent.
_ADMIN_FIXES = _TOKEN_ERRORS | {
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "missing_scope",
}
_CANNOT_READ = frozenset({"missing_scope", "not_in_channel", "channel_not_found"})


def _history_advice() -> str:
    return (
        "(to check for an earlier post the bot needs the channels:history, groups:history "
        "and im:history scopes: add them to the Slack app and reinstall it)"
    )


def _is_post_of(item: Mapping[str, Any], outbox_id: int, bot_id: str | None) -> bool:
    """A history message posted by this bot for outbox message ``outbox_id``."""
    metadata = item.get("metadata")
    if not isinstance(metadata, Mapping) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    if not isinstance(payload, Mapping) or str(payload.get("outbox_id")) != str(outbox_id):
        return False
    return bot_id is None or item.get("bot_id") in (None, bot_id)


def admin_advice(error: str, target: str, data: Mapping[str, Any]) -> str | None:
    """What the admin must do about an error no retry can fix; None when a retry may."""
    if error in _TOKEN_ERRORS:
        return (
            f"Slack refused the bot token ({error}): check SLACK_BOT_TOKEN (the app's "
            "Bot User OAuth Token, xoxb-…) and that the app is still installed"
        )
    if error == "not_in_channel":
        return f"the bot is not in {target} (not_in_channel): invite the bot to {target}"
    if error == "channel_not_found":
        return (
            f"no channel {target} the bot can see (channel_not_found): check the routing "
            f"destination, and invite the bot to {target} if it is private"
        )
    if error == "is_archived":
        return f"{target} is archived (is_archived): unarchive it or route alerts elsewhere"
    if error == "missing_scope":
        return (
            f"the bot token lacks the {data.get('needed', '?')!r} scope (missing_scope): add "
            "it to the Slack app, reinstall it, and update SLACK_BOT_TOKEN"
        )
    if error in ("user_not_found", "user_disabled", "cannot_dm_bot"):
        return f"cannot message {target} ({error}): check the user id in the routing config"
    if error in _MESSAGE_ERRORS:
        details = (data.get("response_metadata") or {}).get("messages") or data.get("errors")
        return f"Slack refused the message ({error}{f': {details}' if details else ''})"
    return None


def retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    """Slack's ``Retry-After`` in seconds, None when absent or unreadable."""
    for key, value in headers.items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


class ChannelPace:
    """Slack takes about one message per second per channel: each post reserves the next
    free slot of its channel and sleeps until then, so a burst is spread, not rate-limited.
    Reserving before sleeping keeps concurrent posts to one channel in distinct slots."""

    def __init__(self, *, clock: Callable[[], float], sleep: Sleep, interval: float) -> None:
        self.clock = clock
        self.sleep = sleep
        self.interval = interval
        self._next: dict[str, float] = {}
        self._aliases: dict[str, str] = {}

    async def wait(self, channel: str) -> None:
        key = self._aliases.get(channel, channel)
        now = self.clock()
        slot = max(now, self._next.get(key, now))
        self._next[key] = slot + self.interval
        if slot > now:
            await self.sleep(slot - now)

    def channel_id(self, channel: str) -> str:
        """The id Slack answered for ``#name`` when a post there taught it; else as given."""
        return self._aliases.get(channel, channel)

    def alias(self, name: str, channel_id: str) -> None:
        """``#sales`` and the id Slack answered are one channel: pace them together."""
        if name == channel_id or name in self._aliases:
            return
        self._aliases[name] = channel_id
        if name in self._next:
            self._next[channel_id] = max(self._next.pop(name), self._next.get(channel_id, 0.0))


class _Sleeps:
    """Retry handlers sleep through an injected ``sleep`` (tests control time)."""

    sleep: Sleep

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await self.sleep(self._wait(state, response))
        state.increment_current_attempt()

    def _wait(self, state: RetryState, response: HttpResponse | None) -> float:
        interval: float = self.interval_calculator.calculate_sleep_duration(state.current_attempt)  # type: ignore[attr-defined]
        return interval


def _is_post(request: HttpRequest) -> bool:
    return request.url.rstrip("/").endswith(POST)


class _ConnectionErrors(_Sleeps, AsyncConnectionErrorRetryHandler):
    """A post is retried in place only when it never connected: after a dropped
    connection Slack may have it, and the outbox's unsure path looks before posting."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _is_post(request):
            return isinstance(error, aiohttp.ClientConnectorError)
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class _ServerErrors(_Sleeps, AsyncServerErrorRetryHandler):
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # A 5xx to a post may come after Slack stored it: the outbox looks before re-posting.
        if _is_post(request):
            return False
        return response is not None and response.status_code in (500, 502, 503, 504)


class _ShortRateLimits(_Sleeps, AsyncRateLimitErrorRetryHandler):
    """Waits in place only for a short ``Retry-After``; a longer one goes back to the outbox
    (sleeping a minute here would hold every other message behind this one)."""

    max_wait: float

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_seconds(response.headers)
        return wait is not None and wait <= self.max_wait

    def _wait(self, state: RetryState, response: HttpResponse | None) -> float:
        return retry_after_seconds(response.headers if response else {}) or 1.0


def retry_handlers(*, retries: int, max_wait: float, sleep: Sleep) -> list[AsyncRetryHandler]:
    """``slack_sdk``'s connection, server-error and rate-limit handlers, each allowed
    ``retries`` in-place retries (one count shared by all three per request)."""
    handlers: list[AsyncRetryHandler] = [
        _ConnectionErrors(max_retry_count=retries),
        _ServerErrors(max_retry_count=retries),
    ]
    limits = _ShortRateLimits(max_retry_count=retries)
    limits.max_wait = max_wait
    handlers.append(limits)
    for handler in handlers:
        handler.sleep = sleep  # type: ignore[attr-defined]
    return handlers
