"""The migrations build exactly the schema ``storage/tables.py`` declares, on both backends."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers the tables)
from storage.engine import create_engine
from storage.migrate import alembic_config, current_revision, head_revision, upgrade

TABLES = {"leads", "identities", "events", "score_history", "outbox", "feedback"}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_migrated_schema_equals_metadata(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_fresh_database_has_no_revision_then_head(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) is None
        async with engine.connect() as conn:
            # The comparison sees a missing schema, so an empty list below means something.
            assert len(await conn.run_sync(_differences)) >= len(TABLES)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision() == "0001"
    finally:
        await engine.dispose()


async def test_upgrade_twice_is_harmless(engine: AsyncEngine) -> None:
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == TABLES


def _downgrade(connection: Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_downgrade_to_base_and_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade)
    assert await current_revision(engine) is None
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await upgrade(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_env_builds_its_own_engine_from_the_url(db_url: str) -> None:
    """The ``alembic`` command line path: no shared connection, env.py runs asyncio itself
    (in a thread here, as a command line has no running loop)."""
    cfg = alembic_config()
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    await asyncio.to_thread(command.upgrade, cfg, "head")
    engine = create_engine(db_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()
