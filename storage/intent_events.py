"""What a recount of intent rules reads and writes (``bot.models.backfill``): the stored events
an intent rule may match, the leads whose state holds a count for a rule, and the rewritten
states. Synchronous, inside the caller's transaction, a page at a time on both databases.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from storage.rawsql import execute_many, is_postgres, query
from storage.tables import Event, Lead

EVENTS = Event.__table__  # type: ignore[attr-defined]
LEADS = Lead.__table__  # type: ignore[attr-defined]
PAGE = 20_000  # events or leads a page


class StoredEvent(NamedTuple):
    lead_id: str
    type: str
    name: str | None
    at: float  # the event's time, unix seconds (what ingest counted it at)
    payload: dict[str, Any] | None  # the call as received, when asked for


def matching_events(
    conn: Connection,
    *,
    track_names: Sequence[str],
    types: Sequence[str] = (),
    payload: bool = False,
    page: int = PAGE,
) -> Iterator[list[StoredEvent]]:
    """Every stored track event whose lower-cased name is in ``track_names`` and every event
    of a type in ``types``, ``page`` at a time in id order (keyset: writes between pages are
    fine); with ``payload``, each with its stored call."""
    E = EVENTS.c
    wanted = []
    if track_names:
        wanted.append(and_(E.type == "track", func.lower(E.name).in_(sorted(set(track_names)))))
    if types:
        wanted.append(E.type.in_(sorted(set(types))))
    if not wanted:
        return
    columns = [E.id, E.lead_id, E.type, E.name, E.timestamp]
    if payload:
        columns.append(E.payload)
    after = 0
    while True:
        query = select(*columns).where(or_(*wanted), E.id > after).order_by(E.id).limit(page)
        rows = conn.execute(query).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [
            StoredEvent(r[1], r[2], r[3], r[4].timestamp(), r[5] if payload else None) for r in rows
        ]


def leads_counting(conn: Connection, *, rule_ids: Sequence[str], page: int = PAGE) -> set[str]:
    """The leads whose stored state holds a count for one of ``rule_ids``."""
    L = LEADS.c
    held = or_(*(L.state[("intent", rid)].isnot(None) for rid in rule_ids))
    found: set[str] = set()
    after = ""
    while rule_ids:
        query = select(L.id).where(held, L.id > after).order_by(L.id).limit(page)
        ids = conn.execute(query).scalars().all()
        if not ids:
            break
        found.update(ids)
        after = ids[-1]
    return found


def states_text(conn: Connection, lead_ids: Sequence[str]) -> dict[str, str]:
    """Each existing lead's stored state as its JSON text (decoded once, by the caller)."""
    if not lead_ids:
        return {}
    if is_postgres(conn):
        sql = "SELECT id, state::text FROM leads WHERE id = ANY($1::text[])"
        return dict(query(conn, sql, (list(lead_ids),)))
    marks = ",".join("?" * len(lead_ids))
    return dict(query(conn, f"SELECT id, state FROM leads WHERE id IN ({marks})", lead_ids))


def write_states(conn: Connection, states: Sequence[tuple[str, str]]) -> None:
    """Store each ``(state JSON text, lead id)``."""
    sql = "UPDATE leads SET state = {} WHERE id = {}"
    marks = ("$1", "$2") if is_postgres(conn) else ("?", "?")
    if states:
        execute_many(conn, sql.format(*marks), states)
