"""Anonymous → identified merge, however the calls are grouped into transactions.

An anonymous page, the identify that names the visitor and a later anonymous page must all
count for the person whether they arrive in one batch (as SDKs send them), in one group
commit of separate requests, or apart. Issue 14, point 6: when the first two shared a
transaction, the identity ``anon:X`` was stored pointing at the folded-in anonymous lead, so
the later page started a new anonymous lead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.ingest.batcher import GroupCommitter
from bot.ingest.pipeline import Pipeline
from bot.ingest.signatures import generate_secret, sign
from bot.outbox.dispatcher import ConsoleTransport
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from config.settings import load_settings
from scoring import LeadState, score
from storage.ingest import EVENTS, IDENTITIES, LEADS
from tests.bot.conftest import IDEAL, T0, call, events, page

FIT = 30.0  # IDEAL's title and industry under the small model: leader 20 + software 10
PRICING = 10.0


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    async with Pipeline(engine, config) as pipeline:
        yield pipeline


def _page(anon: str, at: float) -> dict[str, Any]:
    return page(None, "/pricing", at, anonymousId=anon)


def _identify(user: str, anon: str, at: float, **traits: Any) -> dict[str, Any]:
    return call("identify", at, userId=user, anonymousId=anon, traits={**IDEAL, **traits})


async def _rows(engine: AsyncEngine, table) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def _assert_merged(
    engine: AsyncEngine, model: Any, *, person: str, anon: str, pages: int, now: float
) -> None:
    """Everything of visitor ``anon`` belongs to ``person``, and nothing is left anonymous."""
    leads = {row["id"]: row for row in await _rows(engine, LEADS)}
    assert person in leads, leads.keys()
    assert not [lid for lid, row in leads.items() if row["anonymous"]]
    lead = leads[person]
    state = LeadState.from_dict(lead["state"])
    assert state.intent["pricing"].count == pages
    assert lead["fit"] == FIT
    # pages within minutes of ``now``: each worth almost the full 10 points (cap 3)
    assert lead["score"] == pytest.approx(FIT + PRICING * min(pages, 3), abs=0.05)
    assert score(state, model, now).total == pytest.approx(lead["score"])
    identities = {row["key"]: row["lead_id"] for row in await _rows(engine, IDENTITIES)}
    assert identities[f"anon:{anon}"] == person
    assert identities[f"user:{person}"] == person
    for row in await _rows(engine, EVENTS):
        if _raw(row).get("anonymousId") == anon:
            assert row["lead_id"] == person, _raw(row)


def _raw(row: dict[str, Any]) -> dict[str, Any]:
    raw = row["payload"]
    return raw if isinstance(raw, dict) else orjson.loads(raw)


async def _one_lead(engine: AsyncEngine) -> None:
    assert len(await _rows(engine, LEADS)) == 1
    assert {row["lead_id"] for row in await _rows(engine, EVENTS)} == {"u1"}


async def test_a_all_three_in_one_batch(engine: AsyncEngine, pipeline: Pipeline) -> None:
    batch = events(_page("a-1", T0), _identify("u1", "a-1", T0 + 5), _page("a-1", T0 + 10))
    assert (await pipeline.ingest(batch, now=T0 + 10)).accepted == 3
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=2, now=T0 + 10)
    await _one_lead(engine)


async def test_b_page_and_identify_in_one_group_commit_then_a_page_apart(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    group = [events(_page("a-1", T0)), events(_identify("u1", "a-1", T0 + 5))]
    await pipeline.ingest_many(group, now=T0 + 5)
    await pipeline.ingest(events(_page("a-1", T0 + 10)), now=T0 + 10)
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=2, now=T0 + 10)
    await _one_lead(engine)


async def test_b_through_the_group_committer(engine: AsyncEngine, pipeline: Pipeline) -> None:
    committer = GroupCommitter(pipeline, clock=lambda: T0 + 5)
    # Both requests queue before the writer loop starts, so they share its first commit.
    page_done = asyncio.ensure_future(committer.submit(events(_page("a-1", T0))))
    identify_done = asyncio.ensure_future(committer.submit(events(_identify("u1", "a-1", T0 + 5))))
    await asyncio.sleep(0)
    assert len(committer._queue) == 2
    writer = asyncio.create_task(committer.run())
    try:
        assert [r.accepted for r in await asyncio.gather(page_done, identify_done)] == [1, 1]
        assert (await committer.submit(events(_page("a-1", T0 + 10)))).accepted == 1
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=2, now=T0 + 10)
    await _one_lead(engine)


async def test_c_all_three_apart(engine: AsyncEngine, pipeline: Pipeline) -> None:
    await pipeline.ingest(events(_page("a-1", T0)), now=T0)
    await pipeline.ingest(events(_identify("u1", "a-1", T0 + 5)), now=T0 + 5)
    await pipeline.ingest(events(_page("a-1", T0 + 10)), now=T0 + 10)
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=2, now=T0 + 10)
    await _one_lead(engine)


async def test_d_the_later_page_in_the_same_batch_and_in_another_later(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    batch = events(_page("a-1", T0), _identify("u1", "a-1", T0 + 5), _page("a-1", T0 + 10))
    await pipeline.ingest(batch, now=T0 + 10)
    await pipeline.ingest(events(_page("a-1", T0 + 20)), now=T0 + 20)
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=3, now=T0 + 20)
    await _one_lead(engine)


async def test_alias_of_an_anonymous_id_in_the_same_batch(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    batch = events(
        _page("a-1", T0),
        call("identify", T0 + 1, userId="u1", traits=IDEAL),
        call("alias", T0 + 2, previousId="a-1", userId="u1"),
        _page("a-1", T0 + 3),
    )
    await pipeline.ingest(batch, now=T0 + 3)
    await pipeline.ingest(events(_page("a-1", T0 + 4)), now=T0 + 4)
    await _assert_merged(engine, pipeline.model, person="u1", anon="a-1", pages=3, now=T0 + 4)
    await _one_lead(engine)


async def test_two_anonymous_ids_fold_into_one_person_in_one_batch(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    batch = events(
        _page("a-1", T0), _page("a-2", T0 + 1),  # the same person on two devices
        _identify("u1", "a-1", T0 + 2), _identify("u1", "a-2", T0 + 3),
    )  # fmt: skip
    await pipeline.ingest(batch, now=T0 + 3)
    await pipeline.ingest(events(_page("a-1", T0 + 4), _page("a-2", T0 + 5)), now=T0 + 5)
    for anon in ("a-1", "a-2"):
        await _assert_merged(engine, pipeline.model, person="u1", anon=anon, pages=4, now=T0 + 5)
    await _one_lead(engine)


async def test_the_person_named_by_email_then_by_user_id_in_one_batch(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    email = IDEAL["email"]
    batch = events(
        _page("a-1", T0),
        call("identify", T0 + 1, anonymousId="a-1", traits=IDEAL),  # e-mail only
        _identify("u1", "a-1", T0 + 2),  # then the userId, with the e-mail
        _page("a-1", T0 + 3),
    )
    await pipeline.ingest(batch, now=T0 + 3)
    await pipeline.ingest(events(_page("a-1", T0 + 4)), now=T0 + 4)
    leads = await _rows(engine, LEADS)
    assert [row["id"] for row in leads] == [email]  # a lead keeps the id it was born with
    assert LeadState.from_dict(leads[0]["state"]).intent["pricing"].count == 3
    identities = {row["key"]: row["lead_id"] for row in await _rows(engine, IDENTITIES)}
    assert identities == {"anon:a-1": email, f"email:{email}": email, "user:u1": email}
    assert {row["lead_id"] for row in await _rows(engine, EVENTS)} == {email}


# --- over HTTP, as the issue measured: 10 visitors, page and identify as separate requests

SECRET = generate_secret()


@pytest.fixture
async def client(db_url: str, config: LeadbotConfig) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    env = {"DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET, "LEADBOT_INGEST": "thread"}
    app = build_app(settings=load_settings(env), config=config, transport=ConsoleTransport())
    async with TestClient(TestServer(app)) as client:
        yield client


async def _post(client: TestClient, payload: dict[str, Any], n: int) -> None:  # type: ignore[type-arg]
    body = orjson.dumps(payload)
    headers = sign(SECRET, body, msg_id=f"msg_{n}", timestamp=int(time.time()))
    resp = await client.post("/webhooks/events", data=body, headers=headers)
    assert resp.status == 202, await resp.text()


async def test_ten_concurrent_page_and_identify_pairs_all_merge(client: TestClient) -> None:  # type: ignore[type-arg]
    now = time.time()
    visitors = [(f"u{i}", f"a-{i}") for i in range(10)]
    pairs = []
    for i, (user, anon) in enumerate(visitors):  # sent at once: most pairs share a commit
        named = _identify(user, anon, now + 1, email=f"{user}@acme.example")
        pairs += [_post(client, _page(anon, now), 2 * i), _post(client, named, 2 * i + 1)]
    await asyncio.gather(*pairs)
    later = [_post(client, _page(anon, now + 2), 100 + i) for i, (_, anon) in enumerate(visitors)]
    await asyncio.gather(*later)
    engine: AsyncEngine = client.app[ENGINE]
    leads = {row["id"]: row for row in await _rows(engine, LEADS)}
    assert sorted(leads) == sorted(user for user, _ in visitors)
    identities = {row["key"]: row["lead_id"] for row in await _rows(engine, IDENTITIES)}
    for user, anon in visitors:
        assert identities[f"anon:{anon}"] == user
        assert LeadState.from_dict(leads[user]["state"]).intent["pricing"].count == 2
    for row in await _rows(engine, EVENTS):
        raw = _raw(row)
        assert row["lead_id"] == f"u{raw['anonymousId'].removeprefix('a-')}"


async def test_a_new_email_from_an_identified_visitor_counts_for_the_person(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(events(_page("a-1", T0), _identify("u1", "a-1", T0 + 1)), now=T0 + 1)
    form = call("track", T0 + 2, anonymousId="a-1", event="Demo Requested",
                properties={"email": "dana.reyes@acmesoft.com"})  # fmt: skip
    await pipeline.ingest(events(form), now=T0 + 2)
    leads = await _rows(engine, LEADS)
    assert [row["id"] for row in leads] == ["u1"]
    assert set(LeadState.from_dict(leads[0]["state"]).intent) == {"pricing", "demo"}
    identities = {row["key"]: row["lead_id"] for row in await _rows(engine, IDENTITIES)}
    assert identities["email:dana.reyes@acmesoft.com"] == "u1"


async def test_a_new_user_id_on_a_known_browser_is_a_new_person(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(events(_identify("u1", "a-1", T0)), now=T0)
    other = call("identify", T0 + 1, userId="u2", anonymousId="a-1", traits={"title": "CTO"})
    await pipeline.ingest(events(other), now=T0 + 1)
    assert sorted(row["id"] for row in await _rows(engine, LEADS)) == ["u1", "u2"]
    identities = {row["key"]: row["lead_id"] for row in await _rows(engine, IDENTITIES)}
    assert (identities["anon:a-1"], identities["user:u2"]) == ("u1", "u2")
