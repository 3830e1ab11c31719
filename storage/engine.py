"""The async engine: SQLite (WAL) by default, PostgreSQL by URL; and the SQLite writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import aiosqlite
import orjson
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

DEFAULT_URL = "sqlite+aiosqlite:///./leadbot.db"

# Drivers that log each call with its parameters at DEBUG: lead e-mails would reach the log
# whenever the root logger is at DEBUG (LEADBOT_LOG_LEVEL=DEBUG).
_CHATTY_DRIVERS = ("aiosqlite",)


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``, ``sqlite:///``) and
    give the async driver's form."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif driver == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (lookups, digests) run beside the single writer; NORMAL sync is
    # durable across application crashes, the usual choice with WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def quiet_driver_logs() -> None:
    """Keep SQL parameters (lead e-mails, traits) out of the log at every level: a driver
    logger nobody configured is held at INFO. One set on purpose is left alone."""
    for name in _CHATTY_DRIVERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def _aiosqlite_creator(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    """Connect through :func:`_aiosqlite_connect` (SQLAlchemy's aiosqlite adapter takes the
    creator from the connect parameters)."""
    params["async_creator_fn"] = _aiosqlite_connect


def _aiosqlite_connect(*args: Any, **kwargs: Any) -> Awaitable[aiosqlite.Connection]:
    connection = aiosqlite.connect(*args, **kwargs)
    connection._thread.daemon = True  # as SQLAlchemy's own connect does: never holds exit
    return _connected(connection)


async def _connected(connection: aiosqlite.Connection) -> aiosqlite.Connection:
    """A failed connect (the file cannot be opened) leaves aiosqlite's thread stopping, and
    telling this loop when it has: wait for that while the loop runs. A thread that told a
    loop already closed (a command's ``asyncio.run`` ending) printed "Exception in thread …
    Event loop is closed" after the command's own one-line error."""
    try:
        return await connection
    except BaseException:
        await asyncio.to_thread(connection._thread.join, 5.0)
        raise


def create_engine(url: str = DEFAULT_URL, **kwargs: Any) -> AsyncEngine:
    url = normalize_url(url)
    quiet_driver_logs()
    # SQL parameters are personal data: never in echo output nor in error messages.
    kwargs.setdefault("hide_parameters", True)
    # orjson for every JSON column: lead states and event payloads are on the hot path.
    kwargs.setdefault("json_serializer", _json_dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "do_connect", _aiosqlite_creator)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if "poolclass" not in kwargs:  # NullPool and friends refuse a pool_size
        kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # Take the write lock at BEGIN: a transaction that reads then writes can never fail
    # half-way with SQLITE_BUSY on the upgrade from reader to writer. On the driver's own
    # connection: SQLAlchemy's statement path costs twice the BEGIN itself, per transaction.
    conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]


def sqlite_writer_engine(engine: AsyncEngine, *, own_checkpoints: bool = False) -> Engine | None:
    """For a SQLite ``engine``, a synchronous engine on the same file for the ingest writer
    thread (one thread hop per transaction instead of one per statement); None otherwise.
    ``own_checkpoints``: its commits never checkpoint the WAL; the caller runs a
    ``storage.checkpoints.WalCheckpointer`` (the ingest pipeline does)."""
    if not is_sqlite(engine):
        return None
    url = engine.url.set(drivername="sqlite")
    writer = sa_create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"check_same_thread": False},
        pool_size=1,
        max_overflow=0,
        hide_parameters=True,
    )
    event.listen(writer, "connect", _sqlite_pragmas)
    event.listen(writer, "connect", _autocommit_driver)
    event.listen(writer, "connect", _writer_memory)
    event.listen(writer, "begin", _begin_immediate)
    if own_checkpoints:
        event.listen(writer, "connect", _no_autocheckpoint)
    return writer


WRITER_CACHE_KB = 32 * 1024  # the ingest writer's page cache (SQLite's default: 2 MB)


def _writer_memory(dbapi_connection: Any, _record: Any) -> None:
    # A statement that changes B-tree pages its transaction already changed keeps their old
    # content in a statement journal, which SQLite moves to a new file in /var/tmp once it
    # passes 64 KB: under load the writer created and unlinked one every few groups (~190
    # in 3 s, each an inode made and evicted). Its statements are small: memory will do.
    dbapi_connection.execute("PRAGMA temp_store=MEMORY")
    # Message ids are random (the SDKs' UUIDs), so each event reads a random page of their
    # index, and of the leads' ones: 2 MB held too few of them, and every miss is a read
    # from the OS. 32 MB: bench_writer 120 -> 112 µs an event in groups of 8, 77 -> 66 in
    # groups of 1,000 (only pages read are held: a small database uses less).
    dbapi_connection.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KB}")


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
    # The writer restarts the log once a checkpoint copied all of it, writing over the
    # file from its start. It never cuts the file: with a size limit, the first commit
    # after a restart truncated hundreds of MB of log (134 ms measured, every request
    # waiting behind it: p99 150–200 ms under load). The checkpoint thread cuts it, idle.
    dbapi_connection.execute("PRAGMA journal_size_limit=-1")


def sqlite_path(url: str) -> str | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    return None if database in ("", ":memory:") or database.startswith("file:") else database
