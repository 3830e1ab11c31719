"""Outbox claims: each message is delivered by one worker at a time, and retried after a
crash once its lease runs out. On PostgreSQL rows are claimed with ``SKIP LOCKED`` so
several replicas share the work without waiting on each other.

A claim takes the lease and bumps ``attempts``; ``attempts`` is also the claim's token.
``start`` renews the lease of one message right before it is sent and answers whether the
caller still holds it (a worker whose lease ran out and was taken over must not send);
``mark_sent`` and ``mark_failed`` change a row only while the caller holds it.

``unsure`` says a send was started and its outcome is unknown (set by ``start``, cleared
when the outcome is recorded): the next attempt looks for the earlier post first.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union, union_all, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.ingest import OUTBOX

STATUSES = ("pending", "sending", "sent", "dead")


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: str
    lead_id: str | None
    destination: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime | None = None
    # An earlier attempt may have reached the platform: look for it before posting again.
    unsure: bool = False
    retried_at: datetime | None = None
    # For an unsure message: the channel id where alerts to this destination landed before
    # (a Slack ``#name`` resolved after a restart), filled in by the dispatcher.
    seen_in: str | None = None


DUE = ("pending", "sending")  # a sending message is due again once its lease ran out


async def claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    lease: timedelta,
    limit: int = 10,
    per_destination: int | None = None,
    destination: str | None = None,
    skip: Collection[str] = (),
) -> list[Claimed]:
    """Lease up to ``limit`` due messages (pending, or sending with an expired lease),
    oldest first: at most ``per_destination`` of each destination, the oldest of every
    destination before the second of any (one backlog does not fill a claim); only
    ``destination``'s when given; none of ``skip`` (the caller is sending to them).

    A destination another worker holds a live lease on is left to it, so one worker at a
    time sends to a destination: its messages go in order and its pacing holds across
    replicas. (A crashed worker's live lease holds its destination back until it runs out.)

    The cost does not grow with a backlog: the destinations are found by skipping through
    ``ix_outbox_status_destination`` and each one's oldest due messages are read from it in
    id order (a claim over 96,000 waiting messages took 114–187 ms when it ranked them all;
    migration 0015).
    """
    wanted = [destination] if destination is not None else await _destinations(conn)
    names = [d for d in wanted if d not in skip]
    take = limit if per_destination is None else min(limit, per_destination)
    if not names or take <= 0:
        return []
    found = (await conn.execute(_oldest_due(names, now, take))).all()
    chosen = _in_claim_order(found, per_destination)[:limit]
    if not chosen:
        return []
    due = OUTBOX.c.status.in_(DUE) & (OUTBOX.c.available_at <= now)
    # Due again: PostgreSQL re-reads a row that was locked meanwhile.
    query = select(OUTBOX).where(OUTBOX.c.id.in_(chosen), due).order_by(OUTBOX.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).mappings().all()
    if not rows:
        return []
    # Still due: on SQLite another process may have claimed between the SELECT and here.
    taken = await conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_([r["id"] for r in rows]), OUTBOX.c.available_at <= now)
        .where(OUTBOX.c.status.in_(DUE))
        .values(status="sending", available_at=now + lease, attempts=OUTBOX.c.attempts + 1)
        .returning(OUTBOX.c.id)
    )
    ids_taken = set(taken.scalars())
    return [_claimed(r) for r in rows if r["id"] in ids_taken]


async def _destinations(conn: AsyncConnection) -> list[str]:
    """The destinations with a pending or sending message: one index seek per destination
    and status (a recursive skip through the index), however many messages wait."""
    return sorted(set((await conn.execute(_destinations_query())).scalars()))


@functools.cache
def _destinations_query() -> Any:
    """Built once: the statement has no parameters, and building it (two table aliases of
    14 columns each) cost ~1.5 ms of the event loop's CPU a claim, every few sends."""
    walks = []
    for status in DUE:
        found = OUTBOX.alias(f"found_{status}")
        first = select(func.min(OUTBOX.c.destination).label("name")).where(
            OUTBOX.c.status == status
        )
        walk = first.cte(f"walk_{status}", recursive=True)
        following = (
            select(func.min(found.c.destination))
            .where(found.c.status == status, found.c.destination > walk.c.name)
            .scalar_subquery()
        )
        walk = walk.union_all(select(following).where(walk.c.name.is_not(None)))
        walks.append(select(walk.c.name).where(walk.c.name.is_not(None)))
    return union(*walks)


# The same alias in every claim: an alias copies the table's columns when it is made.
_OTHER = OUTBOX.alias("other")


def _oldest_due(names: Sequence[str], now: datetime, take: int) -> Any:
    """``(destination, id)`` of at most ``take`` due messages per destination and status,
    oldest first, of the destinations no live lease holds."""
    parts = []
    for name in names:
        held = (
            select(_OTHER.c.id)
            .where(_OTHER.c.destination == name, _OTHER.c.status == "sending")
            .where(_OTHER.c.available_at > now)
            .exists()
        )
        for status in DUE:
            oldest = (
                select(OUTBOX.c.destination, OUTBOX.c.id)
                .where(OUTBOX.c.status == status, OUTBOX.c.destination == name)
                .where(OUTBOX.c.available_at <= now, ~held)
                .order_by(OUTBOX.c.id)
                .limit(take)
                .subquery()
            )
            parts.append(select(oldest.c.destination, oldest.c.id))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _in_claim_order(found: Sequence[Any], per_destination: int | None) -> list[int]:
    """Ids oldest first; with ``per_destination``, at most that many of each destination,
    each one's oldest before any one's second."""
    ids = sorted(found, key=lambda row: row[1])
    if per_destination is None:
        return [row[1] for row in ids]
    nth: dict[str, int] = {}
    ranked = []
    for name, message_id in ids:
        nth[name] = nth.get(name, 0) + 1
        if nth[name] <= per_destination:
            ranked.append((nth[name], message_id))
    return [message_id for _, message_id in sorted(ranked)]


def _claimed(r: Any) -> Claimed:
    return Claimed(
        r["id"], r["kind"], r["lead_id"], r["destination"], r["payload"], r["attempts"] + 1,
        r["created_at"], bool(r["unsure"]), r["retried_at"],
    )  # fmt: skip


async def start(conn: AsyncConnection, message: Claimed, *, until: datetime) -> bool:
    """Renew the lease of a claimed message to ``until`` right before sending it, marking
    its outcome unknown; False when the caller no longer holds it (do not send)."""
    result = await conn.execute(
        update(OUTBOX)
        .where(_held(message))
        .values(available_at=until, unsure=True)
    )  # fmt: skip
    return result.rowcount == 1


async def mark_sent(conn: AsyncConnection, message: Claimed, *, now: datetime) -> bool:
    """Delivered; False (nothing changed) when the caller had lost the message."""
    result = await conn.execute(
        update(OUTBOX)
        .where(_held(message))
        .values(status="sent", sent_at=now, last_error=None, unsure=False)
    )
    return result.rowcount == 1


async def mark_failed(
    conn: AsyncConnection,
    message: Claimed,
    *,
    error: str,
    retry_at: datetime | None,
    unsure: bool,
) -> bool:
    """Schedule a retry at ``retry_at``, or give up (``dead``) when it is None. ``unsure``:
    the platform may have the message (the next attempt looks for it first)."""
    values: dict[str, Any] = {"last_error": error[:2000], "unsure": unsure}
    if retry_at is None:
        values["status"] = "dead"
    else:
        values.update(status="pending", available_at=retry_at)
    result = await conn.execute(update(OUTBOX).where(_held(message)).values(**values))
    return result.rowcount == 1


def _held(message: Claimed) -> Any:
    """The row as this claim left it: still sending, and not claimed again since."""
    return (
        (OUTBOX.c.id == message.id)
        & (OUTBOX.c.status == "sending")
        & (OUTBOX.c.attempts == message.attempts)
    )


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """Messages per status, for stats and tests."""
    result = await conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
    return {status: n for status, n in result}


@dataclass(frozen=True, slots=True)
class Listed:
    """One outbox message as ``leadbot outbox list`` shows it (no payload: it may be big)."""

    id: int
    kind: str
    lead_id: str | None
    destination: str
    status: str
    attempts: int
    created_at: datetime
    available_at: datetime
    sent_at: datetime | None
    last_error: str | None
    unsure: bool


async def listing(
    conn: AsyncConnection, *, statuses: Sequence[str], limit: int = 1000
) -> list[Listed]:
    """Messages with one of ``statuses``, oldest first."""
    query = (
        select(OUTBOX)
        .where(OUTBOX.c.status.in_(list(statuses)))
        .order_by(OUTBOX.c.created_at, OUTBOX.c.id)
        .limit(limit)
    )
    return [_listed(r) for r in (await conn.execute(query)).mappings()]


def _listed(r: Any) -> Listed:
    return Listed(
        r["id"], r["kind"], r["lead_id"], r["destination"], r["status"], r["attempts"],
        r["created_at"], r["available_at"], r["sent_at"], r["last_error"], bool(r["unsure"]),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Dead:
    """How many messages gave up, and since when the oldest of them waits."""

    count: int
    oldest: datetime | None


def dead_of(conn: Connection) -> Dead:
    """The dead messages' count and oldest creation time (synchronous: the digest's
    snapshot reads it in its own transaction)."""
    query = select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "dead")
    row = conn.execute(query).one()
    return Dead(int(row[0]), row[1])


async def dead_summary(conn: AsyncConnection) -> Dead:
    return await conn.run_sync(dead_of)


async def retry(conn: AsyncConnection, *, ids: Sequence[int] | None, now: datetime) -> list[int]:
    """Dead messages (``ids``, or all of them when None) back to pending with a fresh
    give-up budget from ``now``; anything not dead (a sent one above all) is left alone.
    ``unsure`` is kept: one that may have been posted is still looked for first."""
    stmt = (
        update(OUTBOX)
        .where(OUTBOX.c.status == "dead")
        .values(status="pending", attempts=0, available_at=now, retried_at=now)
        .returning(OUTBOX.c.id)
    )
    if ids is not None:
        stmt = stmt.where(OUTBOX.c.id.in_(list(ids)))
    return sorted((await conn.execute(stmt)).scalars())


async def statuses_of(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, str]:
    """The status of each of ``ids`` that exists."""
    result = await conn.execute(
        select(OUTBOX.c.id, OUTBOX.c.status).where(OUTBOX.c.id.in_(list(ids)))
    )
    return {i: s for i, s in result}
