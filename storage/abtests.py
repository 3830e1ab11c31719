"""A/B tests of model versions: the repository of ``ab_tests`` rows.

Synchronous functions on a ``Connection`` inside the caller's transaction (the rescoring of
the challenger's cohort shares it). At most one test runs; a partial unique index backs the
check in ``start_test``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from storage.rawsql import query
from storage.tables import AbTest

AB_TESTS = AbTest.__table__  # type: ignore[attr-defined]


def _test(row: Any) -> AbTest:
    return AbTest(**dict(row._mapping))


def running_test(conn: Connection) -> AbTest | None:
    row = conn.execute(select(AB_TESTS).where(AB_TESTS.c.running.is_(True))).first()
    return None if row is None else _test(row)


def latest_test(conn: Connection) -> AbTest | None:
    """The running test, else the one stopped last."""
    row = conn.execute(select(AB_TESTS).order_by(AB_TESTS.c.id.desc()).limit(1)).first()
    return None if row is None else _test(row)


def start_test(
    conn: Connection, *, champion_id: int, challenger_id: int, share: float, by: str, at: datetime
) -> int:
    """Record a running test; raises ValueError when one already runs."""
    if running_test(conn) is not None:
        raise ValueError("an A/B test is already running: stop it first (leadbot model ab stop)")
    values = {
        "champion_id": champion_id, "challenger_id": challenger_id, "share": share,
        "running": True, "started_at": at, "started_by": by[:255],
    }  # fmt: skip
    key = conn.execute(insert(AB_TESTS).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def stop_test(conn: Connection, *, by: str, at: datetime) -> AbTest | None:
    """Stop the running test (None when none runs); returns it as it was."""
    test = running_test(conn)
    if test is not None:
        conn.execute(
            update(AB_TESTS)
            .where(AB_TESTS.c.id == test.id)
            .values(running=False, stopped_at=at, stopped_by=by[:255])
        )
    return test


ACTIVE_SQL = (
    "SELECT v.id, t.challenger_id, t.share FROM model_versions v "
    "LEFT JOIN ab_tests t ON t.running WHERE v.status = 'active'"
)


def active_and_challenger(conn: Connection) -> tuple[int | None, tuple[int, float] | None]:
    """The active version and the running test's (challenger, share), in one indexed read:
    what the ingest checks in every transaction."""
    rows = query(conn, ACTIVE_SQL)
    if not rows:
        return None, None
    vid, challenger, share = rows[0]
    return int(vid), (None if challenger is None else (int(challenger), float(share)))


def test_shares(conn: Connection) -> list[float]:
    """Every share any A/B test has used (running or past), for keeping cohorts stable."""
    return [float(s) for s in conn.execute(select(AB_TESTS.c.share).distinct()).scalars()]
