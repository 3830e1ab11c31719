"""Alert buttons on a real database (both): claim races, judgements, snoozes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import ActionResult, apply_action, features_at
from bot.chat.messages import Action, Actor, DisqualifyReason
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from scoring import LeadState
from scoring.bands import Thresholds
from scoring.engine import feature
from storage.ingest import LEADS
from storage.tables import Feedback
from tests.bot.conftest import DAY, IDEAL, T0, events, identify, page, track

NOW = T0 + 600
PAT = Actor("slack", "U1", "Pat")
KIM = Actor("slack", "U2", "Kim")
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    async with Pipeline(engine, config) as pipeline:
        calls = [
            identify("u1", T0, **IDEAL),
            page("u1", "/pricing", T0 + 60),
            track("u1", "Demo Requested", T0 + 120),
        ]
        await pipeline.ingest(events(*calls), now=T0 + 300)
        yield pipeline


async def act(
    engine: AsyncEngine, config: LeadbotConfig, action: Action, **kw: Any
) -> ActionResult:
    kw.setdefault("lead_id", "u1")
    kw.setdefault("actor", PAT)
    kw.setdefault("now", NOW)
    return await apply_action(engine=engine, model=config.model, action=action, **kw)


async def _lead(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(LEADS).where(LEADS.c.id == "u1"))).mappings().one()
    return dict(row)


async def _labels(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(FEEDBACK).order_by(FEEDBACK.c.id))
        return [dict(row) for row in rows.mappings()]


EMPTY = {
    "claimed_by": None, "claimed_at": None, "outcome": None, "outcome_by": None,
    "reason": None, "snoozed_until": None,
}  # fmt: skip


@pytest.mark.usefixtures("pipeline")
async def test_the_first_claim_wins_and_the_second_is_told(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    won = await act(engine, config, Action.CLAIM)
    assert won == ActionResult({**EMPTY, "claimed_by": "slack:U1", "claimed_at": NOW}, True)
    lost = await act(engine, config, Action.CLAIM, actor=KIM, now=NOW + 5)
    assert not lost.changed
    assert lost.notice == "Dana Reyes (AcmeSoft) is already claimed by slack:U1"
    assert lost.state == won.state
    again = await act(engine, config, Action.CLAIM, now=NOW + 9)
    assert (again.changed, again.notice) == (
        False,
        "You have already claimed Dana Reyes (AcmeSoft).",
    )
    lead = await _lead(engine)
    assert (lead["claimed_by"], lead["claimed_at"].timestamp()) == ("slack:U1", NOW)


@pytest.mark.usefixtures("pipeline")
async def test_concurrent_claims_have_one_winner(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    reps = [Actor("slack", f"U{i}") for i in range(5)]
    results = await asyncio.gather(*(act(engine, config, Action.CLAIM, actor=r) for r in reps))
    winners = [r for r in results if r.changed]
    assert len(winners) == 1
    winner = winners[0].state["claimed_by"]
    assert (await _lead(engine))["claimed_by"] == winner
    for result in results:
        assert result.state["claimed_by"] == winner
        if not result.changed:
            assert result.notice == f"Dana Reyes (AcmeSoft) is already claimed by {winner}"


async def test_a_claim_survives_later_events(
    engine: AsyncEngine, config: LeadbotConfig, pipeline: Pipeline
) -> None:
    """The ingest upsert rewrites the lead row; it must leave what reps did alone."""
    await act(engine, config, Action.CLAIM)
    await act(engine, config, Action.SNOOZE, snooze_hours=48)
    await pipeline.ingest(events(page("u1", "/pricing", NOW + 60)), now=NOW + 60)
    lead = await _lead(engine)
    assert lead["claimed_by"] == "slack:U1"
    assert lead["snoozed_until"].timestamp() == NOW + 48 * 3600


async def test_qualified_stores_the_features_of_the_click(
    engine: AsyncEngine, config: LeadbotConfig, pipeline: Pipeline
) -> None:
    result = await act(engine, config, Action.QUALIFY)
    assert result == ActionResult({**EMPTY, "outcome": "qualified", "outcome_by": "slack:U1"}, True)
    [label] = await _labels(engine)
    state = LeadState.from_dict((await _lead(engine))["state"])
    assert (label["outcome"], label["by"], label["at"].timestamp()) == (
        "qualified",
        "slack:U1",
        NOW,
    )
    counted = label["features"]["lead"]["events"]  # the lead's stored events up to the click
    assert label["features"] == features_at(state, config.model, NOW, events=counted)
    assert counted["track:Demo Requested"][0] == 1
    assert label["features"]["rules"]["demo"] == feature(config.model.rule("demo"), state, NOW)
    await pipeline.ingest(events(track("u1", "Demo Requested", NOW + DAY)), now=NOW + DAY)
    [unchanged] = await _labels(engine)
    assert unchanged["features"] == label["features"]


@pytest.mark.usefixtures("pipeline")
async def test_a_judgement_keeps_the_band_of_the_edges_it_was_given(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    """Dana scores about 70: hot on the model's edges (50), warm on live edges at 80."""
    await act(engine, config, Action.QUALIFY)
    await act(engine, config, Action.DISQUALIFY, reason="bad timing",
              thresholds=Thresholds(warm=20, hot=80))  # fmt: skip
    fixed, live = await _labels(engine)
    assert (fixed["features"]["band"], live["features"]["band"]) == ("hot", "warm")
    assert 50 <= live["features"]["score"] < 80


@pytest.mark.usefixtures("pipeline")
async def test_a_repeated_judgement_is_one_label(
    engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await act(engine, config, Action.QUALIFY)
    repeat = await act(engine, config, Action.QUALIFY, actor=KIM, now=NOW + 60)
    assert not repeat.changed
    assert repeat.notice == "Dana Reyes (AcmeSoft) is already marked qualified by slack:U1"
    assert len(await _labels(engine)) == 1
    changed_mind = await act(
        engine, config, Action.DISQUALIFY, reason="no budget", actor=KIM, now=NOW + 120
    )
    assert changed_mind.changed
    assert changed_mind.state["outcome"] == "disqualified"
    assert len(await _labels(engine)) == 2


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize("reason", [*DisqualifyReason, "NO_BUDGET", "Bad-Fit"])
async def test_disqualify_keeps_a_canonical_reason(
    engine: AsyncEngine, config: LeadbotConfig, reason: str
) -> None:
    result = await act(engine, config, Action.DISQUALIFY, reason=str(reason))
    expected = DisqualifyReason(str(reason).lower().replace("_", " ").replace("-", " ")).value
    assert (result.state["outcome"], result.state["reason"]) == ("disqualified", expected)
    [label] = await _labels(engine)
    assert (label["outcome"], label["reason"]) == ("disqualified", expected)


@pytest.mark.usefixtures("pipeline")
async def test_a_note_with_the_reason_is_kept(engine: AsyncEngine, config: LeadbotConfig) -> None:
    result = await act(engine, config, Action.DISQUALIFY, reason="No budget — frozen until Q3")
    assert result.state["reason"] == "no budget: frozen until Q3"
    form = await act(engine, config, Action.DISQUALIFY, reason="no budget", note=" till Q3 ")
    assert form.state["reason"] == "no budget: till Q3"
    both = await act(engine, config, Action.DISQUALIFY, reason="spam, bot", note="again")
    assert both.state["reason"] == "spam: bot; again"
    liked = await act(engine, config, Action.QUALIFY, note="budget approved")
    assert (liked.state["outcome"], liked.state["reason"]) == ("qualified", "budget approved")
    with pytest.raises(ValueError, match="reason must be one of"):
        await act(engine, config, Action.DISQUALIFY, reason=None, note="no budget")
    assert len(await _labels(engine)) == 4


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize("reason", [None, "", "too expensive", "budget"])
async def test_disqualify_needs_a_known_reason(
    engine: AsyncEngine, config: LeadbotConfig, reason: str | None
) -> None:
    with pytest.raises(ValueError, match="reason must be one of bad fit, no budget, no need"):
        await act(engine, config, Action.DISQUALIFY, reason=reason)
    assert await _labels(engine) == []


@pytest.mark.usefixtures("pipeline")
async def test_snooze_hides_the_lead_until_then(engine: AsyncEngine, config: LeadbotConfig) -> None:
    day = await act(engine, config, Action.SNOOZE)
    assert day == ActionResult({**EMPTY, "snoozed_until": NOW + 24 * 3600}, True)
    short = await act(engine, config, Action.SNOOZE, snooze_hours=1.5, now=NOW + 10)
    assert short.state["snoozed_until"] == NOW + 10 + 5400
    for hours in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="snooze_hours must be more than 0"):
            await act(engine, config, Action.SNOOZE, snooze_hours=hours)
    assert (await _lead(engine))["snoozed_until"].timestamp() == NOW + 10 + 5400


@pytest.mark.usefixtures("pipeline")
@pytest.mark.parametrize("action", list(Action))
async def test_an_unknown_lead_is_a_clear_error(
    engine: AsyncEngine, config: LeadbotConfig, action: Action
) -> None:
    with pytest.raises(ValueError, match="no lead with id 'gone'"):
        await act(engine, config, action, lead_id="gone", reason="spam")
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(FEEDBACK))).scalar() == 0
