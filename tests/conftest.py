"""Database fixtures shared by every test package.

``db_url`` runs a test on SQLite (a fresh file) and on PostgreSQL (a fresh database on the
server named by ``LEADBOT_TEST_POSTGRES_URL``). Without that variable the PostgreSQL case is
skipped, except under CI (``CI`` set), where it fails: CI must never pass by skipping it.

Nothing here builds an engine or reads settings at import time.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.engine import create_engine, session_factory
from storage.migrate import upgrade

POSTGRES_ENV = "LEADBOT_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    reason = (
        f"{POSTGRES_ENV} is not set: set it to a PostgreSQL URL whose role may CREATE DATABASE, "
        "e.g. postgresql+asyncpg://leadbot:leadbot@127.0.0.1:5433/postgres (.ci/run does)"
    )
    if _in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


async def _admin(url: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _fresh_postgres_database() -> AsyncIterator[str]:
    admin_url = _postgres_admin_url()
    name = f"leadbot_test_{uuid.uuid4().hex[:16]}"
    # template0 is never connected to, so CREATE DATABASE cannot collide with a session on it.
    await _admin(admin_url, f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _drop(admin_url, name)


async def _drop(admin_url: str, name: str) -> None:
    """FORCE ends sessions a test left open. It may not end an autovacuum worker that
    happens to be on the database (a superuser process: the role needs pg_signal_backend);
    then a plain DROP, which waits for autovacuum to step aside, does it."""
    try:
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except ProgrammingError as exc:
        if "pg_signal_backend" not in str(exc):
            raise
        await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database, isolated from every other test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
        return
    async for url in _fresh_postgres_database():
        yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database only, for behaviour SQLite does not have (row locks,
    several processes); skipped or failed like ``db_url``'s PostgreSQL case."""
    async for url in _fresh_postgres_database():
        yield url


async def _migrated_engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated ``db_url`` database (both backends)."""
    async for engine in _migrated_engine(db_url):
        yield engine


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a migrated SQLite file, for tests that need one backend only."""
    async for engine in _migrated_engine(f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"):
        yield engine


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on ``engine``; objects stay readable after commit."""
    async with session_factory(engine)() as session:
        yield session
