"""What readiness checks and the metrics endpoint read from the database."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.ingest import OUTBOX


async def ping(conn: AsyncConnection) -> None:
    """Raises when the database cannot answer a trivial query."""
    await conn.execute(text("SELECT 1"))


async def outbox_by_transport(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Outbox messages per (transport, status); the transport is the destination's
    platform prefix (``slack``, ``teams``, ``console``). Grouped by destination in SQL and
    folded here: a deployment has few destinations, and the prefix is not portable SQL."""
    rows = await conn.execute(
        select(OUTBOX.c.destination, OUTBOX.c.status, func.count()).group_by(
            OUTBOX.c.destination, OUTBOX.c.status
        )
    )
    counts: Counter[tuple[str, str]] = Counter()
    for destination, status, n in rows:
        counts[(destination.split(":", 1)[0], status)] += n
    return dict(counts)
