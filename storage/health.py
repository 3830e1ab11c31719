"""What readiness checks and the metrics endpoint read from the database, and which
failures mean the database itself is down."""

from __future__ import annotations

import os
from collections import Counter

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.ingest import OUTBOX


def is_outage(exc: BaseException) -> bool:
    """The database is unreachable, locked, full or dropped the connection: nothing about
    the request itself, so a retry later will do (a 503, not a 4xx)."""
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or exc.statement is None):
        return True  # no statement: it failed while connecting
    return isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError)


def is_database_outage(exc: BaseException) -> bool:
    """``is_outage``, and raised through SQLAlchemy. Where only the database is called (a
    commit, a claim) ``is_outage`` says enough; where other services are called too (a chat
    command, an admin command) a bare ``OSError`` or ``TimeoutError`` may be Slack's or a
    CRM's, and must not be reported as the database's. asyncpg's refused connection comes up
    bare, so the traceback tells: it passes through SQLAlchemy's frames."""
    if not is_outage(exc):
        return False
    if isinstance(exc, SQLAlchemyError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}sqlalchemy{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


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
