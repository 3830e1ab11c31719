"""A fake HubSpot account as ``leadbot crm setup hubspot`` leaves it: leadbot's properties
defined. A module names its token with a ``hubspot_token`` fixture of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.crm.hubspot import PROPERTIES
from tests.fakes.hubspot_api import FakeHubSpot


@pytest.fixture
def hubspot_token() -> str:
    return "pat-test"


@pytest.fixture
async def hub(hubspot_token: str) -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=hubspot_token) as fake:
        for name, (label, kind, field_type, _) in PROPERTIES.items():
            fake.define_property(name, label, kind, field_type, "leadbot")
        yield fake
