"""The webhook endpoint over HTTP, as Segment, RudderStack or curl would call it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import StartupError, build_app
from bot.ingest.signatures import generate_secret, sign
from bot.outbox.dispatcher import ConsoleTransport
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from storage.ingest import EVENTS, LEADS, OUTBOX
from tests.bot.conftest import IDEAL, identify, page, track

SECRET = generate_secret()
SEGMENT_SECRET = "segment-shared-secret"

Post = Callable[..., Awaitable[ClientResponse]]


def _settings(db_url: str, **extra: str) -> Any:
    env = {"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET,
           "LEADBOT_SEGMENT_SECRET": SEGMENT_SECRET, "LEADBOT_INGEST": "thread",
           **extra}  # fmt: skip
    return load_settings(env)


@pytest.fixture
def console() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
async def client(
    db_url: str, config: LeadbotConfig, console: io.StringIO
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = build_app(
        settings=_settings(db_url, LEADBOT_MAX_EVENT_BYTES="2048", LEADBOT_MAX_BODY_BYTES="65536"),
        config=config,
        transport=ConsoleTransport(console),
    )
    async with TestClient(TestServer(app)) as client:
        yield client


def signed(body: bytes, *, secret: str = SECRET, at: float | None = None, msg: str = "msg_1"):  # type: ignore[no-untyped-def]
    return sign(secret, body, msg_id=msg, timestamp=int(at if at is not None else time.time()))


async def post(client: TestClient, payload: Any, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def,type-arg]
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return await client.post(
        "/webhooks/events", data=body, headers=signed(body) if headers is None else headers
    )


async def _count(client: TestClient, table) -> int:  # type: ignore[no-untyped-def,type-arg]
    async with client.app[ENGINE].connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def _nothing_stored(client: TestClient) -> None:  # type: ignore[type-arg]
    assert await _count(client, EVENTS) == 0
    assert await _count(client, LEADS) == 0


NOW = time.time()


async def test_a_signed_call_is_stored_before_the_answer(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await post(client, identify("u1", NOW, **IDEAL))
    assert resp.status == 202
    assert await resp.json() == {"accepted": 1, "duplicates": 0}
    assert await _count(client, EVENTS) == 1
    assert await _count(client, LEADS) == 1


async def test_a_batch_and_its_retry(client: TestClient) -> None:  # type: ignore[type-arg]
    batch = {"batch": [identify("u1", NOW, **IDEAL), page("u1", "/pricing", NOW)]}
    first = await post(client, batch)
    assert (first.status, await first.json()) == (202, {"accepted": 2, "duplicates": 0})
    again = await post(client, batch)
    assert (again.status, await again.json()) == (202, {"accepted": 0, "duplicates": 2})
    assert await _count(client, EVENTS) == 2


async def test_key_rotation_any_listed_signature_passes(client: TestClient) -> None:  # type: ignore[type-arg]
    body = orjson.dumps(identify("u1", NOW, **IDEAL))
    headers = signed(body)
    old = signed(body, secret=generate_secret())["webhook-signature"]
    headers["webhook-signature"] = f"{old} {headers['webhook-signature']}"
    assert (await post(client, body, headers)).status == 202


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda b, h: {
                **h,
                "webhook-signature": signed(b, secret=generate_secret())["webhook-signature"],
            },
            "no matching signature",
        ),
        (lambda b, h: signed(b, at=time.time() - 330), "too old"),  # 5 min + a margin
        (lambda b, h: signed(b, at=time.time() + 330), "too new"),  # a slow box: not 1 s
        (lambda b, h: {k: v for k, v in h.items() if k != "webhook-id"}, "webhook-id"),
        (lambda b, h: {}, "missing signature"),
        (lambda b, h: {**h, "webhook-signature": "v1"}, "malformed"),
    ],
    ids=["wrong-secret", "stale", "future", "missing-id", "unsigned", "malformed"],
)
async def test_forged_stale_or_unsigned_calls_are_refused(
    client: TestClient,
    change: Callable[..., dict[str, str]],
    reason: str,  # type: ignore[type-arg]
) -> None:
    body = orjson.dumps(identify("u1", NOW, **IDEAL))
    resp = await post(client, body, change(body, signed(body)))
    assert resp.status == 401
    answer = await resp.json()
    assert reason in answer["error"]
    assert SECRET not in answer["error"]
    await _nothing_stored(client)


async def test_a_tampered_body_is_refused(client: TestClient) -> None:  # type: ignore[type-arg]
    body = orjson.dumps(identify("u1", NOW, **IDEAL))
    headers = signed(body)
    resp = await post(client, body.replace(b"VP of Sales", b"VP of Sails"), headers)
    assert resp.status == 401
    await _nothing_stored(client)


async def test_segment_destination_signature(client: TestClient) -> None:  # type: ignore[type-arg]
    body = orjson.dumps(identify("u1", NOW, **IDEAL))
    good = hmac.new(SEGMENT_SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert (await post(client, body, {"X-Signature": good})).status == 202
    bad = hmac.new(b"other", body, hashlib.sha1).hexdigest()
    body2 = orjson.dumps(identify("u2", NOW, **IDEAL))
    assert (await post(client, body2, {"X-Signature": bad})).status == 401
    assert await _count(client, LEADS) == 1


def _big(n: int) -> dict[str, Any]:
    return identify("u1", NOW, bio="x" * n)


@pytest.mark.parametrize(
    ("payload", "status", "field", "words"),
    [
        (b"{not json", 400, "", "invalid JSON"),
        ({"batch": [identify("u1", NOW), {"type": "track", "event": "X"}]},
         400, "batch[1]", "identity"),
        ({"batch": [identify("u1", NOW)] * 3 + [dict(identify("u2", NOW), timestamp="yesterday")]},
         400, "batch[3].timestamp", "yesterday"),
        ({"type": "purchase", "userId": "u1"}, 400, "type", "unknown call type"),
        (_big(4000), 413, "", "2048"),
        ({"batch": [identify(f"u{i}", NOW, bio="y" * 1500) for i in range(60)]}, 413, "", "65536"),
    ],
    ids=["invalid-json", "missing-identity", "bad-timestamp", "unknown-type", "event-too-big",
         "body-too-big"],
)  # fmt: skip
async def test_bad_input_is_refused_with_the_field_and_changes_nothing(
    client: TestClient,
    payload: Any,
    status: int,
    field: str,
    words: str,  # type: ignore[type-arg]
) -> None:
    resp = await post(client, payload)
    assert resp.status == status
    answer = await resp.json()
    assert answer["field"].startswith(field)
    assert words in answer["error"]
    await _nothing_stored(client)


async def _console_shows(console: io.StringIO, text: str, seconds: float = 2.0) -> str:
    """The console output once ``text`` appears in it (or the time runs out)."""
    for _ in range(int(seconds / 0.02)):
        if text in console.getvalue():
            break
        await asyncio.sleep(0.02)
    return console.getvalue()


async def test_a_hot_lead_reaches_the_console_with_its_breakdown(
    client: TestClient,  # type: ignore[type-arg]
    console: io.StringIO,
) -> None:
    batch = {"batch": [identify("u1", NOW, **IDEAL), track("u1", "Demo Requested", NOW)]}
    assert (await post(client, batch)).status == 202
    text = await _console_shows(console, "HOT LEAD")
    assert "HOT LEAD  Dana Reyes (AcmeSoft)" in text
    assert "Requested a demo" in text
    assert "Sales leader" in text
    # Printed first, then marked sent: wait for the mark rather than race it.
    for _ in range(100):
        async with client.app[ENGINE].connect() as conn:
            statuses = (await conn.execute(select(OUTBOX.c.status))).scalars().all()
        if statuses != ["sending"]:
            break
        await asyncio.sleep(0.02)
    assert statuses == ["sent"]


async def test_without_a_secret_the_bot_refuses_to_run_open(
    db_url: str, config: LeadbotConfig
) -> None:
    settings = load_settings({"DATABASE_URL": db_url, "LEADBOT_INGEST": "thread"})
    with pytest.raises(StartupError, match="--insecure"):
        build_app(settings=settings, config=config)


async def test_insecure_mode_accepts_unsigned_calls(db_url: str, config: LeadbotConfig) -> None:
    settings = load_settings({"DATABASE_URL": db_url, "LEADBOT_INGEST": "thread"})
    app = build_app(settings=settings, config=config, insecure=True)
    async with TestClient(TestServer(app)) as client:
        resp = await post(client, identify("u1", NOW, **IDEAL), headers={})
        assert resp.status == 202


async def test_the_writer_process_commits_before_answering_and_wakes_delivery(
    db_url: str, config: LeadbotConfig, console: io.StringIO
) -> None:
    """``leadbot serve``'s default: the ingest writer in a child process."""
    settings = _settings(db_url, LEADBOT_INGEST="process")
    app = build_app(settings=settings, config=config, transport=ConsoleTransport(console))
    async with TestClient(TestServer(app)) as client:
        batch = {"batch": [identify("u1", NOW, **IDEAL), track("u1", "Demo Requested", NOW)]}
        first = await post(client, batch)
        assert (first.status, await first.json()) == (202, {"accepted": 2, "duplicates": 0})
        assert await _count(client, EVENTS) == 2  # committed by the child before the 202
        again = await post(client, batch)
        assert (again.status, await again.json()) == (202, {"accepted": 0, "duplicates": 2})
        answers = await asyncio.gather(
            *(post(client, page(f"p{i}", "/pricing", NOW)) for i in range(20))
        )
        assert [a.status for a in answers] == [202] * 20
        assert await _count(client, LEADS) == 21
        assert "HOT LEAD  Dana Reyes" in await _console_shows(console, "HOT LEAD", 5.0)
