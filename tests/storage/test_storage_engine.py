"""The engine when the database cannot be reached: the error comes back; aiosqlite's thread
for the failed connection has ended by then (one that ended after its loop had closed printed
"Exception in thread … Event loop is closed" after a command's error); and the error is told
apart from another service's."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from storage.engine import create_engine
from storage.health import is_database_outage, is_outage


def _aiosqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


async def test_a_failed_connect_leaves_no_aiosqlite_thread_running(tmp_path: Path) -> None:
    before = _aiosqlite_threads()
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'x.db'}",
                           poolclass=NullPool)  # fmt: skip
    try:
        for _ in range(3):
            with pytest.raises(OperationalError, match="unable to open database file"):
                async with engine.connect():
                    pass
            assert {t for t in _aiosqlite_threads() - before if t.is_alive()} == set()
    finally:
        await engine.dispose()


async def test_a_database_outage_is_told_from_another_services_network_error(
    tmp_path: Path,
) -> None:
    """A SQLite file that cannot be opened and a PostgreSQL port that refuses (asyncpg's
    error comes up as a bare ConnectionRefusedError) are the database's; the same error
    raised outside SQLAlchemy (a chat platform's or a CRM's call) is not."""
    sqlite = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'x.db'}")
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    postgres = create_engine(f"postgresql+asyncpg://leadbot:x@127.0.0.1:{port}/x")
    caught: list[BaseException] = []
    for engine in (sqlite, postgres):
        try:
            async with engine.connect():
                pass
        except Exception as exc:
            caught.append(exc)
        finally:
            await engine.dispose()
    assert [type(e).__name__ for e in caught] == ["OperationalError", "ConnectionRefusedError"]
    assert all(is_outage(e) and is_database_outage(e) for e in caught)
    with pytest.raises(ConnectionRefusedError) as elsewhere:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 443)")
    assert is_outage(elsewhere.value)  # where only the database is called, this is enough
    assert not is_database_outage(elsewhere.value)
