"""``leadbot crm setup hubspot`` against the fake HubSpot at the wire: it creates the group
and the six properties, a second run changes nothing, and a token that may not create them
gets the list an admin must create."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.cli import main
from bot.crm.base import ScoreUpdate
from bot.crm.hubspot import PROPERTIES, HubSpotConnector
from config.crm import HubSpotOutcomes
from tests.fakes.hubspot_api import FakeHubSpot

TOKEN = "pat-na1-setup"


@pytest.fixture
async def hub(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as fake:
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
        monkeypatch.setenv("HUBSPOT_API_URL", fake.url)
        yield fake


async def setup() -> int:
    # The CLI blocks on HubSpot's client: run it beside the fake's event loop.
    return await asyncio.to_thread(main, ["crm", "setup", "hubspot"])


async def test_setup_creates_the_group_and_properties_once(
    hub: FakeHubSpot, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await setup() == 0
    out = capsys.readouterr().out
    assert "group leadbot: created" in out
    assert hub.groups["leadbot"]["label"] == "leadbot"
    types = {
        name: (hub.properties[name]["type"], hub.properties[name]["fieldType"])
        for name in PROPERTIES
    }
    assert types == {
        "leadbot_score": ("number", "number"),
        "leadbot_band": ("enumeration", "select"),
        "leadbot_grade": ("string", "text"),
        "leadbot_probability": ("number", "number"),
        "leadbot_reasons": ("string", "textarea"),
        "leadbot_scored_at": ("datetime", "date"),
    }
    assert [o["value"] for o in hub.properties["leadbot_band"]["options"]] == [
        "hot",
        "warm",
        "cold",
    ]
    assert {hub.properties[name]["groupName"] for name in PROPERTIES} == {"leadbot"}
    assert all(f"property {name}: created" in out for name in PROPERTIES)
    posts = len(hub.requests_to("POST", "/crm/v3/properties"))
    assert posts == 7
    assert {r.headers["Authorization"] for r in hub.requests} == {f"Bearer {TOKEN}"}

    assert await setup() == 0
    again = capsys.readouterr().out
    assert again.count("already there") == 7
    assert len(hub.requests_to("POST", "/crm/v3/properties")) == posts  # nothing created


async def test_after_setup_scores_are_written(hub: FakeHubSpot) -> None:
    assert await setup() == 0
    hs = HubSpotConnector(TOKEN, HubSpotOutcomes(), api_url=hub.url, timeout=2.0)
    now = time.time()
    update = ScoreUpdate("l1", "ada@example.com", None, 91.0, "hot", "A1", 0.9, "Demo +30", now)
    result = await hs.write_scores([update])
    assert len(result.written) == 1
    contact = hub.contact_by_email("ada@example.com")
    assert contact is not None
    assert contact.properties["leadbot_band"] == "hot"


async def test_without_the_scope_it_prints_what_an_admin_must_create(
    hub: FakeHubSpot, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.scopes.discard("crm.schemas.contacts.write")
    assert await setup() == 1
    err = capsys.readouterr().err
    assert "crm.schemas.contacts.write" in err
    assert "property group  leadbot" in err
    for name, (label, kind, field_type, _) in PROPERTIES.items():
        line = next(line for line in err.splitlines() if f" {name} " in line)
        assert label in line
        assert f"type: {kind} ({field_type})" in line
    assert "options: hot, warm, cold" in err
    assert "leadbot" not in hub.groups
    assert not any(name in hub.properties for name in PROPERTIES)


async def test_without_a_token_it_says_so(
    hub: FakeHubSpot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    assert await setup() == 2
    assert "HUBSPOT_ACCESS_TOKEN is not set" in capsys.readouterr().err
    assert hub.requests == []


async def test_an_unreachable_hubspot_fails_with_a_message(
    hub: FakeHubSpot, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.fail_next(503)
    assert await setup() == 1
    assert "HubSpot answered 503" in capsys.readouterr().err
