"""``top``, band counts and percentile edges read without scoring every lead give exactly
what scoring every lead now gives (stored scores as of each lead's last write, decayed since)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.ranked import band_counts_now, edges_now, falls_with_time, top_now
from bot.jobs.decay import decay_sweep
from config.loader import load_config
from scoring import LeadState, Model, Score, score
from scoring.bands import Thresholds, resolve_thresholds
from scoring.model import BandSpec, RuleKind, Threshold
from storage.engine import session_factory
from storage.ingest import upsert_leads
from storage.leads import current_scores, lead_states

DAY = 86400.0
NOW = 1_800_000_000.0
MODEL = load_config().model
PERCENTILES = replace(
    MODEL,
    bands=BandSpec(
        warm=Threshold(percentile=60, min_points=5), hot=Threshold(percentile=90, min_points=20)
    ),
)
SIGNALS = ["Demo Requested", "Trial Started", "Contact Sales Submitted", "Email Link Clicked",
           "Unsubscribed"]  # fmt: skip


def _state(rng: random.Random, stored_at: float) -> LeadState:
    state = LeadState()
    start = stored_at - rng.uniform(0, 5) * DAY
    title = rng.choice(["VP Sales", "Student", "Engineer", "RevOps lead"])
    state.identify(
        {"title": title, "email": f"x@{rng.choice(['a.io', 'gmail.com'])}"}, MODEL, start
    )
    for _ in range(rng.randint(0, 5)):
        state.event("track", rng.choice(SIGNALS), {}, MODEL, rng.uniform(start, stored_at))
    return state


def _row(i: int, state: LeadState, stored: Score, stored_at: float) -> dict[str, Any]:
    return {
        "id": f"lead-{i:04d}", "email": None, "name": None, "company": None,
        "anonymous": i % 9 == 0, "state": state.to_dict(), "score": stored.total,
        "fit": stored.fit, "intent": stored.intent, "band": str(stored.band),
        "grade": stored.grade, "engagement": stored.engagement,
        "probability": stored.probability, "first_seen_at": state.first_seen,
        "last_event_at": state.last_seen, "scored_at": stored_at, "alerted_at": None,
    }  # fmt: skip


async def _seed(engine: AsyncEngine, model: Model, leads: int = 700) -> list[tuple[str, Score]]:
    """Leads stored when last written (up to 8 days ago), some twins (ties); returns every
    known lead scored now from its stored state (what the old full read ranked), in order."""
    rng = random.Random(11)
    rows = []
    for i in range(leads):
        stored_at = NOW - rng.uniform(0, 8) * DAY
        state = _state(rng, stored_at) if i % 5 else _state(random.Random(1), NOW - 3 * DAY)
        stored_at = max(stored_at, NOW - 3 * DAY) if i % 5 == 0 else stored_at
        rows.append(_row(i, state, score(state, model, stored_at, explain=False), stored_at))
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: upsert_leads(c, rows=rows))
    async with session_factory(engine)() as session:
        stored = await lead_states(session)
    now = [(i, score(LeadState.from_dict(s), model, NOW, explain=False)) for i, s in stored]
    assert len(now) == leads - len(range(0, leads, 9))
    return sorted(now, key=lambda pair: (-pair[1].total, pair[0]))


def _rescored(every: list[tuple[str, Score]], model: Model, edges: Thresholds | None) -> list:
    """``every`` with the bands the edges give."""
    edges = edges or Thresholds(warm=model.bands.warm.points, hot=model.bands.hot.points)  # type: ignore[arg-type]
    return [(i, s.total, "hot" if s.total >= edges.hot else "warm" if s.total >= edges.warm
             else "cold") for i, s in every]  # fmt: skip


@pytest.mark.parametrize("model", [MODEL, PERCENTILES], ids=["fixed", "percentiles"])
async def test_top_and_counts_match_scoring_every_lead_now(
    engine: AsyncEngine, model: Model
) -> None:
    assert falls_with_time(model)
    every = await _seed(engine, model)
    async with session_factory(engine)() as session:
        edges = await edges_now(session, model=model)
        if model is PERCENTILES:
            assert edges == resolve_thresholds(model.bands, await current_scores(session))
        expected = _rescored(every, model, edges)
        for n, band in [(1, None), (5, None), (40, None), (5, "hot"), (5, "warm"), (7, "cold")]:
            got = await top_now(session, model=model, now=NOW, n=n, band=band, thresholds=edges)
            want = [row[:2] for row in expected if band is None or row[2] == band][:n]
            assert [(i, s.total) for i, s in got] == want, (n, band)
        counts = await band_counts_now(session, model=model, now=NOW, thresholds=edges)
    assert counts == {b: sum(1 for row in expected if row[2] == b) for b in ("hot", "warm", "cold")}
    assert min(counts.values()) > 0, counts


async def test_a_model_whose_scores_rise_with_time_is_read_lead_by_lead(
    engine: AsyncEngine,
) -> None:
    """An unsubscribe that decays makes a stored score no bound: leads are all scored now."""
    rules = tuple(
        replace(r, half_life_days=3.0)
        if r.kind is RuleKind.INTENT and r.points < 0 else r
        for r in MODEL.rules
    )  # fmt: skip
    rising = replace(MODEL, rules=rules)
    assert not falls_with_time(rising)
    every = await _seed(engine, rising)
    expected = _rescored(every, rising, None)
    async with session_factory(engine)() as session:
        got = await top_now(session, model=rising, now=NOW, n=10)
        counts = await band_counts_now(session, model=rising, now=NOW)
    assert [(i, s.total) for i, s in got] == [row[:2] for row in expected][:10]
    assert counts == {b: sum(1 for row in expected if row[2] == b) for b in ("hot", "warm", "cold")}


async def _firm_leads(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        query = text("SELECT count(*) FROM leads WHERE band_firm_for = scored_at")
        return int((await conn.execute(query)).scalar_one())


async def test_after_a_decay_sweep_counts_stay_exact_and_a_new_write_voids_a_sure_band(
    engine: AsyncEngine,
) -> None:
    """The sweep marks bands sure for a while; counts later (before, near and after those
    times) equal scoring every lead then, and a lead written since is scored again."""
    await _seed(engine, MODEL)
    swept_at = NOW + 3600
    await decay_sweep(engine, config=load_config(), model=MODEL, now=swept_at)
    assert await _firm_leads(engine) > 50
    async with session_factory(engine)() as session:
        states = [(i, LeadState.from_dict(s)) for i, s in await lead_states(session)]
    # A lead the ingest rewrites after the sweep: stored score as of a new event, which
    # also lowers the lead a lot (an unsubscribe); its old sure band must not count.
    changed_id, changed = next((i, s) for i, s in states if score(s, MODEL, swept_at).total >= 70)
    changed.event("track", "Unsubscribed", {}, MODEL, swept_at + 60)
    changed.event("track", "Email Bounced", {}, MODEL, swept_at + 60)
    again = score(changed, MODEL, swept_at + 60, explain=False)
    row = _row(int(changed_id.split("-")[1]), changed, again, swept_at + 60)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: upsert_leads(c, rows=[row]))
    states = [(i, changed if i == changed_id else s) for i, s in states]
    for later in (swept_at + 120, swept_at + 2 * DAY, swept_at + 9 * DAY):
        want = _rescored(
            [(i, score(s, MODEL, later, explain=False)) for i, s in states], MODEL, None
        )
        async with session_factory(engine)() as session:
            counts = await band_counts_now(session, model=MODEL, now=later)
        assert counts == {b: sum(1 for r in want if r[2] == b) for b in ("hot", "warm", "cold")}
