"""The retention job: prune what the bot no longer needs (``storage.retention`` says what
is kept and why).

- chat request keys (``handled_requests``) older than a day: Slack and Teams retry within
  minutes, so a day of keys still answers every retry once;
- delivered outbox rows older than ``retention.sent_outbox_days`` (30 by default): a digest
  row alone carries a base64 PNG. Pending, sending and dead rows are never touched;
- raw event payloads received more than ``retention.event_payload_days`` ago (180 by
  default; null keeps them forever): the event rows stay (duplicates, counts, history), the
  payload becomes ``{}``, ``PAYLOAD_BATCH`` events per transaction.

It also moves the events tally up to the newest event (``storage.event_tally``), so
``stats`` counts only the events received since the last run.

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
from storage.event_tally import advance, boundary
from storage.retention import (
    BATCH,
    PAYLOAD_BATCH,
    first_unpruned_event,
    prune_event_payloads,
    prune_handled_requests,
    prune_sent_outbox,
)

log = logging.getLogger(__name__)

KEEP_HANDLED_REQUESTS = timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    handled_requests: int
    outbox: int
    event_payloads: int = 0
    events_counted: int = 0

    def summary(self) -> str:
        return (
            f"{self.handled_requests} request keys, {self.outbox} sent messages, "
            f"{self.event_payloads} event payloads pruned; {self.events_counted} new events "
            "counted into the tally"
        )


async def retention_sweep(engine: AsyncEngine, *, config: LeadbotConfig, now: float) -> Pruned:
    """Prune request keys older than a day, outbox rows sent more than
    ``retention.sent_outbox_days`` and event payloads received more than
    ``retention.event_payload_days`` before ``now`` (unix seconds)."""
    moment = datetime.fromtimestamp(now, UTC)
    outbox_before = moment - timedelta(days=config.retention.sent_outbox_days)
    payload_days = config.retention.event_payload_days
    async with offloop.Worker(engine) as worker:
        handled = await _drain(worker, prune_handled_requests, moment - KEEP_HANDLED_REQUESTS)
        outbox = await _drain(worker, prune_sent_outbox, outbox_before)
        payloads = 0
        if payload_days is not None:
            payloads = await prune_payloads(worker, moment - timedelta(days=payload_days))
        counted = await count_events(worker)
    pruned = Pruned(handled, outbox, payloads, counted)
    log.info("retention: %s", pruned.summary())
    return pruned


async def prune_payloads(
    worker: offloop.Worker, before: datetime, *, batch: int = PAYLOAD_BATCH
) -> int:
    """Empty the payloads of events received before ``before``, ``batch`` events per
    transaction (each commit lets the ingest writer in), from where the last run stopped."""
    start = await worker.read(first_unpruned_event)
    total = 0
    while start is not None:
        emptied, start = await worker.write(_payload_batch, start, before, batch)
        total += emptied
    return total


async def count_events(worker: offloop.Worker) -> int:
    """Move the events tally up to the newest event; how many it added. The newest id is
    read in a transaction of its own: on PostgreSQL it holds the ingest gate alone for that
    read only, and the counting runs beside the ingest."""
    return await worker.write(advance, await worker.write(boundary))


def _payload_batch(
    conn: Connection, start: int, before: datetime, batch: int
) -> tuple[int, int | None]:
    return prune_event_payloads(conn, start=start, before=before, limit=batch)


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
