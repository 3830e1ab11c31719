"""Chat requests already acted on, so a platform's retry never acts twice.

Slack resends a command, click or event it did not see acknowledged in time. The adapter
names each request by a key (``slack:cmd:<sha256 of the signed body>``) and asks
``first_time``: the primary key decides, atomically, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import HandledRequest

MAX_KEY = 255


async def insert_new(
    session: AsyncSession, *, model: type[SQLModel], values: Mapping[str, Any]
) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING``: True when the row was added, False
    when a unique key already held it (a concurrent insert of the same key waits for the
    other transaction, then sees it). Does not commit."""
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    statement = insert(table).values(**values).on_conflict_do_nothing()
    pk = next(iter(table.primary_key.columns))
    result = await session.exec(statement.returning(pk))
    return result.first() is not None


async def first_time(session: AsyncSession, *, key: str, at: datetime) -> bool:
    """True the first time ``key`` is seen, False for every retry of it.

    Does not commit: commit in the same transaction as the work the key guards, so a
    request that failed half-way is not marked handled and its retry does the work.
    """
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"request key must be 1 to {MAX_KEY} characters, got {key!r}")
    return await insert_new(session, model=HandledRequest, values={"key": key, "at": at})


async def forget_handled(session: AsyncSession, *, before: datetime) -> int:
    """Drop keys recorded before ``before`` (platforms retry within minutes, so a day of
    keys is plenty); returns how many went. Does not commit."""
    result = await session.exec(delete(HandledRequest).where(col(HandledRequest.at) < before))
    return int(result.rowcount)
