"""How many events are stored, without counting ten million rows each time someone asks.

``event_tally`` holds one row: ``events``, how many events have an id up to ``counted_to``.
The count is that plus the events after it, a range of the primary key: the retention job
moves ``counted_to`` up (``advance``), so the range is at most about an hour of events.

It stays exact because:

- no event can appear at or below ``counted_to`` after it moved there. On SQLite the one
  writer gives each new row the largest id plus one, so a row never lands below one already
  committed, and ``delete_events`` lowers ``counted_to`` when a deletion took the largest
  ids (which SQLite would then hand out again). On PostgreSQL ids come from a sequence and
  transactions commit in any order, so the id to move to is read under the ingest gate held
  alone (``boundary``, its own short transaction): every transaction that inserts events
  holds the gate shared from before it takes its ids, so at that moment none is in flight,
  every id up to the newest is committed, and every later one is larger;
- events are deleted only through ``delete_events`` (a person forgotten), which takes
  the ones at or below ``counted_to`` off ``events`` in the same transaction;
- both lock the row first (``FOR UPDATE``; SQLite's writer lock), so a deletion and a move
  never interleave.

Synchronous functions on a ``Connection`` in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from storage import locks
from storage.rawsql import is_postgres
from storage.tables import Event, EventTally

TALLY = EventTally.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]


def _tally(conn: Connection, *, lock: bool = False) -> tuple[int, int]:
    """``(counted_to, events)``; ``(0, 0)`` when the row is missing (then every event is
    counted one by one, as before the tally)."""
    query = select(TALLY.c.counted_to, TALLY.c.events).where(TALLY.c.id == 1)
    row = conn.execute(query.with_for_update() if lock and is_postgres(conn) else query).first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _count(conn: Connection, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(EVENTS).where(*where)).scalar_one())


def event_count(conn: Connection) -> int:
    """Every stored event: the tally, and the events with a larger id."""
    counted_to, events = _tally(conn)
    return events + _count(conn, EVENTS.c.id > counted_to)


def boundary(conn: Connection) -> int:
    """The newest event id, read when no transaction that inserts events is in flight
    (PostgreSQL: under the ingest gate held alone; call it in a transaction of its own, which
    then holds the gate only for this read). Every event up to it is committed, and no event
    will get an id at or below it."""
    locks.enter(conn, alone=True)
    return _newest(conn)


def _newest(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one())


def advance(conn: Connection, to: int) -> int:
    """Count the events up to ``to`` (an id ``boundary`` returned) into the tally; how many
    were added (0 when it was there already)."""
    counted_to, events = _tally(conn, lock=True)
    # Not past the newest event now: past it, SQLite could give a new row an id the tally
    # already covers (after a deletion of the largest ids, between ``boundary`` and here).
    to = min(to, _newest(conn))
    if to <= counted_to:
        return 0
    added = _count(conn, EVENTS.c.id > counted_to, EVENTS.c.id <= to)
    conn.execute(update(TALLY).where(TALLY.c.id == 1).values(counted_to=to, events=events + added))
    return added


def delete_events(conn: Connection, *where: Any) -> int:
    """Delete the events matching ``where`` and keep the tally true; how many went."""
    counted_to, events = _tally(conn, lock=True)
    counted = _count(conn, EVENTS.c.id <= counted_to, *where) if counted_to else 0
    gone = int(conn.execute(EVENTS.delete().where(*where)).rowcount or 0)
    newest = _newest(conn)
    if counted or newest < counted_to:
        # Below ``newest`` nothing is left above the tally's ids: SQLite may hand the
        # deleted largest ids out again, so the tally stops at the newest left.
        conn.execute(
            update(TALLY).where(TALLY.c.id == 1)
            .values(counted_to=min(counted_to, newest), events=events - counted)
        )  # fmt: skip
    return gone
