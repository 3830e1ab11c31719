"""Where alerts were posted, so a click can re-render the message it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.crm import record_links
from storage.tables import AlertPost, OutboxMessage

POSTS = AlertPost.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PostedAlert:
    lead_id: str
    outbox_id: int | None
    payload: dict[str, Any]


async def record_post(
    session: AsyncSession,
    *,
    lead_id: str,
    outbox_id: int | None,
    platform: str,
    channel: str,
    ts: str,
    at: datetime,
) -> None:
    """Remember an alert's message (idempotent: a re-delivery records nothing twice)."""
    assert session.bind is not None
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(POSTS).values(
        lead_id=lead_id, outbox_id=outbox_id, platform=platform, channel=channel, ts=ts,
        posted_at=at,
    )  # fmt: skip
    await session.exec(stmt.on_conflict_do_nothing(index_elements=["platform", "channel", "ts"]))  # type: ignore[call-overload]


async def find_post(
    session: AsyncSession, *, platform: str, channel: str, ts: str
) -> PostedAlert | None:
    """The alert posted as this message, with the payload it was rendered from and the
    lead's CRM records known now (``crm_records``: a record may be found after the post)."""
    query = (
        select(POSTS.c.lead_id, POSTS.c.outbox_id, OUTBOX.c.payload)
        .select_from(POSTS.outerjoin(OUTBOX, OUTBOX.c.id == POSTS.c.outbox_id))
        .where(POSTS.c.platform == platform, POSTS.c.channel == channel, POSTS.c.ts == ts)
    )
    row = (await session.exec(query)).first()  # type: ignore[call-overload]
    if row is None:
        return None
    lead_id, outbox_id, payload = row
    connection = await session.connection()
    links = await connection.run_sync(lambda c: record_links(c, lead_ids=[lead_id]))
    payload = dict(payload or {})
    if links.get(lead_id):
        payload["crm_records"] = links[lead_id]
    return PostedAlert(lead_id, outbox_id, payload)


async def post_of(conn: AsyncConnection, *, outbox_id: int) -> tuple[str, str] | None:
    """(channel, ts) of the post recorded for an outbox message, if any: a message whose
    post is recorded reached its platform, whatever happened after."""
    query = select(POSTS.c.channel, POSTS.c.ts).where(POSTS.c.outbox_id == outbox_id).limit(1)
    row = (await conn.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def channel_of(conn: AsyncConnection, *, platform: str, destination: str) -> str | None:
    """The channel id where the latest alert to ``destination`` (e.g. ``slack:#sales``)
    landed: how a channel name is matched to its id after a restart."""
    query = (
        select(POSTS.c.channel)
        .select_from(POSTS.join(OUTBOX, OUTBOX.c.id == POSTS.c.outbox_id))
        .where(POSTS.c.platform == platform, OUTBOX.c.destination == destination)
        .order_by(POSTS.c.posted_at.desc())
        .limit(1)
    )
    return (await conn.execute(query)).scalar()
