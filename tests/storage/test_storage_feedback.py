"""Feedback rows, handled requests and claims on a real database (both)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.ingest.pipeline import Pipeline
from config.loader import load_config
from storage.claims import (
    claim_lead,
    claimed_leads,
    open_leads,
    snooze_lead,
)
from storage.engine import create_engine, session_factory
from storage.feedback import count_labels, latest_feedback, record_feedback
from storage.migrate import alembic_config, upgrade
from storage.requests import first_time, forget_handled
from storage.tables import Lead
from tests.bot.conftest import IDEAL, SMALL_MODEL, T0, events, identify, page

AT = datetime.fromtimestamp(T0, UTC)


@pytest.fixture
async def leads(engine: AsyncEngine) -> None:
    """u1 (hot-ish, Dana Reyes), u2 (cooler), through the real ingest pipeline."""
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(
            events(
                identify("u1", T0, **IDEAL),
                page("u1", "/pricing", T0),
                identify("u2", T0, email="sam@example.com", name="Sam Lee"),
            ),
            now=T0,
        )


async def test_feedback_is_stored_counted_and_the_latest_stands(session: AsyncSession) -> None:
    assert await count_labels(session) == 0
    assert await latest_feedback(session, lead_id="u1") is None
    features = {"model": "m", "at": T0, "rules": {"demo": 1.0, "pricing": 0.0}}
    first = await record_feedback(
        session, lead_id="u1", outcome="qualified", reason=None, by="slack:U1", at=AT,
        features=features,
    )  # fmt: skip
    assert first.id is not None
    await record_feedback(
        session, lead_id="u1", outcome="won", reason="signed", by="slack:U2",
        at=AT + timedelta(days=3), features=features,
    )  # fmt: skip
    await record_feedback(
        session, lead_id="u2", outcome="lost", reason=None, by="slack:U1", at=AT, features={}
    )
    await session.commit()
    assert await count_labels(session) == 3
    latest = await latest_feedback(session, lead_id="u1")
    assert latest is not None
    assert (latest.outcome, latest.reason, latest.by) == ("won", "signed", "slack:U2")
    assert latest.at == AT + timedelta(days=3)
    assert latest.features == features


async def test_an_outcome_too_long_for_its_column_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match=r"outcome must be 1 to 16 characters, got 'x{17}'"):
        await record_feedback(
            session, lead_id="u1", outcome="x" * 17, reason=None, by="b", at=AT, features={}
        )


async def test_first_time_then_never_again(session: AsyncSession) -> None:
    key = "slack:cmd:" + "a" * 64
    assert await first_time(session, key=key, at=AT) is True
    await session.commit()
    assert await first_time(session, key=key, at=AT + timedelta(seconds=5)) is False
    assert await first_time(session, key="slack:cmd:other", at=AT) is True
    await session.commit()
    assert await first_time(session, key=key, at=AT) is False


async def test_a_key_not_committed_is_not_handled(session: AsyncSession) -> None:
    """The key commits with the work it guards: a failed attempt leaves the retry to act."""
    assert await first_time(session, key="slack:act:1", at=AT) is True
    await session.rollback()
    assert await first_time(session, key="slack:act:1", at=AT) is True


async def test_a_bad_request_key_is_refused(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="request key must be 1 to 255 characters"):
        await first_time(session, key="k" * 256, at=AT)
    with pytest.raises(ValueError, match="got ''"):
        await first_time(session, key="", at=AT)


async def _try_once(engine: AsyncEngine, key: str) -> bool:
    async with session_factory(engine)() as session:
        new = await first_time(session, key=key, at=AT)
        await asyncio.sleep(0.05)  # hold the transaction open while the other tries
        await session.commit()
        return new


async def test_concurrent_retries_act_once(engine: AsyncEngine) -> None:
    results = await asyncio.gather(*(_try_once(engine, "slack:cmd:same") for _ in range(4)))
    assert sorted(results) == [False, False, False, True]


async def test_old_keys_are_forgotten(session: AsyncSession) -> None:
    await first_time(session, key="old", at=AT - timedelta(days=2))
    await first_time(session, key="new", at=AT)
    assert await forget_handled(session, before=AT - timedelta(days=1)) == 1
    await session.commit()
    assert await first_time(session, key="old", at=AT) is True
    assert await first_time(session, key="new", at=AT) is False


@pytest.mark.usefixtures("leads")
async def test_the_first_claim_wins(session: AsyncSession) -> None:
    assert await claim_lead(session, lead_id="u1", by="slack:U1", at=AT) is True
    assert await claim_lead(session, lead_id="u1", by="slack:U2", at=AT) is False
    assert await claim_lead(session, lead_id="nobody", by="slack:U2", at=AT) is False
    await session.commit()
    lead = await session.get(Lead, "u1", populate_existing=True)
    assert lead is not None
    assert (lead.claimed_by, lead.claimed_at) == ("slack:U1", AT)


@pytest.mark.usefixtures("leads")
async def test_open_and_claimed_leads(session: AsyncSession) -> None:
    assert [lead.id for lead in await open_leads(session, now=AT)] == ["u1", "u2"]
    await claim_lead(session, lead_id="u1", by="slack:U1", at=AT)
    assert await snooze_lead(session, lead_id="u2", until=AT + timedelta(hours=1)) is True
    assert await snooze_lead(session, lead_id="nobody", until=AT) is False
    await session.commit()
    assert await open_leads(session, now=AT) == []
    later = AT + timedelta(hours=1)
    assert [lead.id for lead in await open_leads(session, now=later)] == ["u2"]
    assert [lead.id for lead in await claimed_leads(session, by="slack:U1")] == ["u1"]
    assert await claimed_leads(session, by="slack:U2") == []
    await record_feedback(
        session, lead_id="u1", outcome="won", reason=None, by="slack:U1", at=AT, features={}
    )
    await session.commit()
    assert await claimed_leads(session, by="slack:U1") == []
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        await open_leads(session, now=AT, limit=0)


def _indexes(connection: Connection) -> set[str]:
    if connection.dialect.name == "sqlite":  # reflection skips expression indexes there
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'leads'"
    return {row[0] for row in connection.exec_driver_sql(sql)}


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def test_0002_keeps_leads_and_their_indexes_both_ways(db_url: str) -> None:
    """Stored leads survive the upgrade (unclaimed) and the downgrade; neither direction
    rebuilds the table, which would lose the lower(email) index on SQLite."""
    engine = create_engine(db_url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO leads (id, anonymous, state, score, fit, intent, band, grade,"
                    " engagement, probability, first_seen_at, last_event_at, scored_at)"
                    " VALUES ('u1', false, '{}', 1, 1, 0, 'cold', 'D', 1, 0.1,"
                    " :t, :t, :t)"
                ),
                {"t": AT},
            )
        await upgrade(engine)
        async with session_factory(engine)() as session:
            lead = await session.get(Lead, "u1")
            assert lead is not None
            assert (lead.claimed_by, lead.claimed_at, lead.snoozed_until) == (None, None, None)
        async with engine.connect() as conn:
            assert "ix_leads_email_lower" in await conn.run_sync(_indexes)
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0001")
        async with engine.connect() as conn:
            assert "ix_leads_email_lower" in await conn.run_sync(_indexes)
            ids = (await conn.execute(text("SELECT id FROM leads"))).scalars().all()
            assert list(ids) == ["u1"]
    finally:
        await engine.dispose()
