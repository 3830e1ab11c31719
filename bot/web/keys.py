"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.inbound import InboundEvent
from bot.ingest.pipeline import IngestResult
from bot.ingest.signatures import WebhookVerifier
from bot.ingest.writekeys import WriteKeys
from bot.jobs.scheduler import Scheduler
from bot.outbox.dispatcher import Dispatcher


class Ingest(Protocol):
    """Stores a request's events and answers once they are committed: ``GroupCommitter``
    in this process, or ``IngestProcess`` in a writer process."""

    async def submit(self, events: Sequence[InboundEvent]) -> IngestResult: ...

    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int
    max_event_bytes: int
    clock: Callable[[], float]


ENGINE = web.AppKey("engine", AsyncEngine)
INGEST = web.AppKey("ingest", Ingest)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
VERIFIER: web.AppKey[WebhookVerifier | None] = web.AppKey("verifier")
# The tracking API's write keys (bot.ingest.tracking); None when serving open (--insecure
# and no key set).
WRITE_KEYS: web.AppKey[WriteKeys | None] = web.AppKey("write_keys")
LIMITS = web.AppKey("limits", Limits)
SCHEDULER = web.AppKey("scheduler", Scheduler)  # its ``fire(job, now)`` runs a slot now
