"""storage/digests.py on both databases: scope, first entries into hot, movers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import digests
from storage.tables import Feedback, Lead, OutboxMessage, ScoreChange

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = T0 + timedelta(days=7)
H = timedelta(hours=1)
LEADS = Lead.__table__  # type: ignore[attr-defined]
HISTORY = ScoreChange.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def _rows(conn: Connection) -> None:
    """a: hot twice in the week (claimed by U1); b: routed to U2, hot once, cooled; c: a
    rescore only; d: nobody's."""
    for lead_id, claimed in (("a", "slack:U1"), ("b", None), ("c", None), ("d", None)):
        conn.execute(insert(LEADS).values(
            id=lead_id, state={}, score=50.0, band="warm", first_seen_at=T0 - 10 * H,
            last_event_at=T0, scored_at=T0, claimed_by=claimed,
            claimed_at=T0 + 30 * H if claimed else None,
        ))  # fmt: skip
    history = [
        ("a", T0 + H, 75.0, "hot", 40.0, "warm", "track"),
        ("a", T0 + 2 * H, 50.0, "warm", 75.0, "hot", "decay"),
        ("a", T0 + 3 * H, 80.0, "hot", 50.0, "warm", "track"),
        ("b", T0 + 4 * H, 72.0, "hot", None, None, "identify"),
        ("b", T0 + 9 * H, 30.0, "cold", 72.0, "hot", "decay"),
        ("c", T0 + 5 * H, 90.0, "hot", 20.0, "cold", "model v2"),
        ("d", T0 - H, 70.0, "hot", 60.0, "warm", "track"),  # before the period
    ]
    for lead_id, at, score, band, prev, prev_band, cause in history:
        conn.execute(insert(HISTORY).values(
            lead_id=lead_id, at=at, score=score, band=band, previous_score=prev,
            previous_band=prev_band, cause=cause,
        ))  # fmt: skip
    conn.execute(insert(OUTBOX).values(
        kind="alert", lead_id="b", destination="slack:@U2", dedupe_key="k1", payload={},
        status="sent", attempts=1, available_at=T0, created_at=T0,
    ))  # fmt: skip
    for lead_id, outcome, at in (("a", "won", T0 + 40 * H), ("b", "lost", END), ("d", "x", T0)):
        conn.execute(insert(FEEDBACK).values(
            lead_id=lead_id, outcome=outcome, by="slack:U1", at=at, features={"band": "hot"}
        ))  # fmt: skip


async def _read(engine: AsyncEngine, fn: object, **kw: object) -> object:
    async with engine.begin() as conn:
        await conn.run_sync(_rows)
        return await conn.run_sync(lambda c: fn(c, **kw))  # type: ignore[operator]


async def test_hot_entries_first_per_lead_in_the_period(engine: AsyncEngine) -> None:
    entries = await _read(engine, digests.hot_entries, start=T0, end=END)
    assert [(e.lead.id, e.at, e.score) for e in entries] == [  # type: ignore[attr-defined]
        ("a", T0 + H, 75.0),
        ("b", T0 + 4 * H, 72.0),
        ("c", T0 + 5 * H, 90.0),
    ]


async def test_members_scope_claimed_or_routed_leads(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_rows)

        def run(c: Connection, members: list[str]) -> list[str]:
            return [e.lead.id for e in digests.hot_entries(c, start=T0, end=END, members=members)]

        assert await conn.run_sync(run, ["U1"]) == ["a"]
        assert await conn.run_sync(run, ["U2"]) == ["b"]
        assert await conn.run_sync(run, ["U1", "U2"]) == ["a", "b"]
        assert await conn.run_sync(run, []) == []
        funnel = await conn.run_sync(lambda c: digests.funnel(c, start=T0, end=END, members=["U1"]))
    assert funnel == {"new": 0, "hot": 1, "claimed": 1, "qualified": 1, "won": 1}


async def test_movers_net_change_without_rescores(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_rows)
        up = await conn.run_sync(lambda c: digests.movers(c, start=T0, end=END))
        down = await conn.run_sync(lambda c: digests.movers(c, start=T0, end=END, rising=False))
        since = await conn.run_sync(
            lambda c: digests.count_labels_since(c, since=T0 + H, outcomes=["won", "lost"])
        )
    # a: 40 → 80; b: new (from 0) → 72 → 30 is still +30; c moved by a rescore only
    assert [(m.lead.id, m.change) for m in up] == [("a", 40.0), ("b", 30.0)]
    assert down == []
    assert since == 2
