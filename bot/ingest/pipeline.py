"""Ingest: events → identities → stored feature state → score → history and alerts, in one
transaction per group of requests, with set-based SQL and no replay of a lead's history."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.alerts import WhyNow, alert_payload, previous_alert, should_alert
from bot.chat.routing import Router
from bot.ingest.identity import ANON_PREFIX, Resolver, identity_keys
from bot.ingest.inbound import InboundEvent
from bot.ingest.orders import record_orders
from bot.models.live import ActiveModel
from bot.outbox.messages import Kind
from config.loader import LeadbotConfig
from scoring import LeadState, Model, Score, score
from scoring.bands import Thresholds, default_thresholds
from storage import crm, locks
from storage import ingest as repo
from storage.checkpoints import WAL_HARD_LIMIT, WalCheckpointer
from storage.engine import sqlite_path, sqlite_writer_engine
from storage.ingest import StoredLead
from storage.offloop import Worker, gc_paused
from storage.rawsql import sqlstate

log = logging.getLogger(__name__)

# A transaction PostgreSQL rolled back to break a deadlock or a serialization conflict, or
# because the shared lock table was full, is run again: at most RETRIES tries, jittered
# backoff from BACKOFF seconds.
DEADLOCK, SERIALIZATION, OUT_OF_SHARED_MEMORY = "40P01", "40001", "53200"
RETRYABLE = frozenset({DEADLOCK, SERIALIZATION, OUT_OF_SHARED_MEMORY})
RETRIES = 5
BACKOFF = 0.01


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class GroupResult:
    """The counts of each request of a group commit, and how many alerts it queued."""

    results: list[IngestResult]
    alerts: int


def display(traits: Mapping[str, Any]) -> dict[str, str | None]:
    """Name and company to show for a lead, from whatever traits it has: Segment's spec
    names (``firstName``, ``lastName``) or the snake-case ones CRMs export."""
    name = traits.get("name")
    if not name:
        first = traits.get("firstName") or traits.get("first_name")
        last = traits.get("lastName") or traits.get("last_name")
        name = " ".join(str(p) for p in (first, last) if p) or None
    company = traits.get("company")
    if isinstance(company, Mapping):
        company = company.get("name")
    return {
        "name": str(name)[:255] if name else None,
        "company": str(company)[:255] if company else None,
    }


@dataclass
class _Lead:
    """A lead being worked on inside one transaction."""

    id: str
    state: LeadState
    row: StoredLead | None
    why: WhyNow | None = None
    why_points: float = float("-inf")
    # Its profile columns (e-mail, name, company) may change: a new lead, an identify, a
    # merge. Else only its state and scores are rewritten (``storage.ingest.update_leads``).
    profile: bool = False

    def note(self, event: InboundEvent, matched_points: float, rules: tuple[str, ...]) -> None:
        """Keep the event that mattered most as the 'why now' of any change."""
        if matched_points >= self.why_points:
            path = event.properties.get("path") if event.type == "page" else None
            label = str(path or event.name or "")
            self.why = WhyNow(event.type, label, event.timestamp, rules)
            self.why_points = matched_points


@dataclass
class Pipeline:
    """Turns accepted events into stored scores. Shared by every request; call ``close()``.

    The transaction body is synchronous code on a ``Connection`` and runs in one go, off
    the event loop: on SQLite in a single writer thread (SQLite has one writer anyway), on
    PostgreSQL on an ingest worker (``storage.offloop.Worker``: a thread with its own loop
    and pool). Either way a group of events costs one hop, not one per statement.
    On PostgreSQL several replicas may ingest at once: the transaction locks its identity
    keys and leads first (``storage.locks``) and is run again when the database broke a
    deadlock.
    """

    engine: AsyncEngine
    config: LeadbotConfig
    # SQLite only: run the transaction on the calling thread. Right where nothing else
    # shares the thread (the writer process), where a thread hop and the contention for
    # the GIL with the event loop cost more than the transaction itself.
    inline: bool = False
    router: Router = field(default_factory=Router)
    # SQLite only: the bytes of log in use past which the writer copies it back itself after
    # a commit (storage.checkpoints.WalCheckpointer.bound).
    wal_hard_limit: int = WAL_HARD_LIMIT
    thresholds: Thresholds = field(init=False)
    # The model follows the active stored version, read in each transaction (bot.models.live).
    active: ActiveModel = field(init=False)
    _writer: Engine | None = field(init=False, default=None)
    _thread: ThreadPoolExecutor | None = field(init=False, default=None)
    _conn: Connection | None = field(init=False, default=None)
    _worker: Worker | None = field(init=False, default=None)
    _checkpoints: WalCheckpointer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.thresholds = default_thresholds(self.config.model.bands)
        self.active = ActiveModel(self.config.model)
        self._writer = sqlite_writer_engine(self.engine, own_checkpoints=True)
        url = self.engine.url.render_as_string(hide_password=False)
        path = sqlite_path(url) if self._writer is not None else None
        if path is not None:  # its commits never wait on a checkpoint's disk sync
            self._checkpoints = WalCheckpointer(path, hard_limit=self.wal_hard_limit).start()
        if self._writer is not None and not self.inline:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadbot-writer")
        if self._writer is None and not self.inline:
            self._worker = Worker(self.engine, pooled=True, name="leadbot-ingest")

    @property
    def model(self) -> Model:
        return self.active.model

    async def close(self) -> None:
        if self._worker is not None:
            await self._worker.aclose()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
        if self._writer is not None:
            self._writer.dispose()
        if self._checkpoints is not None:
            self._checkpoints.stop()

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ingest(self, events: Sequence[InboundEvent], *, now: float) -> IngestResult:
        """Store one request's events in their own transaction."""
        return (await self.ingest_many([events], now=now)).results[0]

    async def ingest_many(
        self, requests: Sequence[Sequence[InboundEvent]], *, now: float
    ) -> GroupResult:
        """Store several requests' events in ONE transaction (group commit); all or nothing.
        Returns each request's counts once the transaction is committed."""
        if self._writer is not None and self._thread is None:
            return self._transaction(requests, now)
        if self._writer is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._transaction, requests, now)
        return await self._shared_transaction(requests, now)

    async def _shared_transaction(
        self, requests: Sequence[Sequence[InboundEvent]], now: float
    ) -> GroupResult:
        """The group on a database other processes write too (PostgreSQL): a deadlock or a
        serialization failure rolls it back whole, so it is simply run again."""
        alone = False
        for attempt in range(1, RETRIES + 1):
            try:
                if self._worker is not None:
                    return await self._worker.write(self._apply, requests, now, alone)
                async with self.engine.begin() as conn:  # inline: this loop has nothing else
                    return await conn.run_sync(self._apply, requests, now, alone)
            except DBAPIError as exc:
                state = sqlstate(exc)
                if attempt == RETRIES or state not in RETRYABLE:
                    raise
                # The shared lock table is full: the next try takes the gate alone.
                alone = alone or state == OUT_OF_SHARED_MEMORY
                log.warning("ingest group retried (SQLSTATE %s, try %d)", state, attempt)
                await asyncio.sleep(random.uniform(0.5, 1.5) * BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _transaction(self, requests: Sequence[Sequence[InboundEvent]], now: float) -> GroupResult:
        assert self._writer is not None
        # One connection for the writer's life: a pool check-out per group costs more than
        # some of the statements in it.
        if self._conn is None:
            self._conn = self._writer.connect()
        # The cyclic collector off for the transaction: a group of thousands of events
        # allocates enough for many collections, each walking every object of the group
        # still alive (bench_writer, groups of 1,000: 85 → 62 µs of CPU an event). Its
        # objects are freed by reference counting when it returns; PostgreSQL's worker
        # (storage.offloop) does the same.
        with self._conn.begin(), gc_paused():
            result = self._apply(self._conn, requests, now)
        if self._checkpoints is not None:  # a log past its cap is copied back now
            self._checkpoints.bound(self._conn.connection.dbapi_connection)  # type: ignore[arg-type]
        return result

    def _follow_model(self, conn: Connection) -> None:
        before = self.active.model
        model = self.active.follow(conn)
        if model is not before and not model.bands.uses_percentiles:
            self.thresholds = default_thresholds(model.bands)

    def _apply(
        self,
        conn: Connection,
        requests: Sequence[Sequence[InboundEvent]],
        now: float,
        alone: bool = False,
    ) -> GroupResult:
        events = [e for request in requests for e in request]
        keys = _all_keys(events)
        # Replicas on one PostgreSQL: lock every identity key, then resolve (READ COMMITTED
        # reads what the last holder committed), then lock every lead to be written; only
        # then read the leads. See storage.locks for the order that rules out deadlocks.
        fine = locks.enter(conn, keys, alone=alone)
        # After the gate: an activation (which holds it exclusively) has committed by now.
        self._follow_model(conn)
        resolver = Resolver(repo.resolve_identities(conn, keys=keys))
        lead_ids = [resolver.assign(e) for e in events]
        merges = [(src, dst) for src, dst in resolver.merges if src != dst]
        if fine:
            locks.lock_leads(conn, [*lead_ids, *(lead for pair in merges for lead in pair)])
        inserted = repo.insert_new_events(
            conn, rows=[_event_row(e, lid, now) for e, lid in zip(events, lead_ids, strict=True)]
        )
        results, counted = _count(requests, lead_ids, inserted)
        rows = repo.load_leads(
            conn, ids={lid for _, lid in counted} | {s for s, _ in merges} | {d for _, d in merges}
        )
        leads = {lid: _Lead(lid, _state(rows.get(lid)), rows.get(lid)) for lid in rows}
        for event, lid in counted:
            lead = leads.get(lid) or leads.setdefault(lid, _Lead(lid, LeadState(), None))
            self._apply_event(lead, event)
        for src, dst in merges:
            self._merge(conn, leads, src, dst)
        record_orders(conn, counted, merges, self.config.rfm, now)  # RFM: bot/ingest/orders.py
        merged_away = {src for src, _ in merges}
        alerts = self._store(conn, [v for k, v in leads.items() if k not in merged_away], now)
        repo.link_identities(conn, links=resolver.links)
        return GroupResult(results, alerts)

    def _apply_event(self, lead: _Lead, event: InboundEvent) -> None:
        if event.type in ("identify", "alias"):
            lead.profile = True
            lead.state.identify(event.traits, self.model, event.timestamp)
            lead.note(event, 0.0, ())
            return
        matched = lead.state.event(
            event.type, event.name, event.properties, self.model, event.timestamp
        )
        lead.note(event, sum(r.points for r in matched), tuple(r.label for r in matched))

    def _merge(self, conn: Connection, leads: dict[str, _Lead], src: str, dst: str) -> None:
        source = leads.get(src)
        target = leads.get(dst) or leads.setdefault(dst, _Lead(dst, LeadState(), None))
        target.profile = True
        if source is not None:
            target.state.merge(source.state, self.model)
            if target.why is None:
                target.why, target.why_points = source.why, source.why_points
        repo.absorb_lead(conn, source=src, target=dst)

    def _store(self, conn: Connection, leads: list[_Lead], now: float) -> int:
        """Score, record history, decide alerts and write it all; returns alerts queued."""
        policy = self.config.alerts
        upserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        rebanded: list[dict[str, Any]] = []  # updates that change the band
        history: list[tuple[Any, ...]] = []
        outbox: list[dict[str, Any]] = []
        to_crm: list[str] = []  # leads whose CRM record must get the new score
        for lead in leads:
            model = self.active.model_for(lead.id)
            result = score(lead.state, model, now, self.thresholds, explain=False)
            row = self._lead_row(lead, result, now)
            prev_score = lead.row.score if lead.row else None
            prev_band = lead.row.band if lead.row else None
            prev_grade = lead.row.grade if lead.row else None
            moved = abs(result.total - (prev_score or 0.0)) >= policy.history_min_delta
            if result.band != (prev_band or "cold") or moved:
                why = lead.why.describe() if lead.why else "update"
                history.append(
                    (lead.id, now, result.total, str(result.band), prev_score, prev_band, why[:255])
                )
            if row["email"] and (moved or result.band != prev_band or result.grade != prev_grade):
                to_crm.append(lead.id)
            if lead.why and should_alert(
                previous_band=prev_band, band=result.band, alerted_at=row["alerted_at"], now=now,
                cooldown_seconds=policy.cooldown_hours * 3600, anonymous=row["anonymous"],
            ):  # fmt: skip
                last = row["alerted_at"]
                row["alerted_at"] = now
                # No destination (an import's router): no payload to build and explain.
                if destinations := self.router.destinations(lead.state.traits):
                    explained = score(lead.state, model, now, self.thresholds)
                    outbox += self._alert_rows(lead, row, explained, now, last, destinations)
            if lead.profile or lead.row is None:
                upserts.append(row)
            else:
                (updates if row["band"] == prev_band else rebanded).append(row)
        repo.upsert_leads(conn, rows=upserts)
        repo.update_leads(conn, rows=updates, band=False)
        repo.update_leads(conn, rows=rebanded)
        repo.add_history(conn, rows=history)
        crm.mark_dirty(conn, crms=self.config.crm.targets, lead_ids=to_crm, at=now)
        return repo.enqueue(conn, rows=outbox)

    def _lead_row(self, lead: _Lead, result: Score, now: float) -> dict[str, Any]:
        traits = lead.state.traits
        email = traits.get("email") if isinstance(traits.get("email"), str) else None
        first = lead.state.first_seen or now
        last = lead.state.last_seen or first
        stored = lead.row
        return {
            "id": lead.id,
            "email": email.strip().lower()[:320] if email else None,
            **display(traits),
            "anonymous": lead.id.startswith(ANON_PREFIX),
            "state": lead.state.to_dict(),
            "score": result.total,
            "fit": result.fit,
            "intent": result.intent,
            "band": str(result.band),
            "grade": result.grade,
            "engagement": result.engagement,
            "probability": result.probability,
            "first_seen_at": first,
            "last_event_at": last,
            "scored_at": now,
            "alerted_at": stored.alerted_at if stored else None,
        }

    def _alert_rows(
        self,
        lead: _Lead,
        row: Mapping[str, Any],
        result: Score,
        now: float,
        last: float | None,
        destinations: Sequence[str],
    ) -> list[dict[str, Any]]:
        """One outbox row per destination of the lead's route; a repeat (``last``: the
        previous alert) says so, with the claim the loaded row already carries."""
        assert lead.why is not None
        stored = lead.row
        previous = previous_alert(
            last, stored.claimed_by if stored else None, stored.claimed_at if stored else None
        )
        payload = alert_payload(
            lead=row, traits=lead.state.traits, score=result, why=lead.why, now=now,
            previous=previous,
        )  # fmt: skip
        return [
            {
                "kind": Kind.ALERT,
                "lead_id": lead.id,
                "destination": destination,
                "dedupe_key": f"alert:{lead.id}:{int(now)}:{destination}"[:255],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "available_at": now,
                "created_at": now,
            }
            for destination in destinations
        ]


def _all_keys(events: Sequence[InboundEvent]) -> list[str]:
    return [key for e in events for key in identity_keys(e)]


def _state(row: StoredLead | None) -> LeadState:
    return LeadState.from_dict(row.state) if row else LeadState()


def _event_row(event: InboundEvent, lead_id: str, now: float) -> tuple[Any, ...]:
    """A row in ``storage.ingest.EVENT_COLUMNS`` order."""
    name = (event.name or "")[:255] or None
    return (event.message_id, lead_id, event.type, name, event.timestamp, now, event.raw)


def _count(
    requests: Sequence[Sequence[InboundEvent]], lead_ids: list[str], inserted: set[str]
) -> tuple[list[IngestResult], list[tuple[InboundEvent, str]]]:
    """Per request: accepted vs duplicate. A message id repeated inside the group counts
    for its first request only."""
    results, counted, claimed = [], [], set()
    i = 0
    for request in requests:
        accepted = 0
        for event in request:
            if event.message_id in inserted and event.message_id not in claimed:
                claimed.add(event.message_id)
                counted.append((event, lead_ids[i]))
                accepted += 1
            i += 1
        results.append(IngestResult(accepted, len(request) - accepted))
    return results, counted
