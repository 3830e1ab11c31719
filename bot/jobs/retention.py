"""The retention job: prune what the bot no longer needs (``storage.retention`` says what
is kept and why).

- chat request keys (``handled_requests``) older than a day: Slack and Teams retry within
  minutes, so a day of keys still answers every retry once;
- delivered outbox rows older than ``retention.sent_outbox_days`` (30 by default): a digest
  row alone carries a base64 PNG. Pending, sending and dead rows are never touched.

It runs off the event loop, a batch per transaction, as the scheduler's ``retention`` job
(hourly by default; the slot is claimed once across replicas).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from config.loader import LeadbotConfig
from storage import offloop
from storage.retention import BATCH, prune_handled_requests, prune_sent_outbox

log = logging.getLogger(__name__)

KEEP_HANDLED_REQUESTS = timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    handled_requests: int
    outbox: int


async def retention_sweep(engine: AsyncEngine, *, config: LeadbotConfig, now: float) -> Pruned:
    """Prune request keys older than a day and outbox rows sent more than
    ``retention.sent_outbox_days`` before ``now`` (unix seconds)."""
    moment = datetime.fromtimestamp(now, UTC)
    outbox_before = moment - timedelta(days=config.retention.sent_outbox_days)
    async with offloop.Worker(engine) as worker:
        handled = await _drain(worker, prune_handled_requests, moment - KEEP_HANDLED_REQUESTS)
        outbox = await _drain(worker, prune_sent_outbox, outbox_before)
    log.info("retention: %d request keys, %d sent outbox rows pruned", handled, outbox)
    return Pruned(handled, outbox)


async def _drain(worker: offloop.Worker, prune: Callable[..., int], before: datetime) -> int:
    """``prune`` a batch per transaction until a batch comes back short."""

    def batch(conn: Connection) -> int:
        return prune(conn, before=before, limit=BATCH)

    total = 0
    while True:
        gone = await worker.write(batch)
        total += gone
        if gone < BATCH:
            return total
