"""Column types and constraints behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.engine import session_factory
from storage.tables import Event, Feedback

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _event(message_id: str, **overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "message_id": message_id,
        "lead_id": "lead-1",
        "type": "track",
        "name": "Demo Requested",
        "timestamp": T0,
        "received_at": T0,
    }
    fields.update(overrides)
    return Event(**fields)


async def _reload_event(engine: AsyncEngine, message_id: str) -> Event:
    # A new session, so the value comes from the database and not the identity map.
    async with session_factory(engine)() as fresh:
        return (await fresh.exec(select(Event).where(Event.message_id == message_id))).one()


async def test_aware_datetimes_come_back_as_the_same_utc_instant(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    paris = timezone(timedelta(hours=2))
    session.add(_event("m1", timestamp=T0.astimezone(paris)))
    await session.commit()
    stored = await _reload_event(engine, "m1")
    assert stored.timestamp == T0
    assert stored.timestamp.tzinfo is UTC
    assert stored.timestamp.hour == 12
    assert stored.received_at == T0


async def test_naive_datetime_is_refused(session: AsyncSession) -> None:
    session.add(_event("m1", timestamp=datetime(2026, 3, 1, 12, 30)))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.commit()


async def test_json_columns_round_trip_nested_values(
    engine: AsyncEngine, session: AsyncSession
) -> None:
    payload = {
        "properties": {"plan": "pro", "seats": 12, "ratio": 0.25, "tags": ["a", "b"]},
        "context": {"page": {"url": "https://example.test/pricing"}, "ok": True, "none": None},
        "unicode": "Ünïcødé ✓",
    }
    session.add(_event("m1", payload=payload))
    session.add(
        Feedback(lead_id="lead-1", outcome="qualified", by="U1", at=T0, features={"fit": payload})
    )
    await session.commit()
    assert (await _reload_event(engine, "m1")).payload == payload
    async with session_factory(engine)() as fresh:
        feedback = (await fresh.exec(select(Feedback))).one()
    assert feedback.features == {"fit": payload}


async def test_duplicate_message_id_is_rejected(engine: AsyncEngine, session: AsyncSession) -> None:
    session.add(_event("m1"))
    await session.commit()
    session.add(_event("m1", lead_id="lead-2"))
    with pytest.raises(IntegrityError, match=r"(?i)unique"):
        await session.commit()
    await session.rollback()
    assert (await _reload_event(engine, "m1")).lead_id == "lead-1"
