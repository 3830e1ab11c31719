"""A rescore streamed in small chunks (7 leads, so many chunks run) stores exactly what
scoring each lead alone gives: scores, bands, grades, refitted states, history rows, alerts,
on a mixed set of leads (traits or none, unknown rules, inactive, anonymous, alerted before,
a lead written between ``prepare`` and ``rescore``), with fixed and percentile bands, and
with an A/B ``only`` filter. SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.models.rescore import RescoreAlerts, Rescored, prepare, rescore
from config.loader import load_config
from scoring.bands import default_thresholds, resolve_thresholds
from scoring.engine import score
from scoring.model import DAY, BandSpec, Condition, Model, Op, Rule, RuleKind, Scale, Threshold
from scoring.state import IntentState, LeadState
from storage import offloop
from storage.ingest import upsert_leads
from storage.rawsql import time_out
from storage.tables import Lead, OutboxMessage, ScoreChange
from tests.bot.models.test_versions import MODEL, NOW, _row, _state

LEADS = Lead.__table__  # type: ignore[attr-defined]
POLICY = load_config().alerts.model_copy(update={"on_rescore": True})
ALERTS = RescoreAlerts(Router(slack_channel="#sales"), POLICY)


def _new_model(bands: BandSpec | None = None) -> Model:
    """Other points, one fit rule that now matches whoever has its field at all (so some
    fit sets change and those states are rewritten), the demo request counted only for
    leads at a company of 200 or more (an intent rule with ``lead`` conditions: leads with
    the count and no such company, or no traits at all, get none of its points), and points
    in proportion to the company's size (a scaled rule, read off each lead's traits)."""
    rules = [replace(r, points=r.points + 7) for r in MODEL.rules]
    i = next(i for i, r in enumerate(rules) if r.kind is RuleKind.FIT and r.conditions)
    path = rules[i].conditions[0].path
    rules[i] = replace(rules[i], conditions=(replace(rules[i].conditions[0], op=Op.EXISTS,
                                                     value=True),))  # fmt: skip
    assert path
    j = next(j for j, r in enumerate(rules) if (r.event_name or "").lower() == "demo requested")
    rules[j] = replace(rules[j], lead=(Condition(("company", "employee_count"), Op.RANGE,
                                                 (200, None)),))  # fmt: skip
    size = Scale(("company", "employee_count"), 50.0, 3000.0)
    rules.insert(0, Rule("size_scaled", "company size, in proportion", RuleKind.FIT, 18.0,
                         scale=size))  # fmt: skip
    return replace(MODEL, rules=tuple(rules), bands=bands or MODEL.bands)


def _mixed(rng: random.Random) -> list[dict[str, Any]]:
    rows = [_row(f"lead-{i:02}", _state(rng, MODEL), MODEL) for i in range(40)]
    for i in range(5):  # events only: no traits
        st = LeadState()
        for k in range(i + 1):
            st.event("track", "Demo Requested", {}, MODEL, NOW - k * DAY)
        rows.append(_row(f"quiet-{i}", st, MODEL))
    gone = _state(rng, MODEL)
    gone.intent["a_rule_no_model_has"] = IntentState(3.0, NOW - DAY, 3)
    rows.append(_row("gone-rule", gone, MODEL))
    for i in range(3):  # seen once, long ago, never active
        st = LeadState()
        st.identify({"title": "VP Sales"}, MODEL, NOW - (40 + i) * DAY)
        rows.append(_row(f"idle-{i}", st, MODEL))
    for i, row in enumerate(rows):
        row["email"] = f"p{i}@example.com" if i % 3 else None
        row["alerted_at"] = (NOW - 30 * DAY, NOW - 60, None)[i % 3]
    for i in range(2):
        rows.append(_row(f"anon-{i}", _state(rng, MODEL), MODEL) | {"anonymous": True})
    return rows


async def _seed(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    await offloop.write(engine, lambda c: upsert_leads(c, rows=rows))


async def _stored(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {r.id: r for r in (await conn.execute(select(LEADS))).all()}


def _expected(
    before: dict[str, Any], model: Model, chosen: Callable[[str], bool]
) -> dict[str, tuple[LeadState, Any]]:
    """Each rescored lead's refitted state and its score alone, with the rescore's edges."""
    states = {}
    for lid, row in before.items():
        if not row.anonymous and chosen(lid):
            st = LeadState.from_dict(row.state)
            st.refit(model)
            states[lid] = st
    totals = [score(s, model, NOW, explain=False).total for s in states.values()]
    edges = (
        resolve_thresholds(model.bands, totals)
        if model.bands.uses_percentiles
        else default_thresholds(model.bands)
    )
    return {lid: (st, score(st, model, NOW, edges)) for lid, st in states.items()}


async def _check(
    engine: AsyncEngine, before: dict[str, Any], model: Model, done: Rescored,
    chosen: Callable[[str], bool],
) -> None:  # fmt: skip
    expected = _expected(before, model, chosen)
    after = await _stored(engine)
    assert done.leads == len(expected)
    for lid, row in after.items():
        if lid not in expected:  # anonymous or left out: untouched
            assert (row.score, row.band, row.state) == (before[lid].score, before[lid].band,
                                                        before[lid].state), lid  # fmt: skip
            continue
        st, s = expected[lid]
        assert row.score == pytest.approx(s.total, abs=1e-9), lid
        assert (row.fit, row.intent) == (pytest.approx(s.fit), pytest.approx(s.intent)), lid
        assert (row.band, row.grade, row.engagement) == (str(s.band), s.grade, s.engagement), lid
        assert row.probability == pytest.approx(s.probability), lid
        assert row.state == st.to_dict(), lid
    changed_fit = [lid for lid, (st, _) in expected.items() if set(before[lid].state["fit"])
                   != set(st.fit)]  # fmt: skip
    assert changed_fit, "the new model must change some fit sets"
    async with engine.connect() as conn:
        history = (await conn.execute(select(ScoreChange.__table__))).all()  # type: ignore[attr-defined]
        outbox = (await conn.execute(select(OutboxMessage.__table__))).all()  # type: ignore[attr-defined]
    owed_history = {
        lid for lid, (_, s) in expected.items()
        if str(s.band) != before[lid].band or abs(s.total - before[lid].score) >= 5.0
    }  # fmt: skip
    assert {h.lead_id for h in history} == owed_history
    assert len(history) == done.history == len(owed_history)
    for h in history:
        old, s = before[h.lead_id], expected[h.lead_id][1]
        assert (h.band, h.previous_band, h.cause) == (str(s.band), old.band, "new model")
        assert (h.score, h.previous_score) == (pytest.approx(s.total), old.score)
    owed = {
        lid for lid, (_, s) in expected.items()
        if str(s.band) == "hot" and before[lid].band != "hot"
        and (before[lid].alerted_at is None
             or NOW - (time_out(before[lid].alerted_at) or 0.0) >= POLICY.cooldown_hours * 3600)
    }  # fmt: skip
    assert owed, "the new model must turn some leads hot"
    assert {o.lead_id for o in outbox} == owed
    assert done.alerts == len(owed)
    for o in outbox:
        assert o.payload["score"]["total"] == round(expected[o.lead_id][1].total, 1)
        assert time_out(after[o.lead_id].alerted_at) == pytest.approx(NOW)


@pytest.mark.parametrize("helper", [False, True], ids=["here", "helper"])
@pytest.mark.parametrize("percentiles", [False, True], ids=["fixed", "percentile"])
async def test_a_rescore_in_chunks_of_7_stores_what_each_lead_scores_alone(
    engine: AsyncEngine, percentiles: bool, helper: bool
) -> None:
    """``helper``: the points come from a helper process (SQLite, fixed bands), page by
    page."""
    bands = BandSpec(Threshold(percentile=40.0), Threshold(percentile=75.0, min_points=10.0))
    model = _new_model(bands if percentiles else None)
    rng = random.Random(11)
    await _seed(engine, _mixed(rng))
    ahead = await offloop.read(
        engine,
        lambda c: prepare(c, model=model, now=NOW, chunk=7, helper_from=0 if helper else None),
    )
    # A helper on every SQLite file asked for one; never on PostgreSQL (no file to read),
    # nor for percentile bands (every point is needed before the first write).
    sqlite = engine.dialect.name == "sqlite"
    assert (ahead.helper is not None) == (helper and sqlite and not percentiles)
    # Written after the preparation: worked out again inside the transaction.
    await _seed(engine, [_row("lead-03", _state(rng, MODEL), MODEL)])
    before = await _stored(engine)

    def run(conn: Connection) -> Rescored:
        return rescore(
            conn, model=model, now=NOW, history_delta=5.0, cause="new model", alerts=ALERTS,
            ahead=ahead, chunk=7,
        )  # fmt: skip

    try:
        done = await offloop.write(engine, run)
    finally:
        ahead.close()
    await _check(engine, before, model, done, lambda _: True)


async def test_a_chunked_rescore_of_one_cohort_leaves_the_others_alone(
    engine: AsyncEngine,
) -> None:
    model = _new_model()
    await _seed(engine, _mixed(random.Random(12)))
    before = await _stored(engine)

    def chosen(lid: str) -> bool:
        return lid[-1] in "13579"

    def run(conn: Connection) -> Rescored:
        return rescore(
            conn, model=model, now=NOW, history_delta=5.0, cause="new model", alerts=ALERTS,
            only=chosen, chunk=7,
        )  # fmt: skip

    done = await offloop.write(engine, run)
    await _check(engine, before, model, done, chosen)


@pytest.mark.parametrize("limit", [0, 3, None], ids=["none", "three", "unlimited"])
async def test_a_rescore_alerts_at_most_rescore_limit_leads_the_highest_first(
    engine: AsyncEngine, limit: int | None
) -> None:
    model = _new_model()
    await _seed(engine, _mixed(random.Random(13)))
    before = await _stored(engine)
    policy = POLICY.model_copy(update={"rescore_limit": limit})

    def run(conn: Connection) -> Rescored:
        return rescore(
            conn, model=model, now=NOW, history_delta=5.0, cause="new model",
            alerts=RescoreAlerts(Router(slack_channel="#sales"), policy), chunk=7,
        )  # fmt: skip

    done = await offloop.write(engine, run)
    expected = _expected(before, model, lambda _: True)
    owed = sorted(
        (
            (s.total, lid) for lid, (_, s) in expected.items()
            if str(s.band) == "hot" and before[lid].band != "hot"
            and (before[lid].alerted_at is None
                 or NOW - (time_out(before[lid].alerted_at) or 0.0) >= policy.cooldown_hours * 3600)
        ),
        reverse=True,
    )  # fmt: skip
    assert len(owed) > 3, "the new model must turn more than three leads hot"
    chosen = [lid for _, lid in owed[: len(owed) if limit is None else limit]]
    async with engine.connect() as conn:
        outbox = (
            await conn.execute(select(OutboxMessage.__table__).order_by("id"))  # type: ignore[attr-defined]
        ).all()
    assert [o.lead_id for o in outbox] == chosen  # highest score first
    assert (done.alerts, done.held) == (len(chosen), len(owed) - len(chosen))
    after = await _stored(engine)
    stamped = {lid for lid, row in after.items() if time_out(row.alerted_at) == NOW}
    assert stamped == set(chosen)  # the held leads are not marked alerted
