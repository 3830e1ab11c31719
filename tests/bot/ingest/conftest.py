"""Helpers of the ingest tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.ingest.writer import IngestProcess
from config.loader import LeadbotConfig
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bot.conftest import T0, events, track


@contextlib.asynccontextmanager
async def running_writer(
    tmp_path: Path, config: LeadbotConfig, **options: Any
) -> AsyncIterator[IngestProcess]:
    """A writer process on a fresh migrated SQLite file, started, with one event committed
    through it (so it is up and answering); closed after the block."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadbot.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    writer = IngestProcess(database_url=url, config=config, **options)
    await writer.start()
    try:
        assert (await writer.submit(events(track("u1", "Demo Requested", T0)))).accepted == 1
        assert writer.pid is not None
        yield writer
    finally:
        await writer.close()
