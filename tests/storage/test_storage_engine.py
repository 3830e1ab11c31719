"""The SQLite engine when its file cannot be opened: the error comes back, and aiosqlite's
thread for the failed connection has ended by then (one that ended after its loop had
closed printed "Exception in thread … Event loop is closed" after a command's error)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from storage.engine import create_engine


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
