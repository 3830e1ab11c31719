"""Outbox claims: each message is delivered by one worker at a time, and retried after a
crash once its lease runs out. On PostgreSQL rows are claimed with ``SKIP LOCKED`` so
several replicas share the work without waiting on each other."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.ingest import OUTBOX


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: str
    lead_id: str | None
    destination: str
    payload: dict[str, Any]
    attempts: int


async def claim(
    conn: AsyncConnection, *, now: datetime, lease: timedelta, limit: int = 50
) -> list[Claimed]:
    """Lease up to ``limit`` due messages (pending, or sending with an expired lease)."""
    query = (
        select(OUTBOX)
        .where(OUTBOX.c.status.in_(("pending", "sending")), OUTBOX.c.available_at <= now)
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        return []
    await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_([r["id"] for r in rows]))
        .values(status="sending", available_at=now + lease, attempts=OUTBOX.c.attempts + 1)
    )
    return [
        Claimed(r["id"], r["kind"], r["lead_id"], r["destination"], r["payload"], r["attempts"] + 1)
        for r in rows
    ]


async def mark_sent(conn: AsyncConnection, *, message_id: int, now: datetime) -> None:
    await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == message_id)
        .values(status="sent", sent_at=now, last_error=None)
    )


async def mark_failed(
    conn: AsyncConnection, *, message_id: int, error: str, retry_at: datetime | None
) -> None:
    """Schedule a retry at ``retry_at``, or give up (``dead``) when it is None."""
    values: dict[str, Any] = {"last_error": error[:2000]}
    if retry_at is None:
        values["status"] = "dead"
    else:
        values.update(status="pending", available_at=retry_at)
    await conn.execute(update(OUTBOX).where(OUTBOX.c.id == message_id).values(**values))


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """Messages per status, for stats and tests."""
    result = await conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    return {status: n for status, n in result}
