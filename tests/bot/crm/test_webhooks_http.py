"""HubSpot's webhooks over HTTP: signed as HubSpot documents it (computed here, not by
leadbot's code), read back from a fake HubSpot at the wire, stored as labels once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import build_app
from bot.crm.webhooks import PATH
from bot.ingest.pipeline import Pipeline
from bot.ingest.signatures import generate_secret
from bot.outbox.dispatcher import ConsoleTransport
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.crm import FEEDBACK, IDENTITIES
from tests.bot.conftest import IDEAL, T0, events, identify
from tests.fakes.hubspot_api import FakeHubSpot
from tests.logs import logged
from tests.outage import cut_postgres

CLIENT_SECRET = "hubspot-app-client-secret"
TOKEN = "pat-test"
PUBLIC = "https://leadbot.example.com"
OTHER = "ben@widgets.io"

Client = TestClient[web.Request, web.Application]


def _settings(db_url: str, hub: FakeHubSpot, **extra: str) -> Any:
    env = {"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": generate_secret(),
           "LEADBOT_INGEST": "thread", "HUBSPOT_ACCESS_TOKEN": TOKEN,
           "HUBSPOT_API_URL": hub.url, "HUBSPOT_CLIENT_SECRET": CLIENT_SECRET,
           "LEADBOT_PUBLIC_URL": PUBLIC, **extra}  # fmt: skip
    return load_settings({k: v for k, v in env.items() if v})


@pytest.fixture
async def hub() -> AsyncIterator[FakeHubSpot]:
    async with FakeHubSpot(token=TOKEN) as fake:
        yield fake


async def _client(db_url: str, hub: FakeHubSpot, config: LeadbotConfig, **extra: str) -> Client:
    app = build_app(settings=_settings(db_url, hub, **extra), config=config,
                    transport=ConsoleTransport())  # fmt: skip
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    async with Pipeline(client.app[ENGINE], config) as pipeline:  # two leads leadbot scored
        calls = events(identify("u1", T0, **IDEAL), identify("u2", T0, email=OTHER))
        await pipeline.ingest(calls, now=T0 + 60)
    return client


@pytest.fixture
async def client(db_url: str, hub: FakeHubSpot, config: LeadbotConfig) -> AsyncIterator[Client]:
    client = await _client(db_url, hub, config)
    yield client
    await client.close()


def hubspot_signed(
    body: bytes, uri: str, *, secret: str = CLIENT_SECRET, at: float | None = None
) -> dict[str, str]:
    """HubSpot's v3 headers, by its documentation: base64(HMAC-SHA256(secret, method + URI
    + body + timestamp)), the timestamp in unix milliseconds."""
    timestamp = str(int((time.time() if at is None else at) * 1000))
    source = f"POST{uri}{body.decode()}{timestamp}".encode()
    digest = hmac.new(secret.encode(), source, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def event(kind: str, record: str, name: str, value: str, event_id: int = 1) -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionId": 77, "portalId": 4242, "appId": 9,
            "occurredAt": int(time.time() * 1000), "subscriptionType": kind, "attemptNumber": 0,
            "objectId": int(record), "propertyName": name, "propertyValue": value,
            "changeSource": "CRM_UI"}  # fmt: skip


async def deliver(
    client: Client, events_: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> ClientResponse:
    body = orjson.dumps(events_)
    uri = str(client.make_url(PATH))
    return await client.post(PATH, data=body, headers=headers or hubspot_signed(body, uri))


async def labels(client: Client) -> list[tuple[str, str, str, str]]:
    query = select(FEEDBACK.c.lead_id, FEEDBACK.c.outcome, FEEDBACK.c.source, FEEDBACK.c.ref)
    async with client.app[ENGINE].connect() as conn:
        return sorted(tuple(row) for row in await conn.execute(query.order_by(FEEDBACK.c.ref)))


async def lead_of(client: Client, user: str) -> str:
    query = select(IDENTITIES.c.lead_id).where(IDENTITIES.c.key == f"user:{user}")
    async with client.app[ENGINE].connect() as conn:
        return str((await conn.execute(query)).scalar_one())


async def test_a_customer_contact_becomes_a_won_label_once(
    client: Client, hub: FakeHubSpot
) -> None:
    contact = hub.add_contact(IDEAL["email"], lifecyclestage="customer")
    change = [event("contact.propertyChange", contact, "lifecyclestage", "customer")]
    first = await deliver(client, change)
    assert first.status == 200, await first.text()
    assert (await first.json())["stored"] == 1
    lead = await lead_of(client, "u1")
    assert await labels(client) == [(lead, "won", "crm:hubspot", f"{contact}:won")]
    again = await deliver(client, change)  # HubSpot redelivers
    assert again.status == 200
    assert ((await again.json())["stored"], (await again.json())["duplicates"]) == (0, 1)
    assert len(await labels(client)) == 1


async def test_a_closed_won_deal_labels_each_of_its_contacts(
    client: Client, hub: FakeHubSpot
) -> None:
    dana = hub.add_contact(IDEAL["email"], lifecyclestage="opportunity")
    ben = hub.add_contact(OTHER)
    deal = hub.add_deal("closedwon", [dana, ben])
    answer = await deliver(client, [event("deal.propertyChange", deal, "dealstage", "closedwon")])
    assert answer.status == 200, await answer.text()
    stored = await labels(client)
    assert {(lead, outcome) for lead, outcome, _, _ in stored} == {
        (await lead_of(client, "u1"), "won"), (await lead_of(client, "u2"), "won"),
    }  # fmt: skip
    assert all(ref.startswith(f"deal:{deal}:") for _, _, _, ref in stored)


async def test_changes_that_are_no_outcome_are_acknowledged_and_not_read(
    client: Client, hub: FakeHubSpot
) -> None:
    contact = hub.add_contact(IDEAL["email"], lifecyclestage="lead")
    answer = await deliver(client, [
        event("contact.propertyChange", contact, "lifecyclestage", "lead", 1),
        event("contact.propertyChange", contact, "firstname", "Dana", 2),
        event("contact.creation", contact, "", "", 3),
        event("deal.propertyChange", "5", "dealstage", "appointmentscheduled", 4),
    ])  # fmt: skip
    assert answer.status == 200
    assert await labels(client) == []
    assert hub.requests_to("GET", "/crm/") == []


def _forged(body: bytes, uri: str) -> dict[str, str]:
    return {**hubspot_signed(body, uri), "X-HubSpot-Signature-v3": "AAAA" + "b" * 40}


def _old(body: bytes, uri: str) -> dict[str, str]:
    return hubspot_signed(body, uri, at=time.time() - 301)


def _wrong_secret(body: bytes, uri: str) -> dict[str, str]:
    return hubspot_signed(body, uri, secret="another-apps-secret")


def _other_url(body: bytes, uri: str) -> dict[str, str]:
    return hubspot_signed(body, "https://elsewhere.example.com" + PATH)


def _without(header: str) -> Any:
    def headers(body: bytes, uri: str) -> dict[str, str]:
        signed = hubspot_signed(body, uri)
        del signed[header]
        return signed

    return headers


@pytest.mark.parametrize(
    ("sign", "field"),
    [
        (_forged, "X-HubSpot-Signature-v3"),
        (_wrong_secret, "X-HubSpot-Signature-v3"),
        (_other_url, "X-HubSpot-Signature-v3"),
        (_old, "X-HubSpot-Request-Timestamp"),
        (_without("X-HubSpot-Signature-v3"), "X-HubSpot-Signature-v3"),
        (_without("X-HubSpot-Request-Timestamp"), "X-HubSpot-Request-Timestamp"),
    ],
    ids=["forged", "wrong-secret", "other-url", "old", "no-signature", "no-timestamp"],
)
async def test_an_unsigned_or_stale_delivery_is_refused_and_nothing_stored(
    client: Client, hub: FakeHubSpot, sign: Any, field: str
) -> None:
    contact = hub.add_contact(IDEAL["email"], lifecyclestage="customer")
    body = orjson.dumps([event("contact.propertyChange", contact, "lifecyclestage", "customer")])
    answer = await client.post(PATH, data=body, headers=sign(body, str(client.make_url(PATH))))
    assert answer.status == 401
    error = await answer.json()
    assert (error["code"], error["field"]) == ("unauthorized", field)
    assert error["message"] == error["error"]
    assert await labels(client) == []
    assert hub.requests_to("GET", "/crm/") == []  # nothing read back either


async def test_a_signature_over_the_public_url_is_accepted(
    client: Client, hub: FakeHubSpot
) -> None:
    contact = hub.add_contact(IDEAL["email"], hs_lead_status="UNQUALIFIED")
    body = orjson.dumps([event("contact.propertyChange", contact, "hs_lead_status", "UNQUALIFIED")])
    answer = await client.post(PATH, data=body, headers=hubspot_signed(body, PUBLIC + PATH))
    assert answer.status == 200, await answer.text()
    assert [row[1] for row in await labels(client)] == ["lost"]


async def test_hubspot_down_answers_503_and_the_redelivery_stores_the_label(
    client: Client, hub: FakeHubSpot
) -> None:
    contact = hub.add_contact(IDEAL["email"], lifecyclestage="customer")
    change = [event("contact.propertyChange", contact, "lifecyclestage", "customer")]
    await hub.stop()  # HubSpot's API unreachable: the connection is refused
    down = await deliver(client, change)
    assert down.status == 503, await down.text()
    assert (await down.json())["code"] == "unavailable"
    assert down.headers["Retry-After"]
    assert await labels(client) == []
    await hub.start()  # back, on the same port
    redelivered = await deliver(client, change)
    assert redelivered.status == 200, await redelivered.text()
    assert [row[1] for row in await labels(client)] == ["won"]


async def test_without_the_client_secret_the_route_says_what_to_set(
    db_url: str, hub: FakeHubSpot, config: LeadbotConfig
) -> None:
    client = await _client(db_url, hub, config, HUBSPOT_CLIENT_SECRET="")
    try:
        answer = await deliver(client, [event("contact.propertyChange", "1", "x", "y")])
        assert answer.status == 404
        error = await answer.json()
        assert error["field"] == "HUBSPOT_CLIENT_SECRET"
        assert "HUBSPOT_CLIENT_SECRET" in error["message"]
    finally:
        await client.close()


async def test_a_database_outage_answers_503_in_one_log_line_and_the_redelivery_stores(
    postgres_url: str, hub: FakeHubSpot, config: LeadbotConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stops taking connections: each of five deliveries is answered 503 (HubSpot
    delivers again) and logged once, without a traceback; once it is back, the redelivery
    stores the label."""
    client = await _client(postgres_url, hub, config)
    contact = hub.add_contact(IDEAL["email"], lifecyclestage="customer")
    change = [event("contact.propertyChange", contact, "lifecyclestage", "customer")]
    caplog.set_level(logging.INFO, logger="bot.crm.webhooks")
    try:
        await cut_postgres(postgres_url, allow=False)
        try:
            for _ in range(5):
                down = await deliver(client, change)
                assert down.status == 503, await down.text()
                assert (await down.json())["code"] == "unavailable"
        finally:
            await cut_postgres(postgres_url, allow=True)
        redelivered = await deliver(client, change)
        assert redelivered.status == 200, await redelivered.text()
        assert [row[1] for row in await labels(client)] == ["won"]
    finally:
        await client.close()
    [failed] = logged(caplog, "storing 1 outcomes failed")
    assert not failed.exc_info
    assert logged(caplog, "outcomes are stored again (after 4 suppressed failure(s))")
