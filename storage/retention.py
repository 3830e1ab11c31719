"""Retention: what the bot stops keeping (``bot.jobs.retention`` runs it on a schedule).

- ``handled_requests``: keys of chat requests acted on; platforms retry within minutes.
- ``outbox`` rows delivered (``sent``) before a cut-off. Never a pending, sending or dead
  row, and never a sent row something still reads: one an ``alert_posts`` row points at (a
  click re-renders the alert from its payload), one about its lead's current alert (the SLA
  sweep's "escalated already" and "where was it alerted", the decay sweep's "where to post
  the cooling notice"; its dedupe key also keeps the follow-up from being queued again), or
  the proposal of a model version still waiting for a decision (its card is redrawn from it).

Synchronous functions on a ``Connection`` in the caller's transaction; deletes go by
batches of ``BATCH`` rows so a first run over a large outbox never holds the write lock long.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, func, not_, or_, select
from sqlalchemy.engine import Connection

from storage.tables import AlertPost, HandledRequest, Lead, ModelVersion, OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
VERSIONS = ModelVersion.__table__  # type: ignore[attr-defined]
HANDLED = HandledRequest.__table__  # type: ignore[attr-defined]

BATCH = 1000
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
