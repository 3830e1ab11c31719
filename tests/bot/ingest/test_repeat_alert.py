"""A lead alerted again after the cooldown says so in every renderer: when it was last
alerted and who claimed it (read from the lead row the pipeline loads anyway)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.ingest.pipeline import Pipeline
from bot.outbox.messages import AlertMessage, PreviousAlert, decode
from bot.outbox.text import plain_text
from bot.slack.alert_blocks import alert_message
from bot.teams.alert_card import alert_card
from config.loader import LeadbotConfig
from storage.claims import claim_lead
from storage.ingest import OUTBOX
from tests.bot.conftest import DAY, IDEAL, T0, events, identify, track


@pytest.fixture
async def pipeline(engine: AsyncEngine, config: LeadbotConfig) -> AsyncIterator[Pipeline]:
    async with Pipeline(engine, config) as pipeline:
        yield pipeline


async def _alerts(engine: AsyncEngine) -> list[AlertMessage]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))).mappings().all()
    out = []
    for row in rows:
        payload = row["payload"]
        message = decode(row["kind"], payload if isinstance(payload, dict) else json.loads(payload))
        assert isinstance(message, AlertMessage)
        out.append(message)
    return out


def _rendered(alert: AlertMessage) -> tuple[str, str, str]:
    blocks, _ = alert_message(alert)
    dump = json.dumps
    return (
        dump(blocks, ensure_ascii=False),
        dump(alert_card(alert), ensure_ascii=False),
        plain_text(alert),
    )


async def _hot_twice(engine: AsyncEngine, pipeline: Pipeline, claimer: str | None) -> None:
    """Alerted at T0; claimed (or not); warm ten days later; hot again a minute after."""
    await pipeline.ingest(
        events(identify("u1", T0, **IDEAL), track("u1", "Demo Requested", T0)), now=T0
    )
    if claimer is not None:
        async with AsyncSession(engine) as session:
            at = datetime.fromtimestamp(T0 + 3600, UTC)
            assert await claim_lead(session, lead_id="u1", by=claimer, at=at)
            await session.commit()
    await pipeline.ingest(events(identify("u1", T0 + 10 * DAY, plan="x")), now=T0 + 10 * DAY)
    await pipeline.ingest(
        events(track("u1", "Demo Requested", T0 + 10 * DAY + 60)), now=T0 + 10 * DAY + 60
    )


async def test_a_repeat_alert_names_its_age_and_claimer_and_a_first_one_does_not(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await _hot_twice(engine, pipeline, claimer="slack:U0RILEY")
    first, second = await _alerts(engine)
    assert first.previous is None
    for text in _rendered(first):
        assert "hot again" not in text
    assert second.previous is not None
    assert second.previous.claimed_by == "slack:U0RILEY"
    slack, teams, console = _rendered(second)
    assert "hot again — last alerted 10 days ago, claimed by <@U0RILEY>" in slack
    assert "hot again — last alerted 10 days ago, claimed by a Slack user" in teams
    assert "hot again — last alerted 10 days ago, claimed by slack:U0RILEY" in console


async def test_a_repeat_alert_of_an_unclaimed_lead_says_not_claimed(
    engine: AsyncEngine, pipeline: Pipeline
) -> None:
    await _hot_twice(engine, pipeline, claimer=None)
    _, second = await _alerts(engine)
    for text in _rendered(second):
        assert "hot again — last alerted 10 days ago, not claimed" in text


def test_an_alert_row_from_before_repeats_still_decodes_and_round_trips() -> None:
    previous = PreviousAlert("2026-03-09T10:00:00Z", "teams:29:abc", "2026-03-09T11:00:00Z")
    assert PreviousAlert.from_json(previous.to_json()) == previous
    assert previous.age("2026-03-09T15:30:00Z") == "5 hours"
    assert previous.age("2026-03-09T10:01:00Z") == "1 minute"
