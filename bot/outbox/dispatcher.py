"""The outbox dispatcher: delivers what the pipeline decided, once, with retries.

Messages are claimed a few at a time with a lease. Right before each send the dispatcher
renews that message's lease (``storage.outbox.start``) and sends only if it still holds
it; the send is cut off well inside the lease (``send_timeout``), so no other worker can
claim a message while one is sending it. The message is then marked sent, or retried.

Outages only delay: a failure is retried with capped exponential backoff (or at the
``Retry-After`` the platform asked for, which never counts against the message) until
``give_up_hours`` (24 h by default, ``LEADBOT_OUTBOX_GIVE_UP_HOURS``) have passed since
it was created (or since ``leadbot outbox retry``); only then, or on a permanent error (a
message the platform will never take), does it go ``dead``, its last error kept.

Posted once across a crash: a send whose outcome is unknown (a crash or a timeout after
the request went out, a 5xx) leaves the row ``unsure``. Before sending it again the
dispatcher looks in ``alert_posts`` for a recorded post, and the transport may look on the
platform (Slack: the message metadata ``leadbot_outbox``); what is found is marked sent
without posting again. See docs/architecture.md for what remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.chat.plain import clean
from bot.metrics import OUTBOX_DELIVERIES
from bot.outbox.messages import Kind, UnknownKind, decode
from bot.outbox.text import plain_text
from bot.throttle import Throttled
from storage import outbox as repo
from storage.crm import record_links
from storage.health import is_outage
from storage.outbox import Claimed
from storage.posts import channel_of, post_of

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
CLAIM_LIMIT = 10  # messages per claim: each is renewed before its send anyway
PER_DESTINATION = 5  # messages of one destination a lane holds at once (paced ~1/s)
MAX_LANES = 8  # destinations sent to at once (each lane uses a database connection briefly)
GIVE_UP_HOURS = 24.0
BACKOFF_CAP = 300.0  # seconds: a transport back from an outage is used within 5 minutes


class DeliveryError(Exception):
    """A transport could not deliver. ``retry_after`` (seconds) if the platform said when;
    ``permanent`` when no retry can succeed; ``maybe_sent`` whether the platform may have
    the message anyway (True: a timeout or 5xx after the request went out; False: it
    surely does not; None: this attempt learnt nothing, what was known before stands)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        maybe_sent: bool | None = None,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent
        self.maybe_sent = maybe_sent


class Transport(Protocol):
    async def deliver(self, message: Claimed) -> None: ...


class ConsoleTransport:
    """Prints every message as plain text (``bot.outbox.text``): the local default while no
    chat platform is configured."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def deliver(self, message: Claimed) -> None:
        stream = self.stream or sys.stdout
        try:
            typed = decode(message.kind, message.payload)
        except UnknownKind:  # a kind newer than this code: its text, else its fields
            text = message.payload.get("text")
            lines = str(text).splitlines() if text else [_summary(message.payload)]
            body = "\n".join(clean(line) for line in lines)
        except ValueError as exc:  # the same payload fails the same way next time
            raise DeliveryError(f"outbox message {message.id}: {exc}", permanent=True) from exc
        else:
            body = plain_text(typed)
        if message.kind == Kind.ALERT:
            stream.write(body + "\n\n")
        else:
            stream.write(f"[{message.kind}] {body}\n\n")
        stream.flush()


def _summary(payload: Mapping[str, Any]) -> str:
    """A payload with no text, without its bulky fields (a chart's base64)."""
    return ", ".join(f"{k}={v!r}"[:200] for k, v in payload.items() if k not in ("chart", "blocks"))


class ByDestination:
    """Hands each message to the transport of its destination's platform: ``slack:…`` to
    the Slack transport, ``console`` to the console. An unknown platform is a permanent
    failure that names it (the message stays in the outbox as ``dead``)."""

    def __init__(self, transports: Mapping[str, Transport]) -> None:
        self.transports = dict(transports)

    async def deliver(self, message: Claimed) -> None:
        platform = message.destination.split(":", 1)[0]
        transport = self.transports.get(platform)
        if transport is None:
            known = ", ".join(sorted(self.transports))
            raise DeliveryError(
                f"no transport for {message.destination!r} (configured: {known})", permanent=True
            )
        await transport.deliver(message)


async def with_crm_records(conn: AsyncConnection, message: Claimed) -> Claimed:
    """An alert with its lead's CRM record links as known now (``crm_records``): the
    record is often found after the alert was queued (the CRM sync writes the score of a
    lead that just turned hot), so the link is read at send time, once per alert, off the
    ingest path. Other kinds pass through."""
    if message.kind != Kind.ALERT or not message.lead_id:
        return message
    lead = message.lead_id
    links = await conn.run_sync(lambda c: record_links(c, lead_ids=[lead]))
    if not links.get(lead):
        return message
    return dataclasses.replace(message, payload={**message.payload, "crm_records": links[lead]})


def backoff(attempts: int) -> float:
    """Seconds before retry ``attempts`` + 1: 2, 4, 8 … capped at ``BACKOFF_CAP``."""
    return float(min(BACKOFF_CAP, 2 ** min(attempts, 32)))


def platform_of(destination: str) -> str:
    """``slack:#sales`` → ``slack``: the transport label of the metrics."""
    return destination.split(":", 1)[0]


HEAD_CLAIM_SECONDS = 0.1


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        transport: Transport,
        *,
        clock: Callable[[], float],
        poll_seconds: float = 1.0,
        give_up_hours: float = GIVE_UP_HOURS,
        lease: timedelta = LEASE,
        claim_limit: int = CLAIM_LIMIT,
        per_destination: int = PER_DESTINATION,
        max_lanes: int = MAX_LANES,
    ) -> None:
        if not give_up_hours > 0:
            raise ValueError(f"give_up_hours must be more than 0, got {give_up_hours!r}")
        for name, value in (("per_destination", per_destination), ("max_lanes", max_lanes)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value!r}")
        self.engine = engine
        self.transport = transport
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.give_up = timedelta(hours=give_up_hours)
        self.lease = lease
        # A send is cut off with a quarter of its lease left: nobody can claim it meanwhile.
        self.send_timeout = lease.total_seconds() * 0.75
        self.claim_limit = claim_limit
        self.per_destination = per_destination
        self.max_lanes = max_lanes
        self._wake = asyncio.Event()
        self._last_head_claim = float("-inf")
        self._retries = Throttled(log, period=60.0)
        self._loop_failures = Throttled(log, period=60.0)

    def wake(self) -> None:
        """Called after a commit that may have queued messages: deliver without waiting."""
        self._wake.set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def run_once(self) -> int:
        """Deliver every due message; returns how many were delivered.

        One lane per destination (at most ``max_lanes`` at once) sends that destination's
        messages in order, and lanes run concurrently: a destination that is paced,
        rate-limited or slow holds back only itself. While lanes run, new destinations
        are claimed as lanes finish, when woken (a new message) or every poll interval.
        A lane's failure (the database is down) stops new claims; it is raised once the
        running lanes have finished their sends."""
        lanes: dict[str, asyncio.Task[int]] = {}
        delivered = 0
        failure: Exception | None = None
        try:
            while True:
                if failure is None and len(lanes) < self.max_lanes:
                    try:
                        self._open_lanes(lanes, await self._claim_heads(lanes))
                    except Exception as exc:
                        failure = exc
                if not lanes:
                    break
                await self._until_lane_ends_or_woken(lanes.values())
                for destination in [d for d, lane in lanes.items() if lane.done()]:
                    lane = lanes.pop(destination)
                    if lane.cancelled():  # only run_once cancels its lanes; be safe anyway
                        continue
                    error = lane.exception()
                    if error is None:
                        delivered += lane.result()
                    elif failure is None:
                        failure = error if isinstance(error, Exception) else RuntimeError(error)
        except BaseException:  # cancelled (shutdown): the lanes stop too, leases cover them
            for lane in lanes.values():
                lane.cancel()
            await asyncio.gather(*lanes.values(), return_exceptions=True)
            raise
        if failure is not None:
            raise failure
        return delivered

    async def _claim_heads(self, lanes: Mapping[str, object]) -> list[Claimed]:
        """The oldest due messages of destinations no lane of ours is sending to."""
        self._last_head_claim = asyncio.get_running_loop().time()
        self._wake.clear()  # before claiming: a wake after this claims again
        free = self.max_lanes - len(lanes)
        async with self.engine.begin() as conn:
            return await repo.claim(
                conn, now=self._now(), lease=self.lease, limit=min(self.claim_limit, free),
                per_destination=self.per_destination, skip=list(lanes),
            )  # fmt: skip

    def _open_lanes(self, lanes: dict[str, asyncio.Task[int]], batch: list[Claimed]) -> None:
        by_destination: dict[str, list[Claimed]] = {}
        for message in batch:  # oldest first within each destination
            by_destination.setdefault(message.destination, []).append(message)
        for destination, messages in by_destination.items():
            lanes[destination] = asyncio.create_task(
                self._lane(destination, messages), name=f"outbox lane {destination}"
            )

    async def _lane(self, destination: str, batch: list[Claimed]) -> int:
        """Send one destination's messages one after another, claiming more of them as
        long as some are due; each message's lease is renewed right before its send."""
        delivered = 0
        while batch:
            for message in batch:
                delivered += await self._deliver(message)
            async with self.engine.begin() as conn:
                batch = await repo.claim(
                    conn, now=self._now(), lease=self.lease, limit=self.per_destination,
                    destination=destination,
                )  # fmt: skip
        return delivered

    async def _until_lane_ends_or_woken(self, lanes: Iterable[asyncio.Task[int]]) -> None:
        """Until a lane ends, the poll interval passes, or a wake comes — then at least
        ``HEAD_CLAIM_SECONDS`` after the last claim of new destinations (a lane ending
        cuts that wait short)."""
        lanes = list(lanes)
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait(
                [*lanes, woken], timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            woken.cancel()
        if woken in done:
            await self._settle(lanes)

    async def _settle(self, lanes: Sequence[asyncio.Task[int]] = ()) -> None:
        """Wait out the rest of ``HEAD_CLAIM_SECONDS`` since the last claim of new
        destinations. Under ingest load every commit that queues an alert wakes the
        dispatcher; a claim per wake (hundreds a second) cost the ingest a fifth of its
        requests (measured). Lanes claim their own destination's messages meanwhile."""
        wait = self._last_head_claim + HEAD_CLAIM_SECONDS - asyncio.get_running_loop().time()
        if wait > 0:
            if lanes:
                await asyncio.wait(lanes, timeout=wait)
            else:
                await asyncio.sleep(wait)

    async def _deliver(self, message: Claimed) -> int:
        recorded = None
        async with self.engine.begin() as conn:
            held = await repo.start(conn, message, until=self._now() + self.lease)
            if held:
                message = await with_crm_records(conn, message)
            if held and message.unsure:
                recorded = await post_of(conn, outbox_id=message.id)
                seen_in = await channel_of(
                    conn, platform=platform_of(message.destination),
                    destination=message.destination,
                )  # fmt: skip
                message = dataclasses.replace(message, seen_in=seen_in)
        if not held:
            log.info("outbox message %d was taken over by another worker; not sending it",
                     message.id)  # fmt: skip
            return 0
        if recorded is not None:  # an earlier attempt posted it and recorded where
            log.info("outbox message %d was already posted (%s %s); not posting it again",
                     message.id, *recorded)  # fmt: skip
            return await self._sent(message, outcome="found")
        try:
            async with asyncio.timeout(self.send_timeout):
                await self.transport.deliver(message)
        except Exception as exc:
            await self._failed(message, exc)
            return 0
        return await self._sent(message, outcome="sent")

    async def _sent(self, message: Claimed, *, outcome: str) -> int:
        async with self.engine.begin() as conn:
            marked = await repo.mark_sent(conn, message, now=self._now())
        if not marked:
            log.error("outbox message %d was delivered after its claim was lost: another "
                      "worker may deliver it again", message.id)  # fmt: skip
        OUTBOX_DELIVERIES.labels(transport=platform_of(message.destination), outcome=outcome).inc()
        self._retries.recovered(message.destination, f"deliveries to {message.destination} work")
        return 1

    async def _failed(self, message: Claimed, exc: Exception) -> None:
        now = self._now()
        retry_after: float | None = getattr(exc, "retry_after", None)
        # A platform that says when to come back (429 + Retry-After) is pacing us, not
        # failing: those waits never count, or a long rate limit would kill alerts.
        start = message.retried_at or message.created_at or now
        expired = retry_after is None and now >= start + self.give_up
        dead = bool(getattr(exc, "permanent", False)) or expired
        wait = retry_after if retry_after is not None else backoff(message.attempts)
        retry_at = None if dead else now + timedelta(seconds=wait)
        unsure = _maybe_sent(exc, message)
        error = str(exc) or repr(exc)
        if expired and not getattr(exc, "permanent", False):
            error = f"gave up after {self.give_up.total_seconds() / 3600:g} h: {error}"
        async with self.engine.begin() as conn:
            await repo.mark_failed(conn, message, error=error, retry_at=retry_at, unsure=unsure)
        platform = platform_of(message.destination)
        OUTBOX_DELIVERIES.labels(transport=platform, outcome="dead" if dead else "retry").inc()
        if dead:
            log.error(
                "outbox message %d (%s to %s) is dead after %d attempt(s): %s%s; "
                "see `leadbot outbox list`, then `leadbot outbox retry %d`",
                message.id, message.kind, message.destination, message.attempts, error,
                " (it may have been posted)" if unsure else "", message.id,
            )  # fmt: skip
            return
        assert retry_at is not None
        self._retries.failed(
            message.destination,
            "delivery to %s failed (outbox message %d, attempt %d): %s; retrying at %s",
            message.destination, message.id, message.attempts, error, f"{retry_at:%H:%M:%S}",
        )  # fmt: skip

    async def run(self) -> None:
        """Background loop: deliver, then sleep until woken or the poll interval passes."""
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # once per period, with a count
                # An outage says all in one line; anything else is a bug: its traceback.
                self._loop_failures.failed(
                    "run", "outbox dispatcher failed; retrying: %r", exc,
                    exc_info=not is_outage(exc),
                )  # fmt: skip
            else:
                self._loop_failures.recovered("run", "outbox dispatcher delivers again")
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for around an Event that is
            # set as the task is cancelled can leave the task stuck cancelling (seen at
            # shutdown: the bot never finished stopping).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            await self._settle()
            self._wake.clear()


def _maybe_sent(exc: Exception, message: Claimed) -> bool:
    """Whether the platform may hold the message after this failure: the transport's word,
    else what was known before; a timeout or an unexpected error may come after the post."""
    said = getattr(exc, "maybe_sent", None) if isinstance(exc, DeliveryError) else True
    return message.unsure if said is None else bool(said)
