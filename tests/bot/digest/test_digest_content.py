"""Digest content on a seeded database: every figure, and the band that converts worse than
the one below it.

The seed (``seed``) is shared with the other digest tests. The week runs from T0 (Monday
2026-03-02 09:00 UTC) to NOW, seven days later. Teams: east = U0EAST1 + U0BOTH2, west =
U0WEST3.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.content import (
    MIN_LABELS,
    Conversion,
    Digest,
    Period,
    Scope,
    build_digest,
    grade_of,
    inversions,
)
from config.loader import LeadbotConfig
from storage import models
from storage.tables import AlertPost, Feedback, Lead, OutboxMessage, ScoreChange
from tests.bot.conftest import DAY, T0

HOUR = 3600.0
NOW = T0 + 7 * DAY
WEEK = Period.last("week", NOW)
EAST = ("U0EAST1", "U0BOTH2")
WEST = ("U0WEST3",)

LEADS = Lead.__table__  # type: ignore[attr-defined]
HISTORY = ScoreChange.__table__  # type: ignore[attr-defined]
FEEDBACK = Feedback.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
POSTS = AlertPost.__table__  # type: ignore[attr-defined]


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Seed:
    """Rows written straight into the tables, so every figure is known in advance."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.outbox = 0

    def lead(self, lead_id: str, score: float, band: str, **kw: Any) -> None:
        first = kw.pop("first_seen", T0 - 30 * DAY)
        row = {
            "id": lead_id, "name": kw.pop("name", lead_id.upper()), "email": None,
            "company": kw.pop("company", None), "anonymous": False, "state": {},
            "score": score, "band": band, "first_seen_at": at(first),
            "last_event_at": at(first), "scored_at": at(first),
        }  # fmt: skip
        for key in ("claimed_at", "alerted_at", "snoozed_until"):
            if key in kw:
                kw[key] = at(kw[key])
        self.conn.execute(insert(LEADS).values(**row, **kw))

    def change(self, lead_id: str, ts: float, score: float, band: str, **kw: Any) -> None:
        row = {"lead_id": lead_id, "at": at(ts), "score": score, "band": band}
        self.conn.execute(insert(HISTORY).values(**row, cause=kw.pop("cause", "track"), **kw))

    def turned_hot(self, lead_id: str, ts: float, score: float = 75.0) -> None:
        self.change(lead_id, ts, score, "hot", previous_score=45.0, previous_band="warm")

    def label(self, lead_id: str, outcome: str, ts: float, band: str, fit: float) -> None:
        features = {"model": "test-model", "band": band, "fit": fit, "score": fit, "rules": {}}
        self.conn.execute(
            insert(FEEDBACK).values(
                lead_id=lead_id, outcome=outcome, by="slack:U0EAST1", at=at(ts), features=features
            )
        )

    def route(self, lead_id: str, user: str, ts: float = T0) -> None:
        self.outbox += 1
        self.conn.execute(
            insert(OUTBOX).values(
                kind="alert", lead_id=lead_id, destination=f"slack:@{user}",
                dedupe_key=f"alert:{self.outbox}", payload={}, status="sent", attempts=1,
                available_at=at(ts), created_at=at(ts),
            )
        )  # fmt: skip

    def post(self, lead_id: str, ts: float) -> None:
        self.conn.execute(
            insert(POSTS).values(
                lead_id=lead_id, platform="slack", channel="C0ALERTS", ts=str(ts),
                posted_at=at(ts),
            )
        )  # fmt: skip


def _labels(s: Seed, band: str, fit: float, outcomes: Sequence[str], prefix: str) -> None:
    """One labelled lead per outcome, routed to west, labelled on day 3."""
    for i, outcome in enumerate(outcomes):
        lead_id = f"{prefix}{i}"
        s.lead(lead_id, 30.0, "warm")
        s.route(lead_id, WEST[0])
        s.label(lead_id, outcome, T0 + 3 * DAY + i * HOUR, band, fit)


def _new_hot(s: Seed) -> None:
    """h1 (Dana, east, claimed by Eve 30 min after its alert), h2 (claimed by Bea 2 h after
    it turned hot, no alert post), h3 (hot 26 h ago, alerted, waiting: past the SLA), h4
    (hot 3 h ago, waiting within the SLA), h5 (hot but snoozed), h6 (hot before the week,
    waiting since its alert two days ago)."""
    s.lead(
        "h1",
        88.0,
        "hot",
        name="Dana Reyes",
        company="AcmeSoft",
        claimed_by="slack:U0EAST1",
        claimed_at=T0 + DAY + 1800,
        alerted_at=T0 + DAY,
    )
    s.turned_hot("h1", T0 + DAY, 82.0)
    s.post("h1", T0 + DAY)
    s.route("h1", "U0EAST1")
    s.lead(
        "h2",
        72.0,
        "hot",
        name="Dan <@here> Brown",
        claimed_by="slack:U0BOTH2",
        claimed_at=T0 + 2 * DAY + 2 * HOUR,
    )
    s.turned_hot("h2", T0 + 2 * DAY, 71.0)
    s.lead("h3", 79.0, "hot", name="Wes Waiting", alerted_at=NOW - 26 * HOUR)
    s.turned_hot("h3", NOW - 26 * HOUR, 79.0)
    s.route("h3", "U0EAST1")
    s.lead("h4", 70.0, "hot", name="Fresh Hot", alerted_at=NOW - 3 * HOUR)
    s.turned_hot("h4", NOW - 3 * HOUR, 70.0)
    s.lead("h5", 90.0, "hot", name="Snoozy", snoozed_until=NOW + DAY)
    s.turned_hot("h5", T0 + 4 * DAY, 90.0)
    s.lead("h6", 77.0, "hot", name="Old Hot", alerted_at=T0 - 3 * DAY)
    s.change("h6", T0 - 3 * DAY, 77.0, "hot", previous_score=40.0, previous_band="warm")
    s.post("h6", NOW - 2 * DAY)
    s.route("h6", "U0WEST3")  # fmt: skip


def _movers(s: Seed) -> None:
    """c1 cools 85 → 40 (two rows), h1 rose 45 → 82 (its hot entry) and 82 → 88, m1 is
    rescored by a model version only (not a mover), n1 is new in the week at 25."""
    s.lead("c1", 40.0, "warm", name="Cooling Co")
    s.change("c1", T0 + DAY, 60.0, "warm", previous_score=85.0, previous_band="hot")
    s.change("c1", T0 + 5 * DAY, 40.0, "warm", previous_score=60.0, previous_band="warm")
    s.change("h1", T0 + 3 * DAY, 88.0, "hot", previous_score=82.0, previous_band="hot")
    s.lead("m1", 90.0, "hot", name="Rescored", first_seen=T0 - 60 * DAY)
    s.change("m1", T0 + 2 * DAY, 90.0, "hot", previous_score=30.0, previous_band="cold",
             cause="model v2")  # fmt: skip
    s.lead("n1", 25.0, "warm", name="Newbie", first_seen=T0 + 5 * DAY)
    s.change("n1", T0 + 5 * DAY, 25.0, "warm", cause="identify")
    s.route("n1", "U0EAST1")


def _versions(s: Seed) -> None:
    """v1 (retired), v2 active since day 2 with AUC 0.81, v3 proposed."""
    add = models.add_version
    add(s.conn, yaml="a: 1\n", status=models.Status.ACTIVE, created_by="config",
        created_at=at(T0 - 10 * DAY))  # fmt: skip
    v2 = add(s.conn, yaml="a: 2\n", status=models.Status.PROPOSED, created_by="retrain",
             created_at=at(T0 + 2 * DAY), metrics={"after": {"roc_auc": 0.81}})  # fmt: skip
    models.set_active(s.conn, version_id=v2, by="slack:U0MGR", at=at(T0 + 2 * DAY))
    add(s.conn, yaml="a: 3\n", status=models.Status.PROPOSED, created_by="retrain",
        created_at=at(NOW - DAY))  # fmt: skip


def seed_rows(conn: Connection) -> None:
    s = Seed(conn)
    _new_hot(s)
    _movers(s)
    _versions(s)
    # hot converts worse than warm: 1/6 = 17 % vs 2/5 = 40 %; cold 0/5. Grades by fit
    # points (A ≥ 40, B ≥ 25, C ≥ 10): A 3/11, B 0/5 — in order.
    _labels(s, "hot", 45.0, ["won", "lost", "lost", "disqualified", "lost", "disqualified"], "lh")
    _labels(s, "warm", 42.0, ["qualified", "won", "lost", "lost", "lost"], "lw")
    _labels(s, "cold", 30.0, ["lost"] * 5, "lc")
    s.label("lw0", "lost", T0 - DAY, "hot", 45.0)  # before the week: not counted
    s.label("lh0", "qualified", T0 + 2 * DAY, "hot", 45.0)  # lh0 later won: counted once
    s.label("h1", "spam?", T0 + 2 * DAY, "hot", 45.0)  # not a label outcome


async def seed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(seed_rows)


async def digest_of(
    engine: AsyncEngine, config: LeadbotConfig, scope: Scope | None = None, **kw: Any
) -> Digest:
    return await build_digest(
        engine, config=config, period=kw.pop("period", WEEK), scope=scope or Scope.everyone(),
        now=kw.pop("now", NOW), **kw,
    )  # fmt: skip


# --- the whole digest --------------------------------------------------------------------


async def test_new_hot_leads_and_who_took_them(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    taken = [(e.lead.id, e.claimed_by) for e in digest.new_hot]
    assert taken == [
        ("h1", "slack:U0EAST1"),
        ("h2", "slack:U0BOTH2"),
        ("m1", None),
        ("h5", None),
        ("h3", None),
        ("h4", None),
    ]  # oldest first; h6 turned hot before the week; m1 by a rescore, hot all the same
    # calendar days (UTC), Mon 02 (from 09:00) … Mon 09 (to 09:00): h3 (Sun 07:00) counts
    # on Sunday and h4 (Mon 06:00) on Monday, not in the windows that began the day before
    assert [c for _, c in digest.hot_counts] == [0, 1, 2, 0, 1, 0, 1, 1]
    assert digest.bucket == timedelta(days=1)
    assert digest.hot_counts[0][0] == datetime(2026, 3, 2, tzinfo=UTC)


async def test_waiting_past_the_sla_longest_wait_first(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    """h4 is within the 24 h SLA, h5 is snoozed, h1/h2 are claimed; m1 turned hot five days
    ago (a rescore, never alerted), h6 was re-alerted two days ago, h3 26 hours ago."""
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    assert [(w.lead.id, w.since) for w in digest.waiting] == [
        ("m1", at(T0 + 2 * DAY)),
        ("h6", at(NOW - 2 * DAY)),
        ("h3", at(NOW - 26 * HOUR)),
    ]
    strict = await digest_of(sqlite_engine, config, sla_hours=2)
    assert [w.lead.id for w in strict.waiting] == ["m1", "h6", "h3", "h4"]
    with pytest.raises(ValueError, match="sla_hours must be more than 0, got 0"):
        await digest_of(sqlite_engine, config, sla_hours=0)


async def test_funnel_labels_and_the_inverted_band(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    # new: n1 only; hot: six entries; claimed: h1, h2; qualified: lh0 (won), lw0, lw1; won 2
    assert dict(digest.funnel) == {"new": 1, "hot": 6, "claimed": 2, "qualified": 3, "won": 2}
    assert [(c.group, c.labels, c.converted) for c in digest.by_band] == [
        ("hot", 6, 1),
        ("warm", 5, 2),
        ("cold", 5, 0),
    ]
    assert [(c.group, c.labels, c.converted) for c in digest.by_grade] == [
        ("A", 11, 3),
        ("B", 5, 0),
        ("C", 0, 0),
        ("D", 0, 0),
    ]
    assert digest.warnings == (
        "⚠ hot leads converted less than warm ones (17 % vs 40 %): the model needs attention",
    )


def _rows(*rows: tuple[str, int, int]) -> list[Conversion]:
    return [Conversion(*row) for row in rows]


def test_an_inversion_needs_enough_labels_on_both_sides() -> None:
    few = _rows(("hot", MIN_LABELS - 1, 0), ("warm", 10, 9), ("cold", 10, 1))
    assert inversions(few, "") == []
    tie = _rows(("hot", 10, 5), ("warm", 10, 5), ("cold", 10, 6))
    assert inversions(tie, "") == [
        "⚠ warm leads converted less than cold ones (50 % vs 60 %): the model needs attention"
    ]
    grades = _rows(("A", 5, 1), ("B", 5, 2), ("C", 5, 0), ("D", 0, 0))
    assert inversions(grades, "grade ") == [
        "⚠ grade A leads converted less than grade B ones (20 % vs 40 %): the model needs attention"
    ]


def test_grades_follow_the_model_cut_offs(config: LeadbotConfig) -> None:
    assert [grade_of(fit, config.model) for fit in (45, 40, 39.9, 25, 10, 9.9, -5)] == [
        "A", "A", "B", "B", "C", "D", "D",
    ]  # fmt: skip


async def test_reps_movers_and_model_health(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    speeds = [(r.rep, r.claims, r.timed, r.median_seconds) for r in digest.reps]
    assert speeds == [("slack:U0BOTH2", 1, 1, 2 * HOUR), ("slack:U0EAST1", 1, 1, 1800.0)]
    heating = [(m.lead.id, m.change) for m in digest.heating]
    assert heating[:2] == [("h5", 45.0), ("h1", 43.0)]  # h1: 45 → 82 → 88
    assert "m1" not in [lead for lead, _ in heating]  # a rescore is not movement
    assert len(heating) == 5
    assert [(m.lead.id, m.change) for m in digest.cooling] == [("c1", -45.0)]
    model = digest.model
    assert (model.version, model.auc, model.pending) == (2, 0.81, (3,))
    assert model.activated_at == at(T0 + 2 * DAY)
    assert model.labels_since == 17  # the week's 16 and lh0's qualified on day 2


async def test_a_team_sees_the_leads_claimed_by_or_routed_to_its_members(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    east = await digest_of(sqlite_engine, config, Scope.team("east", EAST))
    assert [e.lead.id for e in east.new_hot] == ["h1", "h2", "h3"]  # claimed, claimed, routed
    assert [w.lead.id for w in east.waiting] == ["h3"]
    assert dict(east.funnel) == {"new": 1, "hot": 3, "claimed": 2, "qualified": 0, "won": 0}
    assert sum(c.labels for c in east.by_band) == 0
    assert east.warnings == ()
    west = await digest_of(sqlite_engine, config, Scope.team("west", WEST))
    assert [w.lead.id for w in west.waiting] == ["h6"]
    assert sum(c.labels for c in west.by_band) == 16  # every labelled lead is routed west
    assert west.warnings == digest_warnings()
    mine = await digest_of(sqlite_engine, config, Scope.rep("U0BOTH2"))
    assert [e.lead.id for e in mine.new_hot] == ["h2"]
    assert [r.rep for r in mine.reps] == ["slack:U0BOTH2"]


def digest_warnings() -> tuple[str, ...]:
    return ("⚠ hot leads converted less than warm ones (17 % vs 40 %): the model needs attention",)


async def test_a_day_counts_hot_leads_per_hour(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    day = await digest_of(sqlite_engine, config, period=Period.last("day", NOW))
    assert day.period.name == "day"
    assert [e.lead.id for e in day.new_hot] == ["h4"]  # h3 turned hot 26 hours ago
    assert day.bucket == timedelta(hours=1)
    assert len(day.hot_counts) == 24
    assert day.hot_counts[0][0] == at(NOW - DAY)
    assert dict(day.hot_counts)[at(NOW - 3 * HOUR)] == 1
    assert sum(n for _, n in day.hot_counts) == 1


async def test_an_empty_database_gives_an_empty_digest(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    digest = await digest_of(sqlite_engine, config)
    assert (digest.new_hot, digest.waiting, digest.reps, digest.warnings) == ((), (), (), ())
    assert all(n == 0 for _, n in digest.funnel)
    assert (digest.model.version, digest.model.name, digest.model.labels_since) == (
        None, "test-model", 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (at(NOW), at(NOW), "is not before end"),
        (datetime(2026, 3, 2), at(NOW), "Period.start: a UTC-aware datetime"),
    ],
)
def test_a_period_is_checked(start: datetime, end: datetime, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Period(start, end)
    with pytest.raises(ValueError, match="period must be one of day, week, got 'month'"):
        Period.last("month", NOW)
