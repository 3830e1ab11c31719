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
that is why a transaction locks at most ``FINE_LIMIT`` identity keys one by one (and their
leads: at most twice as many, merges included), and work that would need more takes the
gate exclusively instead.

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
FINE_LIMIT = 500

# The lock keys come sorted; unnest yields them in array order, Append runs its branches in
# order, and the lock functions are parallel-restricted: the leader takes them one after
# another in exactly this order.
_KEYS = "SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k"
_GATE_AND_KEYS = f"SELECT pg_advisory_xact_lock_shared({GATE[0]}, {GATE[1]}) UNION ALL {_KEYS}"
_GATE_ALONE = f"SELECT pg_advisory_xact_lock({GATE[0]}, {GATE[1]})"


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for ``name`` (CRC-32: the same on every replica)."""
    h = zlib.crc32(name.encode())
    return h - (1 << 32) if h >= 1 << 31 else h


def serialises(conn: Connection) -> bool:
    """Whether this database needs the locks (several processes may write at once)."""
    return is_postgres(conn)


def enter(conn: Connection, identity_keys: Iterable[str] = (), *, alone: bool = False) -> bool:
    """Start a transaction's locks: the gate shared and ``identity_keys`` one by one (one
    statement), or the gate exclusively when ``alone`` or when there are more than
    ``FINE_LIMIT`` keys. Returns whether ``lock_leads`` is needed (False: the transaction
    stands alone, or the database needs no locks)."""
    if not serialises(conn):
        return False
    keys = sorted({lock_key(name) for name in identity_keys})
    if alone or len(keys) > FINE_LIMIT:
        query(conn, _GATE_ALONE)
        return False
    query(conn, _GATE_AND_KEYS, (IDENTITY, keys))
    return True


def lock_leads(conn: Connection, lead_ids: Iterable[str]) -> None:
    """Lock the leads the transaction will write, after ``enter`` returned True."""
    keys = sorted({lock_key(lead_id) for lead_id in lead_ids})
    if keys:
        query(conn, _KEYS, (LEAD, keys))
