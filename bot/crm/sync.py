"""Scores out to the CRMs: every lead whose score, band or grade changed is written to its
record, batched, paced under the CRM's rate limit, retried, and never lost.

The ingest marks a changed lead dirty in the transaction that changed it
(``storage.crm.mark_dirty``): the ``crm_links`` row is the outbox of this kind of message,
one per lead and CRM, always carrying the lead's latest score rather than a queue of stale
ones. The syncer claims due rows (a lease, so replicas never write the same lead at once),
scores each lead *now* with the active model (what ``leadbot lead`` shows), writes a batch
through the connector, and clears a row only if the lead did not change after it was read.
A failed write moves the row's next try and pauses the CRM (its ``Retry-After``, else a
backoff); a record the CRM refuses alone waits a day or its lead's next change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.base import Connector, CrmRefused, CrmUnavailable, ScoreUpdate, WriteResult
from bot.ingest.pipeline import display
from bot.models.live import ActiveModel
from bot.outage import Backoff
from bot.throttle import Throttled
from scoring import LeadState, Model, Score, score
from scoring.bands import Thresholds
from storage import crm as repo
from storage.health import is_outage
from storage.tables import Lead

log = logging.getLogger(__name__)

LEADS = Lead.__table__  # type: ignore[attr-defined]
POLL_SECONDS = 1.0  # how often due rows are looked for when nothing woke the syncer
LEASE_SECONDS = 120.0  # a claimed row is this replica's until then (a crash frees it)
REFUSED_RETRY = 24 * 3600.0  # a record the CRM refused alone: again in a day, or on change
BACKOFF = (5.0, 15.0, 60.0, 300.0, 900.0)  # after failures in a row, without Retry-After
USAGE_EVERY = 3600.0  # seconds between two log lines of a CRM's API usage
PAUSE_REFUSED = 300.0  # a CRM refusing every request (a bad token): look again after this


@dataclass
class _Lane:
    """One CRM's pace and health, in this process."""

    connector: Connector
    last_request: float = float("-inf")
    paused_until: float = 0.0
    failures: int = 0
    written: int = 0
    usage_logged: float = float("-inf")  # monotonic time the API usage was last logged


@dataclass
class CrmSyncer:
    """Writes changed leads' scores to each connector's CRM until cancelled (``run``)."""

    engine: AsyncEngine
    connectors: Sequence[Connector]
    active: ActiveModel
    reasons: int = 3
    thresholds: Callable[[], Thresholds | None] = lambda: None
    clock: Callable[[], float] = time.time
    backoff: Backoff = field(default_factory=Backoff)  # while rounds fail
    _lanes: list[_Lane] = field(init=False)
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _log: Throttled = field(init=False, default_factory=lambda: Throttled(log, period=300.0))

    def __post_init__(self) -> None:
        self._lanes = [_Lane(c) for c in self.connectors]

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Write until cancelled. A round that fails (the database is down, or a bug) is
        logged once a period, waits on ``bot.outage``'s backoff and the loop goes on: the
        rows it had claimed keep their lease and their dirty state, so a later round writes
        them (the CRM takes the same score twice alike)."""
        while True:
            self._wake.clear()
            try:
                busy = await self._round()
            except Exception as exc:
                self._log.failed("round", "CRM sync failed; trying again: %r", exc,
                                 exc_info=not is_outage(exc))  # fmt: skip
                await asyncio.sleep(self.backoff.next())
                continue
            self.backoff.reset()
            self._log.recovered("round", "CRM sync works again")
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _round(self) -> bool:
        """One batch for each CRM; True when any was written."""
        busy = False
        for lane in self._lanes:
            busy = await self._drain(lane) or busy
        return busy

    async def run_once(self) -> int:
        """Write every due lead once, each CRM in turn (tests, ``leadbot crm sync``);
        returns how many records were written."""
        before = sum(lane.written for lane in self._lanes)
        for lane in self._lanes:
            while await self._drain(lane):
                pass
        return sum(lane.written for lane in self._lanes) - before

    async def _drain(self, lane: _Lane) -> bool:
        """One batch for ``lane`` if it is not paused; True when a batch was written."""
        now = self.clock()
        if now < lane.paused_until:
            return False
        connector = lane.connector
        updates, read_at = await self._claim(connector, now)
        if not updates:
            return False
        wait = lane.last_request + connector.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        lane.last_request = time.monotonic()
        try:
            result = await connector.write_scores(updates)
        except CrmUnavailable as exc:
            await self._failed(lane, updates, str(exc), exc.retry_after)
            return False
        except CrmRefused as exc:
            await self._failed(lane, updates, str(exc), PAUSE_REFUSED)
            return False
        except Exception as exc:  # a bug or a client's surprise: the rows wait, we go on
            log.exception("writing scores to %s failed", connector.name)
            await self._failed(lane, updates, f"{type(exc).__name__}: {exc}", None)
            return False
        await self._written(lane, result, read_at)
        return True

    async def _claim(self, connector: Connector, now: float) -> tuple[list[ScoreUpdate], float]:
        async with self.engine.begin() as conn:
            due = await conn.run_sync(
                lambda c: repo.claim_due(
                    c, crm=connector.name, now=now, limit=connector.batch_size,
                    lease_until=now + LEASE_SECONDS,
                )
            )  # fmt: skip
            if not due:
                return [], now
            model = await conn.run_sync(self.active.follow)
            rows = await conn.run_sync(_leads, [d.lead_id for d in due])
        records = {d.lead_id: d.record_id for d in due}
        thresholds = self.thresholds()
        assert model is self.active.model  # followed in this transaction: model_for is current
        updates = [
            _update(lead_id, email, state, records[lead_id], self.active.model_for(lead_id),
                    now, thresholds, self.reasons)
            for lead_id, (email, state) in rows.items()
        ]  # fmt: skip
        return updates, now

    async def _written(self, lane: _Lane, result: WriteResult, read_at: float) -> None:
        now = self.clock()
        written = {w.lead_id: (w.record_id, w.record_url) for w in result.written}
        name = lane.connector.name

        def record(conn: Connection) -> None:
            repo.mark_written(conn, crm=name, written=written, read_at=read_at, now=now)
            for lead_id, why in result.refused.items():
                retry_at = now + REFUSED_RETRY
                repo.mark_failed(conn, crm=name, lead_ids=[lead_id], error=why, retry_at=retry_at)

        async with self.engine.begin() as conn:
            await conn.run_sync(record)
        if result.refused:
            first = next(iter(result.refused.items()))
            log.warning("%s refused %d record(s); first: lead %s: %s", lane.connector.name,
                        len(result.refused), first[0], first[1])  # fmt: skip
        lane.written += len(written)
        usage = lane.connector.usage()
        if usage and time.monotonic() - lane.usage_logged >= USAGE_EVERY:
            log.info("%s: %d score(s) written since the start; %s", name, lane.written, usage)
            lane.usage_logged = time.monotonic()
        if lane.failures:
            log.warning("%s writes work again (after %d failure(s))", lane.connector.name,
                        lane.failures)  # fmt: skip
            self._log.recovered(lane.connector.name, f"{lane.connector.name} reachable again")
        lane.failures = 0

    async def _failed(
        self, lane: _Lane, updates: Sequence[ScoreUpdate], error: str, retry_after: float | None
    ) -> None:
        now = self.clock()
        delay = retry_after if retry_after is not None else _backoff(lane.failures)
        lane.failures += 1
        lane.paused_until = now + delay
        name = lane.connector.name
        self._log.failed(name, "writing scores to %s failed (%d lead(s) wait, next try in "
                         "%.0f s): %s", name, len(updates), delay, error)  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.run_sync(
                lambda c: repo.mark_failed(
                    c, crm=name, lead_ids=[u.lead_id for u in updates], error=error,
                    retry_at=now + delay,
                )
            )  # fmt: skip


def _backoff(failures: int) -> float:
    return BACKOFF[min(failures, len(BACKOFF) - 1)]


def _leads(conn: Connection, lead_ids: list[str]) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """Lead id → (e-mail, feature state) for the claimed leads still stored (a lead
    forgotten since it was marked is simply not written)."""
    query = select(LEADS.c.id, LEADS.c.email, LEADS.c.state).where(LEADS.c.id.in_(lead_ids))
    return {lead_id: (email, state) for lead_id, email, state in conn.execute(query)}


def _update(
    lead_id: str,
    email: str | None,
    stored_state: dict[str, Any],
    record_id: str | None,
    model: Model,
    now: float,
    thresholds: Thresholds | None,
    reasons: int,
) -> ScoreUpdate:
    state = LeadState.from_dict(stored_state)
    result = score(state, model, now, thresholds)
    traits = state.traits
    first = traits.get("firstName") or traits.get("first_name")
    last = traits.get("lastName") or traits.get("last_name")
    return ScoreUpdate(
        lead_id=lead_id, email=email, record_id=record_id, score=round(result.total, 1),
        band=str(result.band), grade=result.grade, probability=round(result.probability, 4),
        reasons=reasons_line(result, reasons), scored_at=now,
        first_name=str(first) if first else None, last_name=str(last) if last else None,
        company=display(traits)["company"],
    )  # fmt: skip


def reasons_line(result: Score, top: int) -> str:
    """The ``top`` largest contributions, largest first, on one line for a CRM field:
    ``Requested a demo +30 · Sales leader +15 · Free e-mail domain −15``."""
    parts = sorted((c for c in result.contributions if round(c.points, 1)),
                   key=lambda c: -abs(c.points))[:top]  # fmt: skip
    return " · ".join(f"{c.label} {_signed(c.points)}" for c in parts)


def _signed(points: float) -> str:
    text = f"{abs(points):.1f}".removesuffix(".0")
    return ("+" if points >= 0 else "−") + text


@contextlib.asynccontextmanager
async def running_syncer(syncer: CrmSyncer | None) -> AsyncIterator[None]:
    """Run ``syncer`` (when there is one) beside the app; cancelled on exit, and a row in
    flight keeps its lease and dirty state, so the next start writes it."""
    if syncer is None:
        yield
        return
    task = asyncio.create_task(syncer.run(), name="leadbot-crm-sync")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
