"""The HubSpot connector against a fake HubSpot at the wire (tests/fakes/hubspot_api.py):
what ``hubspot-api-client`` sends, and how each answer maps onto the connector contract."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.crm.base import CrmRefused, CrmUnavailable, ScoreUpdate
from bot.crm.hubspot import PROPERTIES, HubSpotConnector, hubspot_from_settings
from config.crm import Crm, HubSpotOutcomes
from config.settings import load_settings
from tests.fakes.hubspot_api import FakeHubSpot, iso, parse_time

TOKEN = "pat-na1-test"
T0 = 1_790_000_000.0


def update(lead: str, email: str | None, score: float = 87.4) -> ScoreUpdate:
    return ScoreUpdate(
        lead_id=lead,
        email=email,
        record_id=None,
        score=score,
        band="hot",
        grade="A1",
        probability=0.8123,
        reasons="Requested a demo +30 · VP Sales +15",
        scored_at=T0,
    )


@pytest.fixture
async def hub() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN, portal_id=777) as fake:
        for name, (label, kind, field_type, _) in PROPERTIES.items():
            fake.define_property(name, label, kind, field_type, "leadbot")
        yield fake


def connector(hub: FakeHubSpot, timeout: float = 2.0, token: str = TOKEN) -> HubSpotConnector:
    return HubSpotConnector(token, HubSpotOutcomes(), api_url=hub.url, timeout=timeout)


async def test_write_scores_upserts_by_email_with_the_properties(hub: FakeHubSpot) -> None:
    known = hub.add_contact("ada@example.com", firstname="Ada")
    hs = connector(hub)
    result = await hs.write_scores(
        [update("l1", "Ada@Example.com"), update("l2", "bob@example.com", 12.0)]
    )

    upsert = hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert len(upsert) == 1
    assert upsert[0].headers["Authorization"] == f"Bearer {TOKEN}"
    first = upsert[0].json["inputs"][0]
    assert first["id"] == "ada@example.com"
    assert first["idProperty"] == "email"
    assert first["properties"] == {
        "leadbot_score": "87.4",
        "leadbot_band": "hot",
        "leadbot_grade": "A1",
        "leadbot_probability": "0.8123",
        "leadbot_reasons": "Requested a demo +30 · VP Sales +15",
        "leadbot_scored_at": iso(T0),
    }
    assert parse_time(first["properties"]["leadbot_scored_at"]) == T0
    created = hub.contact_by_email("bob@example.com")
    assert created is not None
    assert created.properties["leadbot_score"] == "12.0"
    assert hub.contacts[known].properties["firstname"] == "Ada"  # the rest untouched
    assert {(w.lead_id, w.record_id, w.record_url) for w in result.written} == {
        ("l1", known, f"https://app.hubspot.com/contacts/777/record/0-1/{known}"),
        ("l2", created.id, f"https://app.hubspot.com/contacts/777/record/0-1/{created.id}"),
    }
    assert result.refused == {}


async def test_portal_id_is_read_once(hub: FakeHubSpot) -> None:
    hs = connector(hub)
    await hs.write_scores([update("l1", "a@example.com")])
    await hs.write_scores([update("l1", "a@example.com")])
    assert len(hub.requests_to("GET", "/account-info/v3/details")) == 1
    assert len(hub.contacts) == 1  # upserted twice, one contact


async def test_without_account_details_scores_are_written_without_a_url(
    hub: FakeHubSpot,
) -> None:
    hub.account_info = False
    result = await connector(hub).write_scores([update("l1", "a@example.com")])
    assert [(w.lead_id, w.record_url) for w in result.written] == [("l1", None)]
    assert (
        hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")[0].json["inputs"][0][
            "objectWriteTraceId"
        ]
        == "l1"
    )


async def test_a_bad_email_is_refused_alone(hub: FakeHubSpot) -> None:
    result = await connector(hub).write_scores(
        [update("l1", "ok@example.com"), update("l2", "not-an-email"), update("l3", None)]
    )
    assert [w.lead_id for w in result.written] == ["l1"]
    assert set(result.refused) == {"l2", "l3"}
    assert "invalid" in result.refused["l2"]
    assert result.refused["l3"] == "no e-mail: HubSpot upserts contacts by e-mail"
    assert hub.requests[-1].status == 207


async def test_a_batch_refused_for_one_email_is_split_until_it_is_alone(
    hub: FakeHubSpot,
) -> None:
    hub.invalid_email_status = 400
    emails = ["a@example.com", "b@example.com", "bad@", "d@example.com", "e@example.com"]
    result = await connector(hub).write_scores(
        [update(f"l{i}", email) for i, email in enumerate(emails)]
    )
    assert sorted(w.lead_id for w in result.written) == ["l0", "l1", "l3", "l4"]
    assert list(result.refused) == ["l2"]
    assert "bad@" in result.refused["l2"]
    assert len(hub.contacts) == 4


async def test_a_rate_limit_is_unavailable_with_retry_after(hub: FakeHubSpot) -> None:
    hs = connector(hub)
    await hs.portal_id()
    hub.fail_next(429, retry_after=7)
    with pytest.raises(CrmUnavailable) as caught:
        await hs.write_scores([update("l1", "a@example.com")])
    assert caught.value.retry_after == 7
    assert hub.contacts == {}
    # the next write goes through
    assert len((await hs.write_scores([update("l1", "a@example.com")])).written) == 1


async def test_a_server_error_is_unavailable(hub: FakeHubSpot) -> None:
    hub.fail_next(500)
    with pytest.raises(CrmUnavailable, match="500"):
        await connector(hub).write_scores([update("l1", "a@example.com")])


async def test_a_hang_is_unavailable_within_the_timeout(hub: FakeHubSpot) -> None:
    hs = connector(hub, timeout=0.3)
    await hs.portal_id()
    hub.hang_next(5.0)
    started = time.monotonic()
    with pytest.raises(CrmUnavailable, match="did not answer"):
        await hs.write_scores([update("l1", "a@example.com")])
    assert time.monotonic() - started < 1.5


async def test_a_stopped_hubspot_is_unavailable(hub: FakeHubSpot) -> None:
    hs = connector(hub, timeout=0.5)
    await hub.stop()
    with pytest.raises(CrmUnavailable):
        await hs.write_scores([update("l1", "a@example.com")])


async def test_a_bad_token_is_refused_with_what_to_do(hub: FakeHubSpot) -> None:
    with pytest.raises(CrmRefused, match="HUBSPOT_ACCESS_TOKEN") as caught:
        await connector(hub, token="pat-revoked").write_scores([update("l1", "a@example.com")])
    assert "401" in str(caught.value)
    assert hub.requests[-1].status == 401


async def test_a_missing_scope_is_refused_naming_it(hub: FakeHubSpot) -> None:
    hub.scopes.discard("crm.objects.contacts.write")
    with pytest.raises(CrmRefused, match=r"crm\.objects\.contacts\.write"):
        await connector(hub).write_scores([update("l1", "a@example.com")])


async def test_a_missing_property_asks_for_setup(hub: FakeHubSpot) -> None:
    del hub.properties["leadbot_reasons"]
    with pytest.raises(CrmRefused, match="leadbot crm setup hubspot") as caught:
        await connector(hub).write_scores([update("l1", "a@example.com")])
    assert "leadbot_reasons" in str(caught.value)


async def test_usage_comes_from_the_rate_limit_headers(hub: FakeHubSpot) -> None:
    hs = connector(hub)
    assert hs.usage() is None
    await hs.write_scores([update("l1", "a@example.com")])
    assert hs.usage() == "API calls today: 2 of 250,000; 2 of 100 in the last 10 s"


async def test_requests_are_paced(hub: FakeHubSpot) -> None:
    hs = connector(hub)
    hs.min_interval = 0.15
    started = time.monotonic()
    for _ in range(3):
        await hs.contact_outcome("999")
    assert time.monotonic() - started >= 0.3


def test_from_settings_needs_a_token() -> None:
    assert hubspot_from_settings(load_settings({}), Crm()) is None
    settings = load_settings(
        {"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_API_URL": "http://127.0.0.1:9/"}
    )
    hs = hubspot_from_settings(settings, Crm())
    assert isinstance(hs, HubSpotConnector)
    assert (hs.name, hs.batch_size, hs.min_interval) == ("hubspot", 100, 0.1)
