"""The real Segment and RudderStack Python SDKs, pointed at a running ``leadbot serve``.

The server has write keys and a webhook secret set (no ``--insecure``). Each SDK sends one
visitor's journey in one batch (one flush): anonymous pricing pages, the identify that names
the visitor, a demo request, and another anonymous page. The lead must score like a reference
lead that got the same calls (same times, other ids) as signed webhooks, one request each:
the same fit, band, grade and engagement, the same score to 0.001 (the two are scored a
moment apart and intent decays). The anonymous visitor must be folded into the person, and
the SDK must report no error. A wrong
write key is a 401 the SDK sees, storing nothing; a batch with one unusable call keeps the rest.

The SDKs are observed at the wire (a response hook on their HTTP session), never patched.
"""

from __future__ import annotations

import asyncio
import atexit
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
import rudderstack.analytics as rudder_analytics
import rudderstack.analytics.request as rudder_request
import segment.analytics as segment_analytics
import segment.analytics.request as segment_request
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.ingest.signatures import generate_secret
from storage.engine import create_engine
from storage.ingest import EVENTS, IDENTITIES, LEADS
from tests.conftest import _admin, _drop, _postgres_admin_url
from tests.live_server import LiveServer, signed_request

SECRET = generate_secret()
OLD_KEY = "wk_old_" + secrets.token_hex(8)
WRITE_KEY = "wk_" + secrets.token_hex(16)
FLUSH_SECONDS = 10.0  # RudderStack retries anything but a 200 for minutes: this catches it
# One batch: every call is queued long before the consumer's collection window closes.
UPLOAD_INTERVAL = 5.0
T = float(int(time.time()) - 3 * 3600)  # the journey's first call, three hours ago

Call = dict[str, Any]


# --- the server ------------------------------------------------------------------------------


@dataclass
class Live:
    server: LiveServer
    db_url: str


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One ``leadbot serve`` per backend for the whole module, with two write keys (rotation)
    and a webhook secret."""
    tmp = tmp_path_factory.mktemp(f"sdk-{request.param}")
    admin_url, name = "", ""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp}/leadbot.db"
    else:
        admin_url, name = _postgres_admin_url(), f"leadbot_test_{uuid.uuid4().hex[:16]}"
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}" TEMPLATE template0'))
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": url,
        "LEADBOT_WEBHOOK_SECRET": SECRET,
        "LEADBOT_WRITE_KEYS": f"{OLD_KEY},{WRITE_KEY}",
        "LEADBOT_LOG_LEVEL": "WARNING",
    }
    server = LiveServer(tmp, env, name=f"sdk-{request.param}").start()
    try:
        yield Live(server, url)
    finally:
        server.stop()
        if name:
            asyncio.run(_drop(admin_url, name))


# --- one visitor's journey, as SDK calls and as the Segment calls a webhook carries ---------


@dataclass
class Journey:
    user_id: str
    anonymous_id: str
    traits: dict[str, Any] = field(default_factory=dict)

    def steps(self) -> list[tuple[str, dict[str, Any]]]:
        """(SDK method, keyword arguments) in the order a visitor makes them."""
        anon, user = {"anonymous_id": self.anonymous_id}, {"user_id": self.user_id}
        steps = [
            ("page", {**anon, "name": "Pricing", "properties": _page("/pricing"), "at": T}),
            ("page", {**anon, "properties": _page("/pricing/enterprise"), "at": T + 60}),
            ("identify", {**user, **anon, "traits": self.traits, "at": T + 120}),
            (
                "track",
                {**user, "event": "Demo Requested", "properties": {"plan": "team"}, "at": T + 180},
            ),
            ("page", {**anon, "properties": _page("/pricing"), "at": T + 3600}),
        ]
        return [(m, {**kw, "message_id": f"{self.user_id}-{n}"}) for n, (m, kw) in enumerate(steps)]

    def message_ids(self) -> list[str]:
        return [kwargs["message_id"] for _, kwargs in self.steps()]


def _page(path: str) -> dict[str, Any]:
    return {"path": path, "url": f"https://www.example.com{path}"}


def traits_for(tag: str) -> dict[str, Any]:
    return {
        "email": f"ada.{tag}@northwind.example",
        "title": "VP of Sales",
        "company": {"name": "Northwind", "employee_count": 250, "industry": "Software"},
        "address": {"country": "us"},
    }


def new_journey() -> Journey:
    tag = uuid.uuid4().hex[:10]
    return Journey(f"user-{tag}", f"anon-{tag}", traits_for(tag))


def sdk_send(client: Any, steps: list[tuple[str, dict[str, Any]]]) -> None:
    for method, kwargs in steps:
        args = dict(kwargs)
        args["timestamp"] = datetime.fromtimestamp(args.pop("at"), UTC)
        getattr(client, method)(**args)


def as_segment_call(method: str, kwargs: dict[str, Any]) -> Call:
    """The Segment-spec call a webhook sender posts for the same step (top-level traits)."""
    names = {"user_id": "userId", "anonymous_id": "anonymousId", "message_id": "messageId"}
    out: Call = {"type": method, "timestamp": datetime.fromtimestamp(kwargs["at"], UTC).isoformat()}
    for key, value in kwargs.items():
        if key != "at":
            out[names.get(key, key)] = value
    return out


# --- the SDKs, observed at the wire ---------------------------------------------------------


@dataclass
class Sdk:
    name: str
    make: Callable[..., Any]
    session: requests.Session


SDKS = [
    pytest.param(Sdk("segment", segment_analytics.Client, segment_request._session), id="segment"),
    pytest.param(Sdk("rudder", rudder_analytics.Client, rudder_request._session), id="rudder"),
]


@dataclass
class Run:
    """What one SDK client did: its on_error calls and every HTTP answer it got."""

    errors: list[tuple[Exception, list[Call]]] = field(default_factory=list)
    answers: list[tuple[str, int, bytes]] = field(default_factory=list)
    flush_seconds: float = 0.0

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(body) for _, _, body in self.answers]


def send_with(sdk: Sdk, base: str, key: str, steps: list[tuple[str, dict[str, Any]]]) -> Run:
    """Queue ``steps`` on a fresh client and flush once; wait at most FLUSH_SECONDS."""
    run = Run()

    def on_error(exc: Exception, batch: list[Call]) -> None:
        run.errors.append((exc, batch))

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        run.answers.append((response.request.url or "", response.status_code, response.content))

    sdk.session.hooks["response"].append(hook)
    client = sdk.make(
        write_key=key,
        host=base,
        on_error=on_error,
        upload_size=len(steps),
        upload_interval=UPLOAD_INTERVAL,
    )
    try:
        sdk_send(client, steps)
        flushed = threading.Event()
        started = time.monotonic()

        def flush() -> None:
            client.flush()
            flushed.set()

        threading.Thread(target=flush, daemon=True).start()
        assert flushed.wait(FLUSH_SECONDS), (
            f"{sdk.name}: flush() had not returned after {FLUSH_SECONDS:g} s; answers: "
            f"{run.answers[:3]}"
        )
        run.flush_seconds = time.monotonic() - started
    finally:
        sdk.session.hooks["response"].remove(hook)
        # Stop the consumer without joining it: it leaves its collection window by itself.
        atexit.unregister(client.join)
        for consumer in client.consumers:
            consumer.pause()
    return run


# --- reading what was stored ----------------------------------------------------------------


@dataclass
class Stored:
    lead: dict[str, Any] | None
    anon_lead: dict[str, Any] | None
    anon_identity: str | None
    event_leads: dict[str, str]


async def stored(url: str, journey: Journey) -> Stored:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            leads = (
                await conn.execute(
                    select(LEADS).where(
                        LEADS.c.id.in_([journey.user_id, f"anon:{journey.anonymous_id}"])
                    )
                )
            ).mappings()
            by_id = {row["id"]: dict(row) for row in leads}
            anon_key = f"anon:{journey.anonymous_id}"
            identity = (
                await conn.execute(select(IDENTITIES.c.lead_id).where(IDENTITIES.c.key == anon_key))
            ).scalar_one_or_none()
            events = await conn.execute(
                select(EVENTS.c.message_id, EVENTS.c.lead_id).where(
                    EVENTS.c.message_id.in_(journey.message_ids())
                )
            )
            event_leads = {row.message_id: row.lead_id for row in events}
    finally:
        await engine.dispose()
    return Stored(by_id.get(journey.user_id), by_id.get(anon_key), identity, event_leads)


def post_webhooks(base: str, calls: list[Call]) -> None:
    """Each call as its own signed request, in order, as a webhook destination sends them."""
    for call in calls:
        body, headers = signed_request(SECRET, call, f"msg_{call['messageId']}")
        request = urllib.request.Request(
            base + "/webhooks/events", data=body, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202, (call, answer.status)


SCORE_COLUMNS = ("score", "fit", "intent", "band", "grade", "engagement")


def scores(lead: dict[str, Any]) -> dict[str, Any]:
    return {k: round(lead[k], 6) if isinstance(lead[k], float) else lead[k] for k in SCORE_COLUMNS}


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("sdk", SDKS)
async def test_a_journey_in_one_sdk_batch_scores_like_signed_webhooks(live: Live, sdk: Sdk) -> None:
    journey, reference = new_journey(), new_journey()
    steps = journey.steps()
    run = await asyncio.to_thread(send_with, sdk, live.server.base, WRITE_KEY, steps)

    assert run.errors == []
    assert [(url.split("/", 3)[-1], status) for url, status, _ in run.answers] == [
        ("v1/batch", 200)
    ]  # one flush, one request: page, identify and later page arrive together
    (body,) = run.bodies()
    assert body == {"success": True, "accepted": len(steps), "duplicates": 0, "rejected": []}

    calls = [as_segment_call(method, kwargs) for method, kwargs in reference.steps()]
    await asyncio.to_thread(post_webhooks, live.server.base, calls)

    got, want = await stored(live.db_url, journey), await stored(live.db_url, reference)
    assert got.lead is not None
    assert want.lead is not None
    assert scores(got.lead) == pytest.approx(scores(want.lead), abs=1e-3)
    # The traits were read (RudderStack sends them in context.traits): fit, grade, e-mail.
    assert got.lead["fit"] > 0
    assert got.lead["grade"] in ("A", "B")
    assert got.lead["email"] == journey.traits["email"]
    # Merged: no anonymous lead left, the anonymous id names the person, every event is theirs.
    for side, person in ((got, journey), (want, reference)):
        assert side.anon_lead is None
        assert side.anon_identity == person.user_id
        assert side.event_leads == {m: person.user_id for m in person.message_ids()}


@pytest.mark.parametrize("key", [pytest.param("wk_wrong", id="wrong"), pytest.param("", id="none")])
@pytest.mark.parametrize("sdk", SDKS)
async def test_a_wrong_write_key_is_a_401_the_sdk_reports_and_nothing_is_stored(
    live: Live, sdk: Sdk, key: str
) -> None:
    journey = new_journey()
    run = await asyncio.to_thread(send_with, sdk, live.server.base, key, journey.steps())

    assert [status for _, status, _ in run.answers] == [401]  # final: the SDK does not retry
    ((exc, batch),) = run.errors
    assert len(batch) == len(journey.steps())
    # Both SDKs read `code` and `message` from the error body; "unknown" means they could not.
    assert (getattr(exc, "status", None), getattr(exc, "code", "unknown") != "unknown") == (
        401,
        True,
    ), exc
    assert getattr(exc, "message", "")
    got = await stored(live.db_url, journey)
    assert (got.lead, got.anon_lead, got.anon_identity, got.event_leads) == (None, None, None, {})


@pytest.mark.parametrize("sdk", SDKS)
async def test_an_unusable_call_is_dropped_and_the_rest_of_the_batch_kept(
    live: Live, sdk: Sdk
) -> None:
    journey = new_journey()
    steps = journey.steps()
    bad = ("track", {"user_id": journey.user_id, "event": "Newsletter Signup",
                     "properties": {"email": "n/a"}, "at": T + 200,
                     "message_id": f"{journey.user_id}-bad"})  # fmt: skip
    steps.insert(3, bad)
    # The older of the two configured keys: both work while a key is rotated.
    run = await asyncio.to_thread(send_with, sdk, live.server.base, OLD_KEY, steps)

    assert run.errors == []
    (body,) = run.bodies()
    assert (body["success"], body["accepted"], body["duplicates"]) == (True, len(steps) - 1, 0)
    ((rejected),) = body["rejected"]
    assert rejected["index"] == 3
    assert "properties.email" in rejected["field"]
    assert "n/a" in rejected["error"]
    got = await stored(live.db_url, journey)
    assert got.lead is not None
    assert got.anon_lead is None
    assert got.event_leads == {m: journey.user_id for m in journey.message_ids()}
