"""Alembic environment on ``SQLModel.metadata``, async-ready.

Two ways in, after Alembic's cookbook ("Using Asyncio with Alembic" and "Sharing a
Connection across one or more programmatic migration commands"):

* ``storage.migrate.upgrade`` passes a live connection in ``config.attributes["connection"]``;
  migrations run synchronously on it, inside the caller's transaction and event loop.
* The ``alembic`` command line passes nothing; an async engine is built from the URL
  (``sqlalchemy.url``, else ``DATABASE_URL``, else the default SQLite file) and driven with
  ``run_sync`` under ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.engine import DEFAULT_URL, create_engine

config = context.config
target_metadata = SQLModel.metadata

# Only the alembic command line has an ini file; inside leadbot, logging is the app's own.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL") or DEFAULT_URL


def _configure(**kwargs: object) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    context.configure(target_metadata=target_metadata, compare_type=True, **kwargs)  # type: ignore[arg-type]


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
