"""The outbox dispatcher: delivers what the pipeline decided, once, with retries.

Messages are claimed with a lease, handed to the transport for their destination, then
marked sent. A failed delivery is retried with backoff (or at the ``Retry-After`` the
platform asked for); a crash mid-delivery is retried when the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.text import clean, render_alert
from storage import outbox as repo
from storage.outbox import Claimed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=2)


class DeliveryError(Exception):
    """A transport could not deliver; ``retry_after`` (seconds) if the platform said when."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Transport(Protocol):
    async def deliver(self, message: Claimed) -> None: ...


class ConsoleTransport:
    """Prints alerts: the local default while no chat platform is configured."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def deliver(self, message: Claimed) -> None:
        stream = self.stream or sys.stdout
        if message.kind == "alert":
            stream.write(render_alert(message.payload) + "\n\n")
        else:  # the neutral text every other kind carries (a digest: its plain rendering)
            text = message.payload.get("plain") or message.payload.get("text")
            lines = str(text).splitlines() if text else [_summary(message.payload)]
            body = "\n".join(clean(line) for line in lines)
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


def backoff(attempts: int) -> float:
    """Seconds before retry ``attempts`` + 1: 2, 4, 8 … capped at 10 minutes."""
    return float(min(600, 2**attempts))


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        transport: Transport,
        *,
        clock: Callable[[], float],
        poll_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.clock = clock
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Called after a commit that may have queued messages: deliver without waiting."""
        self._wake.set()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def run_once(self) -> int:
        """Deliver every due message; returns how many were delivered."""
        delivered = 0
        while True:
            async with self.engine.begin() as conn:
                batch = await repo.claim(conn, now=self._now(), lease=LEASE)
            if not batch:
                return delivered
            for message in batch:
                delivered += await self._deliver(message)

    async def _deliver(self, message: Claimed) -> int:
        try:
            await self.transport.deliver(message)
        except Exception as exc:
            await self._failed(message, exc)
            return 0
        async with self.engine.begin() as conn:
            await repo.mark_sent(conn, message_id=message.id, now=self._now())
        return 1

    async def _failed(self, message: Claimed, exc: Exception) -> None:
        retry_after = getattr(exc, "retry_after", None)
        # A platform that says when to come back (429 + Retry-After) is pacing us, not
        # failing: those waits never use up the attempts, or an outage would kill alerts.
        exhausted = retry_after is None and message.attempts >= MAX_ATTEMPTS
        permanent = getattr(exc, "permanent", False) or exhausted
        retry_at = (
            None
            if permanent
            else self._now()
            + timedelta(
                seconds=retry_after if retry_after is not None else backoff(message.attempts)
            )
        )
        log.warning(
            "delivery of outbox message %d (%s to %s) failed, attempt %d: %s%s",
            message.id, message.kind, message.destination, message.attempts, exc,
            "; giving up" if retry_at is None else f"; retrying at {retry_at:%H:%M:%S}",
        )  # fmt: skip
        async with self.engine.begin() as conn:
            await repo.mark_failed(conn, message_id=message.id, error=str(exc), retry_at=retry_at)

    async def run(self) -> None:
        """Background loop: deliver, then sleep until woken or the poll interval passes."""
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("outbox dispatcher failed; retrying")
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for around an Event that is
            # set as the task is cancelled can leave the task stuck cancelling (seen at
            # shutdown: the bot never finished stopping).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
