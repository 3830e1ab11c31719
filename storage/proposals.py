"""Model proposals as they were sent: the payload a manager's proposal card was rendered
from, kept by the outbox (one row per destination, all alike), so a click can redraw it."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
PROPOSAL = "proposal"


class SentProposal(NamedTuple):
    outbox_id: int
    version: int
    payload: dict[str, Any]


async def sent_proposal(engine: AsyncEngine, *, version: int) -> SentProposal | None:
    """The first proposal message queued for model ``version`` (dedupe keys are
    ``proposal:v<version>:<destination>``), or None."""
    query = (
        select(OUTBOX.c.id, OUTBOX.c.payload)
        .where(OUTBOX.c.kind == PROPOSAL)
        .where(OUTBOX.c.dedupe_key.like(f"{PROPOSAL}:v{int(version)}:%"))
        .order_by(OUTBOX.c.id)
        .limit(1)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or not row.payload:
        return None
    return SentProposal(int(row.id), int(version), dict(row.payload))
