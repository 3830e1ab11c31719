"""Slack delivery for the outbox: one ``chat.postMessage`` per claimed message.

A brief hiccup (a 500, a dropped connection, a short ``Retry-After``) is absorbed in place
by ``slack_sdk``'s retry handlers. Anything longer becomes a ``DeliveryError`` carrying
Slack's ``Retry-After``, so the outbox reschedules the message: the dispatcher marks a
message sent only after ``deliver`` returns, so an outage delays alerts and never loses or
doubles them. Errors no retry can fix (a bad token, a channel the bot is not in) are
permanent, with a message telling the admin what to do.

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

from bot.outbox import DeliveryError
from storage.outbox import Claimed

log = logging.getLogger(__name__)

Render = Callable[[Mapping[str, Any]], tuple[list[dict[str, Any]], str]]
OnPosted = Callable[[Claimed, str, str], Awaitable[None]]
ThreadOf = Callable[[str, str], Awaitable[str | None]]  # (lead id, channel id) → thread ts
Sleep = Callable[[float], Awaitable[None]]

API_URL_ENV = "SLACK_API_URL"
PREFIX = "slack:"


class SlackTransport:
    """Posts outbox messages to Slack; satisfies ``bot.outbox.Transport``.

    ``renderers[kind](payload) -> (blocks, fallback_text)`` renders each kind of message
    (alerts, proposals…); a kind without one posts ``payload["text"]`` (and
    ``payload["blocks"]`` if any). ``on_posted(message,
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
        self._blocked_until = float("-inf")

    async def deliver(self, message: Claimed) -> None:
        target = parse_destination(message.destination, message_id=message.id)
        blocks, text = self._content(message)
        self._refuse_while_rate_limited()
        channel = await self._open_dm(target[1:]) if target.startswith("@") else target
        thread_ts = await self._thread(message, channel)
        await self.pace.wait(channel)
        response = await self._call(
            "chat.postMessage", target,
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks or None, thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False,
            ),
        )  # fmt: skip
        posted_in, ts = str(response["channel"]), str(response["ts"])
        self.pace.alias(channel, posted_in)
        await self._posted(message, posted_in, ts)
        await self._attach_chart(message, posted_in, ts)

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
        """Blocks and fallback text: rendered for known kinds, ``payload["text"]`` otherwise."""
        render = self.renderers.get(message.kind)
        if render is not None:
            try:
                return render(message.payload)
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

    def _refuse_while_rate_limited(self) -> None:
        """After Slack said "wait N seconds", do not call it again before then."""
        remaining = self._blocked_until - self.clock()
        if remaining > 0:
            raise DeliveryError(
                f"Slack rate limit: waiting {remaining:.0f} s more", retry_after=remaining
            )

    async def _call(
        self, method: str, target: str, send: Callable[[], Awaitable[AsyncSlackResponse]]
    ) -> AsyncSlackResponse:
        try:
            return await send()
        except SlackApiError as exc:
            raise self._api_error(method, target, exc.response) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Slack {method} at {self.base_url} unreachable: {exc!r}") from exc

    def _api_error(self, method: str, target: str, response: Any) -> DeliveryError:
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {response.status_code}")
        if response.status_code == 429 or error == "ratelimited":
            wait = retry_after_seconds(response.headers)
            if wait is not None:
                self._blocked_until = max(self._blocked_until, self.clock() + wait)
            return DeliveryError(f"Slack {method} to {target}: rate limited", retry_after=wait)
        advice = admin_advice(error, target, data)
        if advice is not None:
            return DeliveryError(f"Slack {method} to {target}: {advice}", permanent=True)
        return DeliveryError(f"Slack {method} to {target} failed: {error}")


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


class _ConnectionErrors(_Sleeps, AsyncConnectionErrorRetryHandler):
    pass


class _ServerErrors(_Sleeps, AsyncServerErrorRetryHandler):
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
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
