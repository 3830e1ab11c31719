"""The ingest pipeline on a real database: state, scores, identities, history, outbox."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from scoring import LeadState, score
from storage.ingest import EVENTS, FEEDBACK, HISTORY, IDENTITIES, LEADS, OUTBOX
from tests.bot.conftest import DAY, IDEAL, T0, call, events, identify, page, track


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    async with Pipeline(engine, config) as pipeline:
        yield pipeline


async def _lead(engine: AsyncEngine, lead_id: str) -> dict | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(LEADS).where(LEADS.c.id == lead_id))).mappings().first()
    return dict(row) if row else None


async def _count(engine: AsyncEngine, table, *where) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return (
            await conn.execute(select(func.count()).select_from(table).where(*where))
        ).scalar_one()


async def test_identify_and_events_store_an_explained_score(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    result = await pipeline.ingest(
        events(identify("u1", T0, **IDEAL), page("u1", "/pricing", T0 + 60)), now=T0 + 120
    )
    assert (result.accepted, result.duplicates) == (2, 0)
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert (lead["email"], lead["name"], lead["company"]) == (
        "dana@acmesoft.com",
        "Dana Reyes",
        "AcmeSoft",
    )
    # leader 20 + software 10 + pricing 10 × 2^(-60 s / 7 d) ≈ 40
    assert lead["score"] == pytest.approx(40.0, abs=0.01)
    assert (lead["fit"], lead["band"], lead["grade"]) == (30.0, "warm", "B")
    stored = LeadState.from_dict(lead["state"])
    assert stored.fit == {"leader", "software"}
    assert stored.intent["pricing"].count == 1
    # the stored score is what the pure engine says of the stored state
    assert score(stored, pipeline.model, T0 + 120).total == pytest.approx(lead["score"])
    assert await _count(engine, EVENTS, EVENTS.c.lead_id == "u1") == 2


async def test_a_retried_message_is_counted_once(engine: AsyncEngine, pipeline: Pipeline) -> None:
    batch = [identify("u1", T0, **IDEAL), page("u1", "/pricing", T0)]
    await pipeline.ingest(events(*batch), now=T0)
    before = await _lead(engine, "u1")
    again = await pipeline.ingest(events(*batch), now=T0)
    assert (again.accepted, again.duplicates) == (0, 2)
    after = await _lead(engine, "u1")
    assert after is not None
    assert before is not None
    assert after["state"] == before["state"]
    assert after["score"] == before["score"]
    assert await _count(engine, EVENTS) == 2


async def test_a_message_id_twice_in_one_group_counts_for_the_first_request(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    shared = page("u1", "/pricing", T0, messageId="same")
    results = (await pipeline.ingest_many([events(shared), events(shared)], now=T0)).results
    assert [(r.accepted, r.duplicates) for r in results] == [(1, 0), (0, 1)]
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert LeadState.from_dict(lead["state"]).intent["pricing"].count == 1


async def test_anonymous_browsing_joins_the_lead_on_identify(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(
        events(page(None, "/pricing", T0, anonymousId="a-1"),
               page(None, "/pricing", T0 + 10, anonymousId="a-1")),
        now=T0 + 10,
    )  # fmt: skip
    anon = await _lead(engine, "anon:a-1")
    assert anon is not None
    async with engine.begin() as conn:  # a rep judged the visitor before they signed up
        await conn.execute(FEEDBACK.insert().values(
            lead_id="anon:a-1", outcome="qualified", by="slack:U1", at=datetime.now(UTC),
            features={},
        ))  # fmt: skip
    assert anon["anonymous"] is True
    await pipeline.ingest(
        events(call("identify", T0 + 20, userId="u1", anonymousId="a-1", traits=IDEAL)),
        now=T0 + 20,
    )
    assert await _lead(engine, "anon:a-1") is None
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert lead["anonymous"] is False
    assert LeadState.from_dict(lead["state"]).intent["pricing"].count == 2
    assert lead["score"] == pytest.approx(30 + 20, abs=0.01)
    assert await _count(engine, EVENTS, EVENTS.c.lead_id == "u1") == 3
    assert await _count(engine, IDENTITIES, IDENTITIES.c.lead_id == "anon:a-1") == 0
    assert await _count(engine, FEEDBACK, FEEDBACK.c.lead_id == "u1") == 1  # moved along
    # later anonymous events land on the known lead directly
    await pipeline.ingest(events(page(None, "/pricing", T0 + 30, anonymousId="a-1")), now=T0 + 30)
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert LeadState.from_dict(lead["state"]).intent["pricing"].count == 3


async def test_alias_links_a_previous_anonymous_id(engine: AsyncEngine, pipeline: Pipeline) -> None:
    await pipeline.ingest(events(track(None, "Demo Requested", T0, anonymousId="a-9")), now=T0)
    await pipeline.ingest(events(call("alias", T0 + 5, previousId="a-9", userId="u9")), now=T0 + 5)
    lead = await _lead(engine, "u9")
    assert lead is not None
    assert "demo" in LeadState.from_dict(lead["state"]).intent
    assert await _lead(engine, "anon:a-9") is None


async def test_email_first_then_user_id_is_one_lead(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(
        events(call("identify", T0, traits={"email": "Dana@AcmeSoft.com", "title": "VP Sales"})),
        now=T0,
    )
    assert await _lead(engine, "dana@acmesoft.com") is not None
    await pipeline.ingest(
        events(call("track", T0 + 5, userId="crm-42", event="Demo Requested",
                    properties={"email": "dana@acmesoft.com"})),
        now=T0 + 5,
    )  # fmt: skip
    lead = await _lead(engine, "dana@acmesoft.com")
    assert lead is not None
    assert lead["score"] == pytest.approx(20 + 30, abs=0.01)
    assert await _lead(engine, "crm-42") is None
    # and the userId now finds the same lead
    await pipeline.ingest(events(page("crm-42", "/pricing", T0 + 6)), now=T0 + 6)
    lead = await _lead(engine, "dana@acmesoft.com")
    assert lead is not None
    assert "pricing" in LeadState.from_dict(lead["state"]).intent


async def test_crossing_into_hot_queues_exactly_one_alert(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0)
    assert await _count(engine, OUTBOX) == 0
    await pipeline.ingest(events(track("u1", "Demo Requested", T0 + 60)), now=T0 + 60)
    await pipeline.ingest(events(page("u1", "/pricing", T0 + 120)), now=T0 + 120)
    assert await _count(engine, OUTBOX) == 1
    async with engine.connect() as conn:
        alert = (await conn.execute(select(OUTBOX))).mappings().one()
    assert alert["kind"] == "alert"
    assert alert["lead_id"] == "u1"
    payload = alert["payload"]
    assert payload["why_now"]["name"] == "Demo Requested"
    assert payload["score"]["band"] == "hot"
    assert {c["rule"] for c in payload["contributions"]} == {"leader", "software", "demo"}
    assert sum(c["points"] for c in payload["contributions"]) == pytest.approx(
        payload["score"]["total"], abs=0.1
    )
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert lead["alerted_at"] is not None


async def test_no_second_alert_within_the_cooldown_but_one_after(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(
        events(identify("u1", T0, **IDEAL), track("u1", "Demo Requested", T0)), now=T0
    )
    assert await _count(engine, OUTBOX) == 1
    # the demo decays (14-day half-life): ten days later the lead has dropped to warm
    await pipeline.ingest(events(identify("u1", T0 + 10 * DAY, plan="x")), now=T0 + 10 * DAY)
    assert (await _lead(engine, "u1") or {})["band"] == "warm"
    # hot again: a new crossing, outside the 24 h cooldown -> a second alert
    await pipeline.ingest(
        events(track("u1", "Demo Requested", T0 + 10 * DAY + 60)), now=T0 + 10 * DAY + 60
    )
    assert await _count(engine, OUTBOX) == 2
    # drop and cross again within 24 h of that alert -> no third alert
    await pipeline.ingest(
        events(identify("u1", T0 + 10 * DAY + 120, email="dana@gmail.com")),
        now=T0 + 10 * DAY + 120,
    )
    assert (await _lead(engine, "u1") or {})["band"] != "hot"
    await pipeline.ingest(
        events(identify("u1", T0 + 10 * DAY + 180, email="dana@acmesoft.com")),
        now=T0 + 10 * DAY + 180,
    )
    assert (await _lead(engine, "u1") or {})["band"] == "hot"
    assert await _count(engine, OUTBOX) == 2


async def test_an_event_that_changes_the_band_stores_it_and_one_that_does_not_keeps_it(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    """Score-only updates leave the band column out of the UPDATE unless it changed (an
    index entry fewer per event): both kinds, in one group, land as scored."""
    other = {**IDEAL, "email": "lee@acmesoft.com"}
    await pipeline.ingest(events(identify("u1", T0, **IDEAL), identify("u2", T0, **other)), now=T0)
    assert (await _lead(engine, "u1") or {})["band"] == "warm"
    group = events(track("u1", "Demo Requested", T0 + 1), track("u2", "Webinar Attended", T0 + 1))
    await pipeline.ingest(group, now=T0 + 1)
    hot, still = await _lead(engine, "u1") or {}, await _lead(engine, "u2") or {}
    assert (hot["band"], still["band"]) == ("hot", "warm")
    assert hot["score"] > still["score"] > 0


async def test_history_records_band_changes_and_big_moves_with_their_cause(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0)
    await pipeline.ingest(events(identify("u1", T0 + 1, city="Lyon")), now=T0 + 1)  # no change
    await pipeline.ingest(events(track("u1", "Demo Requested", T0 + 2)), now=T0 + 2)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(HISTORY).order_by(HISTORY.c.id))).mappings().all()
    assert [(r["previous_band"], r["band"]) for r in rows] == [(None, "warm"), ("warm", "hot")]
    assert rows[1]["cause"].startswith("track: Demo Requested")
    assert rows[1]["previous_score"] == pytest.approx(30.0)


async def test_arrival_order_does_not_change_the_stored_score(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    calls = [
        identify("u1", T0, **IDEAL),
        page("u1", "/pricing", T0 + 3600),
        page("u1", "/pricing", T0 + 2 * DAY),
        track("u1", "Demo Requested", T0 + DAY),
    ]
    mirrored = [dict(c, userId="u2", messageId=c["messageId"] + "-b") for c in reversed(calls)]
    for c in calls:
        await pipeline.ingest(events(c), now=T0 + 3 * DAY)
    await pipeline.ingest(events(*mirrored), now=T0 + 3 * DAY)
    one, two = await _lead(engine, "u1"), await _lead(engine, "u2")
    assert one is not None
    assert two is not None
    assert one["score"] == pytest.approx(two["score"])
    assert one["state"]["intent"]["pricing"] == pytest.approx(two["state"]["intent"]["pricing"])


async def test_a_later_event_rewrites_scores_and_times_and_keeps_the_profile(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await pipeline.ingest(events(identify("u1", T0, **IDEAL)), now=T0 + 1)
    # Events only (the cheaper update of state and scores), one of them older than the lead.
    await pipeline.ingest(
        events(page("u1", "/pricing", T0 + 60), track("u1", "Demo Requested", T0 - DAY)),
        now=T0 + 120,
    )
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert (lead["email"], lead["name"], lead["company"]) == (
        "dana@acmesoft.com", "Dana Reyes", "AcmeSoft",
    )  # fmt: skip
    stored = LeadState.from_dict(lead["state"])
    assert stored.intent["pricing"].count == 1
    assert lead["score"] == pytest.approx(score(stored, pipeline.model, T0 + 120).total)
    assert lead["first_seen_at"].replace(tzinfo=UTC).timestamp() == pytest.approx(T0 - DAY)
    assert lead["last_event_at"].replace(tzinfo=UTC).timestamp() == pytest.approx(T0 + 60)
    # A new name in a later identify reaches the profile columns again.
    await pipeline.ingest(events(identify("u1", T0 + 200, name="Dana R. Reyes")), now=T0 + 201)
    lead = await _lead(engine, "u1")
    assert lead is not None
    assert (lead["name"], lead["email"]) == ("Dana R. Reyes", "dana@acmesoft.com")


async def test_a_group_runs_without_collections_and_the_collector_is_back_on_after(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    """Thousands of events allocate enough for dozens of automatic collections (26 here
    without the pause); none runs while the group's transaction body does (each would walk
    every object of the group). Outside the body a few may: as the collector comes back on
    with the group's garbage counted, and on PostgreSQL around the body (the hop to the
    ingest worker, the commit's round trip)."""
    started: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    group = [events(page(f"u{i % 400}", f"/docs/{i}", T0 + i)) for i in range(3_000)]
    gc.callbacks.append(seen)
    try:
        result = await pipeline.ingest_many(group, now=T0 + 3_600)
    finally:
        gc.callbacks.remove(seen)
    assert sum(r.accepted for r in result.results) == 3_000
    assert len(started) <= 3, started
    assert gc.isenabled()
    assert await _count(engine, LEADS) == 400
