"""Retention: what the bot stops keeping (``bot.jobs.retention`` runs it on a schedule).

- ``handled_requests``: keys of chat requests acted on; platforms retry within minutes.
- ``outbox`` rows delivered (``sent``) before a cut-off. Never a pending, sending or dead
  row, and never a sent row something still reads: one an ``alert_posts`` row points at (a
  click re-renders the alert from its payload), one about its lead's current alert (the SLA
  sweep's "escalated already" and "where was it alerted", the decay sweep's "where to post
  the cooling notice"; its dedupe key also keeps the follow-up from being queued again), or
  the proposal of a model version still waiting for a decision (its card is redrawn from it).
- ``events.payload`` (the raw call as received) of events received before a cut-off, set to
  ``{}``. The row stays: ``message_id`` keeps a replay of an old message a duplicate, and
  ``lead_id``, ``type``, ``name`` and the times stay for what reads them. Scores never read
  payloads (the lead's ``state`` holds what scoring needs), so pruning changes no score.

Synchronous functions on a ``Connection`` in the caller's transaction; deletes go by
batches of ``BATCH`` rows so a first run over a large outbox never holds the write lock long.

Payloads are pruned in ascending id order, every id below the first event too recent, so
the pruned rows are always a prefix of the table in id order (ids follow arrival; an event
received out of order only waits for the next run). A run finds where the last one stopped
by bisecting on that prefix (a few dozen primary-key look-ups) instead of scanning millions
of rows already pruned, and needs no bookmark of its own.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, func, not_, or_, select, update
from sqlalchemy.engine import Connection

from storage.tables import AlertPost, Event, HandledRequest, Lead, ModelVersion, OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
VERSIONS = ModelVersion.__table__  # type: ignore[attr-defined]
HANDLED = HandledRequest.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]

BATCH = 1000
PAYLOAD_BATCH = 5000  # events per transaction: ~50 ms of write lock on SQLite (see the bench)
PRUNED: dict[str, object] = {}
PROPOSAL = "proposal"


def prune_handled_requests(conn: Connection, *, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` request keys recorded before ``before``; how many went."""
    keys = select(HANDLED.c.key).where(HANDLED.c.at < before).limit(limit)
    doomed = list(conn.execute(keys).scalars())
    if not doomed:
        return 0
    return int(conn.execute(delete(HANDLED).where(HANDLED.c.key.in_(doomed))).rowcount)


def prune_sent_outbox(conn: Connection, *, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` outbox rows sent before ``before`` that nothing still reads
    (see the module's docstring); how many went."""
    posted = exists(select(POSTS.c.id).where(POSTS.c.outbox_id == OUTBOX.c.id))
    current = exists(
        select(LEADS.c.id).where(
            LEADS.c.id == OUTBOX.c.lead_id, LEADS.c.alerted_at <= OUTBOX.c.created_at
        )
    )
    waiting = [
        OUTBOX.c.dedupe_key.like(f"{PROPOSAL}:v{int(version)}:%")
        for version in conn.execute(select(VERSIONS.c.id).where(VERSIONS.c.status == "proposed"))
        .scalars()
    ]  # fmt: skip
    undecided = and_(OUTBOX.c.kind == PROPOSAL, or_(*waiting)) if waiting else None
    query = select(OUTBOX.c.id).where(
        OUTBOX.c.status == "sent",
        func.coalesce(OUTBOX.c.sent_at, OUTBOX.c.created_at) < before,
        not_(posted),
        not_(current),
    )
    if undecided is not None:
        query = query.where(not_(undecided))
    doomed = list(conn.execute(query.order_by(OUTBOX.c.id).limit(limit)).scalars())
    if not doomed:
        return 0
    return int(conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(doomed))).rowcount)


def first_unpruned_event(conn: Connection) -> int | None:
    """The lowest event id whose payload is still there (None: none is), by bisection over
    the pruned prefix (see the module's docstring)."""

    def at_or_after(event_id: int) -> tuple[int, bool] | None:  # (id, pruned)
        query = select(EVENTS.c.id, EVENTS.c.payload).where(EVENTS.c.id >= event_id)
        row = conn.execute(query.order_by(EVENTS.c.id).limit(1)).first()
        return None if row is None else (int(row.id), not row.payload)

    bounds = conn.execute(select(func.min(EVENTS.c.id), func.max(EVENTS.c.id))).one()
    if bounds[0] is None:
        return None
    # Invariant: every event below ``low`` is pruned; the first event at or after ``high``
    # is not (or there is none).
    low, high = int(bounds[0]), int(bounds[1]) + 1
    while low < high:
        middle = (low + high) // 2
        found = at_or_after(middle)
        if found is not None and found[1]:
            low = found[0] + 1
        else:
            high = middle
    first = at_or_after(low)
    return None if first is None else first[0]


def prune_event_payloads(
    conn: Connection, *, start: int, before: datetime, limit: int = PAYLOAD_BATCH
) -> tuple[int, int | None]:
    """Empty the payloads of up to ``limit`` events from id ``start`` on, in id order,
    stopping at the first one received at or after ``before``. Set-based: the batch's last
    id, its first recent event and the update are three statements, whatever ``limit``.

    Returns (payloads emptied, the id the next batch starts at: None when this one reached
    an event too recent or the end of the table)."""
    after = select(EVENTS.c.id).where(EVENTS.c.id >= start)
    last = conn.execute(after.order_by(EVENTS.c.id).offset(limit - 1).limit(1)).scalar()
    full = last is not None
    if last is None:
        last = conn.execute(select(func.max(EVENTS.c.id)).where(EVENTS.c.id >= start)).scalar()
        if last is None:
            return 0, None
    batch = (EVENTS.c.id >= start, EVENTS.c.id <= last)
    recent = conn.execute(
        select(func.min(EVENTS.c.id)).where(*batch, EVENTS.c.received_at >= before)
    ).scalar()
    upto = int(last) + 1 if recent is None else int(recent)
    # received_at again: a row committed since the look-up (PostgreSQL) is never pruned early.
    emptied = conn.execute(
        update(EVENTS)
        .where(EVENTS.c.id >= start, EVENTS.c.id < upto, EVENTS.c.received_at < before)
        .values(payload=PRUNED)
    ).rowcount
    return int(emptied), upto if full and recent is None else None
