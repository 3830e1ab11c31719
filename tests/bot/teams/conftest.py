"""Fixtures the Teams tests share: the fake Bot Connector and the bot's app on ``db_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from config.loader import LeadbotConfig
from tests.bot.slack_helpers import Client
from tests.bot.teams.test_teams_app import ANONYMOUS, Clock, settings
from tests.fakes.teams_connector import FakeConnector


@pytest.fixture
async def fake() -> AsyncIterator[FakeConnector]:
    async with FakeConnector() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig, clock: Clock) -> AsyncIterator[Client]:
    app = build_app(settings=settings(db_url, **ANONYMOUS), config=config, clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client
