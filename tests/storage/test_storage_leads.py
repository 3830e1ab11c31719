"""The read-side repository on real databases: lookups, ranking, limits and counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.engine import session_factory
from storage.leads import (
    current_scores,
    find_lead,
    lead_feedback,
    lead_history,
    search_leads,
    stats,
    top_leads,
)
from storage.tables import Event, Feedback, Identity, Lead, ScoreChange

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def build_lead(lead_id: str, **fields: Any) -> Lead:
    values: dict[str, Any] = {
        "id": lead_id,
        "first_seen_at": T0,
        "last_event_at": T0,
        "scored_at": T0,
    }
    values.update(fields)
    return Lead(**values)


def ids(leads: list[Lead]) -> list[str]:
    return [lead.id for lead in leads]


async def found(session: AsyncSession, key: str) -> str | None:
    lead = await find_lead(session, key=key)
    return None if lead is None else lead.id


async def add(session: AsyncSession, *rows: object) -> None:
    session.add_all(rows)
    await session.commit()


# find_lead


async def test_find_lead_by_id_then_email_any_case(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("u-1", email="Ada@Example.com", name="Ada"),
        build_lead("ada@example.com", email="other@example.com"),
    )
    assert await found(session, "u-1") == "u-1"
    # An id match wins over an email match.
    assert await found(session, "ada@example.com") == "ada@example.com"
    assert await found(session, "  ADA@EXAMPLE.COM ") == "u-1"
    assert await found(session, "nobody@example.com") is None
    assert await found(session, "   ") is None


async def test_find_lead_through_identities(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("lead-a"),
        build_lead("lead-b"),
        build_lead("lead-c", anonymous=True),
        Identity(key="user:crm-42", lead_id="lead-a"),
        Identity(key="email:grace@example.com", lead_id="lead-b"),
        Identity(key="anon:cookie-9", lead_id="lead-c"),
    )
    assert await found(session, "crm-42") == "lead-a"
    assert await found(session, "Grace@Example.COM") == "lead-b"
    assert await found(session, "cookie-9") == "lead-c"
    assert await found(session, "user:crm-42") == "lead-a"
    assert await found(session, "CRM-42") is None  # user ids are case-sensitive


async def test_find_lead_prefers_user_identity_over_anonymous(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("known"),
        build_lead("visitor", anonymous=True),
        Identity(key="anon:x1", lead_id="visitor"),
        Identity(key="user:x1", lead_id="known"),
    )
    assert await found(session, "x1") == "known"


# search_leads


async def test_search_ranks_exact_then_prefix_then_substring(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("sub", company="MegaAcme Ltd", score=90.0),
        build_lead("prefix", company="Acme Corp", score=10.0),
        build_lead("exact", name="ACME", score=5.0),
        build_lead("email", email="buyer@acme.io", score=50.0),
        build_lead("none", name="Globex", email="a@globex.com", company="Globex", score=99.0),
    )
    found = await search_leads(session, text="acme", limit=10)
    assert ids(found) == ["exact", "prefix", "sub", "email"]


async def test_search_orders_ties_by_score_and_respects_limit(session: AsyncSession) -> None:
    await add(
        session,
        *(build_lead(f"l{i}", name=f"Initech {i}", score=float(i)) for i in range(8)),
    )
    assert ids(await search_leads(session, text="INITECH")) == ["l7", "l6", "l5", "l4", "l3"]
    assert ids(await search_leads(session, text="initech", limit=2)) == ["l7", "l6"]


async def test_search_treats_wildcards_literally(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("pct", company="100% Pure"),
        build_lead("under", company="snake_case"),
        build_lead("plain", company="100 Pure snakeXcase"),
    )
    assert ids(await search_leads(session, text="100%")) == ["pct"]
    assert ids(await search_leads(session, text="e_c")) == ["under"]
    assert await search_leads(session, text="  ") == []


async def test_limits_below_one_are_refused(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1, got 0"):
        await search_leads(session, text="x", limit=0)
    with pytest.raises(ValueError, match="got -1"):
        await top_leads(session, limit=-1)


# history and feedback


async def test_lead_history_newest_first_with_limit(session: AsyncSession) -> None:
    changes = [
        ScoreChange(
            lead_id="lead-1",
            at=T0 + timedelta(hours=i),
            score=10.0 * i,
            band="warm",
            cause=f"event {i}",
        )
        for i in (2, 0, 3, 1)
    ]
    other = ScoreChange(lead_id="lead-2", at=T0, score=1.0, band="cold", cause="other")
    await add(session, *changes, other)
    history = await lead_history(session, lead_id="lead-1")
    assert [c.cause for c in history] == ["event 3", "event 2", "event 1", "event 0"]
    assert history[0].at == T0 + timedelta(hours=3)
    assert [c.score for c in await lead_history(session, lead_id="lead-1", limit=2)] == [
        30.0,
        20.0,
    ]
    assert await lead_history(session, lead_id="missing") == []


async def test_lead_feedback_oldest_first(session: AsyncSession) -> None:
    rows = [
        Feedback(lead_id="lead-1", outcome=outcome, by="U1", at=T0 + timedelta(days=day))
        for outcome, day in (("won", 9), ("qualified", 1), ("disqualified", 4))
    ]
    await add(session, *rows, Feedback(lead_id="lead-2", outcome="lost", by="U2", at=T0))
    feedback = await lead_feedback(session, lead_id="lead-1")
    assert [f.outcome for f in feedback] == ["qualified", "disqualified", "won"]


# top_leads, stats, current_scores


async def _population(session: AsyncSession) -> None:
    await add(
        session,
        build_lead("hot-1", band="hot", score=91.0),
        build_lead("hot-2", band="hot", score=75.5),
        build_lead("warm-1", band="warm", score=55.0),
        build_lead("cold-1", band="cold", score=3.0),
        build_lead("anon-hot", band="hot", score=99.0, anonymous=True),
        build_lead("anon-cold", band="cold", score=-5.0, anonymous=True),
        *(
            Event(
                message_id=f"m{i}",
                lead_id="hot-1",
                type="track",
                timestamp=T0,
                received_at=T0,
            )
            for i in range(3)
        ),
    )


async def test_top_leads_highest_first_without_anonymous(session: AsyncSession) -> None:
    await _population(session)
    assert ids(await top_leads(session)) == ["hot-1", "hot-2", "warm-1", "cold-1"]
    assert ids(await top_leads(session, limit=2)) == ["hot-1", "hot-2"]
    assert ids(await top_leads(session, band="hot")) == ["hot-1", "hot-2"]
    assert ids(await top_leads(session, band="hot", include_anonymous=True)) == [
        "anon-hot",
        "hot-1",
        "hot-2",
    ]
    assert ids(await top_leads(session, band="cold", include_anonymous=True, limit=1)) == ["cold-1"]


async def test_top_leads_refuses_an_unknown_band(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="band must be one of cold, warm, hot, got 'boiling'"):
        await top_leads(session, band="boiling")


async def test_stats_counts_leads_anonymous_events_and_bands(session: AsyncSession) -> None:
    await _population(session)
    assert await stats(session) == {
        "leads": 4,
        "anonymous": 2,
        "events": 3,
        "bands": {"hot": 2, "warm": 1, "cold": 1},
    }


async def test_stats_on_an_empty_database_has_every_band(session: AsyncSession) -> None:
    assert await stats(session) == {
        "leads": 0,
        "anonymous": 0,
        "events": 0,
        "bands": {"hot": 0, "warm": 0, "cold": 0},
    }


async def test_current_scores_are_the_non_anonymous_ones(session: AsyncSession) -> None:
    await _population(session)
    assert await current_scores(session) == [3.0, 55.0, 75.5, 91.0]


async def _plan(engine: AsyncEngine, marker: str, action: Any) -> str:
    """SQLite's query plan for the statement ``action`` sends that contains ``marker``."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    async with session_factory(engine)() as session:
        await action(session)
    event.remove(engine.sync_engine, "before_cursor_execute", record)
    [(statement, params)] = [s for s in sent if marker in s[0]]
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
        return " ".join(str(row[-1]) for row in rows)


async def test_band_filter_reads_the_ranked_index_from_the_top(sqlite_engine: AsyncEngine) -> None:
    """The statement top_leads sends for one band walks ix_leads_ranked in score order and
    sorts only ties (so LIMIT stops it early), never the whole table (SQLite's planner,
    asked directly; PostgreSQL's choice depends on table statistics)."""
    plan = await _plan(sqlite_engine, "FROM leads", lambda s: top_leads(s, band="hot"))
    assert "USING INDEX ix_leads_ranked" in plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan  # only "… FOR RIGHT PART OF ORDER BY"


async def test_email_look_up_uses_the_lower_case_index(sqlite_engine: AsyncEngine) -> None:
    """find_lead compares lower(email): ix_leads_email_lower serves it, no table scan."""
    plan = await _plan(
        sqlite_engine, "lower(leads.email)", lambda s: find_lead(s, key="Ada@Example.com")
    )
    assert "ix_leads_email_lower" in plan
