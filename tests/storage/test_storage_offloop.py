"""storage.offloop: a body runs on a worker thread in one transaction, the caller's loop
keeps running meanwhile, and on SQLite a second writer waits for the first, never fails."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import offloop
from storage.tables import HandledRequest

HANDLED = HandledRequest.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _add(conn: Connection, key: str) -> int:
    conn.execute(insert(HANDLED).values(key=key, at=AT))
    return threading.get_ident()


async def _keys(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(select(HANDLED.c.key))).scalars())


async def test_a_write_runs_on_another_thread_and_commits(engine: AsyncEngine) -> None:
    thread = await offloop.write(engine, _add, "k1")
    assert thread != threading.get_ident()
    assert await _keys(engine) == {"k1"}


async def test_a_body_that_raises_changes_nothing(engine: AsyncEngine) -> None:
    def fail(conn: Connection) -> None:
        _add(conn, "k2")
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await offloop.write(engine, fail)
    assert await _keys(engine) == set()


async def test_a_read_is_rolled_back(engine: AsyncEngine) -> None:
    await offloop.read(engine, _add, "k3")
    assert await _keys(engine) == set()


async def test_the_loop_keeps_running_while_a_body_computes(engine: AsyncEngine) -> None:
    ticks = 0

    async def probe() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    def busy(conn: Connection) -> None:
        end = time.perf_counter() + 0.4
        while time.perf_counter() < end:
            sum(range(1000))

    task = asyncio.create_task(probe())
    await offloop.read(engine, busy)
    task.cancel()
    assert ticks >= 5  # run_sync on the loop itself: 0


async def test_a_second_sqlite_writer_waits_for_the_first(sqlite_engine: AsyncEngine) -> None:
    async with offloop.Worker(sqlite_engine) as first, offloop.Worker(sqlite_engine) as second:

        def slow(conn: Connection) -> None:
            _add(conn, "first")
            time.sleep(0.3)  # the write lock is held all along

        one = asyncio.create_task(first.write(slow))
        await asyncio.sleep(0.05)
        await second.write(_add, "second")  # BEGIN IMMEDIATE waits on busy_timeout
        await one
    async with sqlite_engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(HANDLED))).scalar_one()
    assert count == 2


def test_settle_heap_puts_the_start_up_heap_out_of_the_collectors_sight() -> None:
    before = gc.get_freeze_count()
    kept = [object() for _ in range(1_000)], {"a": [1, 2, 3]}
    offloop.settle_heap()
    try:
        assert gc.get_freeze_count() > before
        assert gc.isenabled()
        assert kept[1]["a"] == [1, 2, 3]  # frozen objects stay what they were
        # out of every generation a collection walks (gc.get_objects lists those)
        assert not any(obj is kept[0] or obj is kept[1] for obj in gc.get_objects())
    finally:
        gc.unfreeze()
