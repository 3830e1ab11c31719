"""HubSpot outcomes through the connector against the fake at the wire: contacts whose
lifecycle stage or lead status is an outcome, won or lost deals through their contacts,
paging, the pull cursor, and the webhook's lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.crm.base import CrmOutcome
from bot.crm.hubspot import HubSpotConnector
from config.crm import HubSpotOutcomes
from tests.fakes.hubspot_api import FakeHubSpot, parse_time

TOKEN = "pat-na1-test"
T0 = 1_790_000_000.0


@pytest.fixture
async def hub() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as fake:
        yield fake


def connector(hub: FakeHubSpot, outcomes: HubSpotOutcomes | None = None) -> HubSpotConnector:
    hs = HubSpotConnector(TOKEN, outcomes or HubSpotOutcomes(), api_url=hub.url, timeout=2.0)
    hs.min_interval = 0.0  # pacing has its own test
    return hs


def refs(outcomes: list[CrmOutcome]) -> set[str]:
    return {o.ref for o in outcomes}


async def test_contacts_and_deals_changed_since_become_outcomes(hub: FakeHubSpot) -> None:
    old = hub.add_contact("old@example.com", lifecyclestage="customer", modified_at=T0 - 99)
    won = hub.add_contact(
        "ada@example.com",
        lifecyclestage="customer",
        firstname="Ada",
        jobtitle="CRO",
        company="Acme",
        modified_at=T0 + 1,
    )
    lost = hub.add_contact("bob@example.com", hs_lead_status="BAD_TIMING", modified_at=T0 + 2)
    hub.add_contact("open@example.com", lifecyclestage="lead", modified_at=T0 + 3)
    a = hub.add_contact("c1@example.com", modified_at=T0 - 50)
    b = hub.add_contact("c2@example.com", modified_at=T0 - 50)
    deal = hub.add_deal("closedwon", [a, b], modified_at=T0 + 5)
    gone = hub.add_deal("closedlost", [a], modified_at=T0 + 4)
    hub.add_deal("appointmentscheduled", [b], modified_at=T0 + 6)
    hub.add_deal("closedwon", [b], modified_at=T0 - 99)

    changes = await connector(hub).changed_outcomes(T0, T0 + 100)

    assert refs(changes.outcomes) == {
        f"{won}:won",
        f"{lost}:lost",
        f"deal:{deal}:{a}:won",
        f"deal:{deal}:{b}:won",
        f"deal:{gone}:{a}:lost",
    }
    assert f"{old}:won" not in refs(changes.outcomes)
    ada = next(o for o in changes.outcomes if o.record_id == won)
    assert (ada.crm, ada.email, ada.outcome, ada.at) == (
        "hubspot",
        "ada@example.com",
        "won",
        T0 + 1,
    )
    assert ada.reason == "lifecycle stage customer"
    assert ada.traits == {
        "email": "ada@example.com",
        "firstName": "Ada",
        "title": "CRO",
        "company": {"name": "Acme"},
    }
    by_deal = next(o for o in changes.outcomes if o.ref == f"deal:{deal}:{b}:won")
    assert (by_deal.record_id, by_deal.email, by_deal.at) == (b, "c2@example.com", T0 + 5)
    assert by_deal.reason == f"deal {deal} closedwon"
    assert changes.cursor == T0 + 6  # the latest modified time seen, open deal included

    search = hub.requests_to("POST", "/crm/v3/objects/contacts/search")[0].json
    assert search["filterGroups"] == [
        {
            "filters": [
                {
                    "propertyName": "lastmodifieddate",
                    "operator": "GTE",
                    "value": str(int(T0 * 1000)),
                }
            ]
        }
    ]
    assert search["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    deals = hub.requests_to("POST", "/crm/v3/objects/deals/search")[0].json
    assert deals["filterGroups"][0]["filters"][0]["propertyName"] == "hs_lastmodifieddate"


async def test_configured_stages_decide(hub: FakeHubSpot) -> None:
    opp = hub.add_contact("opp@example.com", lifecyclestage="opportunity", modified_at=T0)
    outcomes = HubSpotOutcomes(won_stages=frozenset({"customer", "opportunity"}))
    changes = await connector(hub, outcomes).changed_outcomes(None, T0 + 10)
    assert refs(changes.outcomes) == {f"{opp}:won"}


async def test_pulls_page_through_every_record(hub: FakeHubSpot) -> None:
    ids = [
        hub.add_contact(f"p{i}@example.com", hs_lead_status="UNQUALIFIED", modified_at=T0 + i)
        for i in range(230)
    ]
    changes = await connector(hub).changed_outcomes(None, T0 + 1000)
    assert refs(changes.outcomes) == {f"{cid}:lost" for cid in ids}
    pages = hub.requests_to("POST", "/crm/v3/objects/contacts/search")
    assert [p.json.get("after") for p in pages] == [None, "100", "200"]
    assert "filterGroups" not in pages[0].json or pages[0].json["filterGroups"] == []
    assert changes.cursor == T0 + 229


async def test_nothing_changed_moves_the_cursor_to_now(hub: FakeHubSpot) -> None:
    hub.add_contact("old@example.com", lifecyclestage="customer", modified_at=T0 - 10)
    changes = await connector(hub).changed_outcomes(T0, T0 + 60)
    assert changes.outcomes == []
    assert changes.cursor == T0 + 60


async def test_a_deals_contacts_are_paged(hub: FakeHubSpot) -> None:
    contacts = [hub.add_contact(f"d{i}@example.com") for i in range(3)]
    deal = hub.add_deal("closedlost", contacts, modified_at=T0)
    hub.association_page = 2
    found = await connector(hub).deal_outcomes(deal)
    assert {o.record_id for o in found} == set(contacts)
    assert {o.outcome for o in found} == {"lost"}
    pages = hub.requests_to("GET", f"/crm/v4/objects/deals/{deal}/associations/contacts")
    assert [p.query.get("after") for p in pages] == [None, ["2"]]


async def test_contact_outcome_and_deal_outcomes(hub: FakeHubSpot) -> None:
    won = hub.add_contact("w@example.com", lifecyclestage="customer", modified_at=T0)
    open_ = hub.add_contact("o@example.com", lifecyclestage="lead")
    hs = connector(hub)

    outcome = await hs.contact_outcome(won)
    assert outcome is not None
    assert (outcome.ref, outcome.outcome, outcome.at) == (f"{won}:won", "won", T0)
    assert await hs.contact_outcome(open_) is None
    assert await hs.contact_outcome("99999") is None  # deleted in HubSpot

    deal = hub.add_deal("closedwon", [won, open_], modified_at=T0 + 3)
    assert refs(await hs.deal_outcomes(deal)) == {
        f"deal:{deal}:{won}:won",
        f"deal:{deal}:{open_}:won",
    }
    assert await hs.deal_outcomes(hub.add_deal("qualifiedtobuy", [won])) == []
    assert await hs.deal_outcomes("424242") == []
    read = hub.requests_to("GET", f"/crm/v3/objects/deals/{deal}")[0]
    assert "dealstage" in read.query["properties"]
    assert parse_time(hub.deals[deal].properties["hs_lastmodifieddate"]) == T0 + 3
