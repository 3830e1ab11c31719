"""Display names of the people who act in chat (``people``): ``teams:<AAD object id>`` →
``Riley Rep``. The Teams adapter saves a name each time a user acts (Teams activities
carry it); digests read them back to name reps, and keep the ref for matching.
Slack refs need no row: Slack renders ``<@U…>`` mentions itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import Person

PEOPLE = Person.__table__  # type: ignore[attr-defined]
NAME_MAX = 255


async def remember_name(conn: AsyncConnection, *, ref: str, name: str, at: datetime) -> None:
    """Save ``ref``'s display name (a blank name keeps the one stored)."""
    name = " ".join(name.split())[:NAME_MAX]
    if not ref or not name:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(PEOPLE).values(ref=ref[:NAME_MAX], name=name, updated_at=at)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["ref"], set_={"name": name, "updated_at": at})
    )


def names_of(conn: Connection, refs: Iterable[str | None]) -> dict[str, str]:
    """ref → display name for those of ``refs`` with one stored."""
    wanted = sorted({r for r in refs if r})
    if not wanted:
        return {}
    query = select(PEOPLE.c.ref, PEOPLE.c.name).where(PEOPLE.c.ref.in_(wanted))
    return {ref: name for ref, name in conn.execute(query)}
