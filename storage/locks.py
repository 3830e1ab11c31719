"""Serialising work on the same lead across replicas that share one PostgreSQL database.

Every writer of a lead's state or score takes transaction-scoped advisory locks before it
reads what it will rewrite, always in one global order, so no two transactions can wait on
each other in a cycle:

1. the gate, ``(0, 0)``: shared by ordinary work; exclusive for work too large to lock key
   by key (a whole-table rescore, a group with more than ``FINE_LIMIT`` identity keys);
2. class ``IDENTITY``: every identity key a group's events carry, in ascending lock-key order;
3. class ``LEAD``: every lead id the transaction will write, merges included, ascending.

Advisory locks cover rows that do not exist yet (a lead two replicas create at once), which a
``SELECT … FOR UPDATE`` cannot. They live in PostgreSQL's shared lock table, whose size is
``max_locks_per_transaction × max_connections`` (6,400 by default) for every session at once:
that is why a transaction never takes more than ``2 × FINE_LIMIT + 1`` of them, and work that
would need more takes the gate exclusively instead.

SQLite has one writer at a time, so every function here does nothing there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy.engine import Connection

from storage.rawsql import is_postgres, query

GATE = (0, 0)
IDENTITY = 1
LEAD = 2
# Most identity keys (and so leads) one transaction locks one by one.
FINE_LIMIT = 1_000

# The lock keys come sorted; unnest yields them in array order and the lock function is
# parallel-restricted, so the leader takes them one after another in exactly that order.
_LOCK_SQL = "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k"


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (CRC-32: the same on every replica)."""
    h = zlib.crc32(name.encode())
    return h - (1 << 32) if h >= 1 << 31 else h


def serialises(conn: Connection) -> bool:
    """Whether this database needs the locks (several processes may write at once)."""
    return is_postgres(conn)


def enter(conn: Connection, *, exclusive: bool = False) -> None:
    """Take the gate: shared before fine locks, exclusive to stand alone."""
    if serialises(conn):
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        query(conn, f"SELECT {fn}($1, $2)", GATE)


def lock(conn: Connection, cls: int, names: Iterable[str]) -> None:
    """Lock ``names`` in class ``cls`` until the transaction ends, in lock-key order.
    Take the gate shared first, and every class in ascending order."""
    if serialises(conn):
        keys = sorted({lock_key(name) for name in names})
        if keys:
            query(conn, _LOCK_SQL, (cls, keys))


def fine(names: Iterable[str]) -> bool:
    """Whether ``names`` (a group's identity keys) may be locked one by one."""
    return len(set(names)) <= FINE_LIMIT
