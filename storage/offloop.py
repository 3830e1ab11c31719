"""Heavy transactions off the event loop: a worker thread with its own loop and engine.

``AsyncConnection.run_sync`` runs a synchronous transaction body on the thread of the loop
that awaits it, so a rescore of every lead, a retrain, a digest or a sweep there freezes
every webhook, slash command and click for as long as its Python runs. A ``Worker`` runs
such a body (``Callable[[Connection], T]``) in a thread of its own, with an event loop and an
``AsyncEngine`` of its own on the same database (asyncpg and aiosqlite work on any loop, so
no second driver is needed); the caller's loop only awaits the result.

SQLite has one writer: a ``write`` transaction begins with ``BEGIN IMMEDIATE``, so it takes
the write lock first and waits on ``busy_timeout`` for the other writers (the ingest's writer
thread or process), never failing half-way on the upgrade from reader to writer; a ``read``
is a plain ``BEGIN`` (one consistent snapshot, beside the writer under WAL).

The GIL is still shared: the loop's thread gets it back at least every switch interval
(5 ms). A full cyclic garbage collection, though, holds it for as long as it walks every
object, and a rescore allocates 100,000 lead states in a few seconds: collections of a
growing heap froze the loop for 100-250 ms each. So the cyclic collector is paused while a
body runs (reference counting still frees everything a body drops); with it the loop's lag
stays in milliseconds (``tests/bench/bench_loop_lag``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Self, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from storage.engine import create_engine, is_sqlite

T = TypeVar("T")
Body = Callable[..., T]

_WRITE = "leadbot_write"
_paused = 0
_pause_lock = threading.Lock()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (nested and concurrent blocks: off
    until the last one ends; on again only if it was on before the first)."""
    global _paused
    with _pause_lock:
        _paused += 1
        if _paused == 1:
            gc_paused.was_enabled = gc.isenabled()  # type: ignore[attr-defined]
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _paused -= 1
            if _paused == 0 and gc_paused.was_enabled:  # type: ignore[attr-defined]
                gc.enable()


def settle_heap() -> None:
    """Collect once, then move every object alive now out of the collector's sight
    (``gc.freeze``). A long-running process's start-up heap (its modules, app, models,
    engines) is never garbage, yet every full collection walks all of it again: for
    ``leadbot serve``'s imports alone, 148,000 objects and ~88 ms with the event loop
    stopped, a request's p99 many times over. Call it once, when start-up is done."""
    gc.collect()
    gc.freeze()


def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
    dbapi_connection.isolation_level = None


def _begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def worker_engine(engine: AsyncEngine, *, pooled: bool) -> AsyncEngine:
    """An engine on ``engine``'s database for a worker's loop (an engine's connections
    belong to the loop that opened them). ``pooled``: keep connections for the worker's
    life, else open one per transaction."""
    url = engine.url.render_as_string(hide_password=False)
    options: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    clone = create_engine(url, **options)
    if is_sqlite(clone):
        event.listen(clone.sync_engine, "connect", _autocommit_driver)
        event.listen(clone.sync_engine, "begin", _begin)
    return clone


def _paused_gc(conn: Connection, body: Body[T], *args: Any) -> T:
    with gc_paused():
        return body(conn, *args)


class Worker:
    """One thread running its own event loop and engine; ``write``/``read`` run a
    synchronous body in one transaction there. Use as ``async with Worker(engine) as w``
    (or call ``start`` and ``aclose``). Bodies handed to one worker run one at a time while
    their Python runs, and interleave only while they wait on the database."""

    def __init__(self, engine: AsyncEngine, *, pooled: bool = False, name: str = "leadbot-offloop"):
        self._source, self._pooled, self._name = engine, pooled, name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=self._name, daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        self._engine = worker_engine(self._source, pooled=self._pooled)

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def write(self, body: Body[T], *args: Any) -> T:
        """``body(conn, *args)`` in a write transaction (SQLite: ``BEGIN IMMEDIATE``),
        committed when it returns, rolled back when it raises."""
        return await self._call(self._transaction(body, args, write=True))

    async def read(self, body: Body[T], *args: Any) -> T:
        """``body(conn, *args)`` in a transaction that is rolled back (reads only)."""
        return await self._call(self._transaction(body, args, write=False))

    async def _transaction(self, body: Body[T], args: tuple[Any, ...], *, write: bool) -> T:
        assert self._engine is not None
        async with self._engine.connect() as conn:
            if write:
                conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin() as transaction:
                result = await conn.run_sync(_paused_gc, body, *args)
                if not write:
                    await transaction.rollback()
                return result

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        self.start()
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def aclose(self) -> None:
        """Dispose of the worker's engine and stop its thread (waits for a running body)."""
        loop, thread, engine = self._loop, self._thread, self._engine
        if loop is None or thread is None or engine is None:
            return
        self._loop = self._thread = self._engine = None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(engine.dispose(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()


async def write(engine: AsyncEngine, body: Body[T], *args: Any) -> T:
    """``body(conn, *args)`` in one write transaction on a worker of its own (see
    ``Worker.write``): for a single heavy transaction; loops of them share one ``Worker``."""
    async with Worker(engine) as worker:
        return await worker.write(body, *args)


async def read(engine: AsyncEngine, body: Body[T], *args: Any) -> T:
    """``body(conn, *args)`` in one read transaction on a worker of its own."""
    async with Worker(engine) as worker:
        return await worker.read(body, *args)
