"""A/B tests of model versions: stable cohorts, the challenger scoring cohort B (stored
leads and new events through the running bot), stop and activation ending a test, and
conversion per cohort."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from bot.admin.models import model_command
from bot.app import build_app
from bot.chat.actions import features_at
from bot.cli import parser
from bot.digest.content import Period, Scope, build_digest
from bot.ingest.signatures import sign
from bot.models.abtest import cohort_stats, start_ab, stop_ab
from bot.models.live import cohort
from bot.models.versions import activate, ensure_active
from bot.web.keys import ENGINE
from config.loader import load_config
from config.settings import load_settings
from config.writer import model_yaml
from scoring.engine import score
from storage import abtests
from storage import models as repo
from storage.tables import Feedback, Lead, ScoreChange
from tests.bot.conftest import SMALL_MODEL, identify
from tests.bot.models.test_versions import MODEL, NOW, _bumped_version, _leads, _seed
from tests.bot.slack_helpers import WEBHOOK_SECRET


def test_cohorts_are_stable_and_near_their_share() -> None:
    ids = [f"lead-{i}" for i in range(20_000)]
    b = [lid for lid in ids if cohort(lid, 0.3) == "B"]
    assert 0.28 < len(b) / len(ids) < 0.32
    assert [cohort(lid, 0.3) for lid in b[:50]] == ["B"] * 50  # the same answer every time


@settings(max_examples=50, deadline=None)
@given(lead=st.text(min_size=1, max_size=40), low=st.floats(0.01, 0.98), step=st.floats(0, 0.5))
def test_a_lead_in_cohort_b_stays_there_when_the_share_grows(
    lead: str, low: float, step: float
) -> None:
    if cohort(lead, low) == "B":
        assert cohort(lead, min(0.99, low + step)) == "B"


async def test_starting_a_test_rescores_cohort_b_only_and_stopping_undoes_it(
    engine: AsyncEngine,
) -> None:
    states = await _seed(engine, leads=200, labels=0)
    before = await _leads(engine)
    vid, challenger = await _bumped_version(engine, 30.0)
    test_id, rescored = await start_ab(
        engine=engine, config_model=MODEL, challenger_id=vid, share=0.5, by="cli", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    cohort_b = {lid for lid in states if cohort(lid, 0.5) == "B"}
    assert rescored == len(cohort_b)
    during = await _leads(engine)
    for lid, state in states.items():
        model = challenger if lid in cohort_b else MODEL
        st_ = state.copy()
        st_.refit(model)
        expected = before[lid].score if lid not in cohort_b else score(st_, model, NOW).total
        assert during[lid].score == pytest.approx(expected), lid
    assert any(during[lid].score != before[lid].score for lid in cohort_b)
    async with engine.connect() as conn:
        causes = set((await conn.execute(select(ScoreChange.cause))).scalars())  # type: ignore[call-overload]
        running = await conn.run_sync(abtests.running_test)
    assert causes == {f"a/b test: model v{vid}"}
    assert running is not None
    assert (running.id, running.champion_id, running.challenger_id) == (test_id, 1, vid)

    stopped, back = await stop_ab(engine=engine, by="cli", now=NOW, history_delta=5.0)
    assert (stopped.id, back) == (test_id, len(cohort_b))
    after = await _leads(engine)
    assert {k: r.score for k, r in after.items()} == pytest.approx(
        {k: r.score for k, r in before.items()}
    )
    with pytest.raises(LookupError, match="no A/B test is running"):
        await stop_ab(engine=engine, by="cli", now=NOW, history_delta=5.0)


async def test_a_test_is_refused_with_a_reason(engine: AsyncEngine) -> None:
    await _seed(engine, leads=10, labels=0)
    vid, _ = await _bumped_version(engine, 10.0)
    other = replace(MODEL, rules=MODEL.rules[:-1])

    def add_other(conn: Any) -> int:
        return repo.add_version(
            conn, yaml=model_yaml(other), status=repo.Status.PROPOSED, created_by="t",
            created_at=datetime.fromtimestamp(NOW, UTC),
        )  # fmt: skip

    async with engine.begin() as conn:
        different = await conn.run_sync(add_other)
    common: dict[str, Any] = {"engine": engine, "config_model": MODEL, "by": "cli", "now": NOW}
    with pytest.raises(ValueError, match="other rules than the active v1"):
        await start_ab(**common, challenger_id=different, share=0.5, history_delta=5.0)
    with pytest.raises(ValueError, match="is the active one"):
        await start_ab(**common, challenger_id=1, share=0.5, history_delta=5.0)
    with pytest.raises(ValueError, match=r"--share: a fraction between 0 and 1, got 1\.5"):
        await start_ab(**common, challenger_id=vid, share=1.5, history_delta=5.0)
    with pytest.raises(LookupError, match="model version 99: no such version"):
        await start_ab(**common, challenger_id=99, share=0.5, history_delta=5.0)
    await start_ab(**common, challenger_id=vid, share=0.5, history_delta=5.0)
    with pytest.raises(ValueError, match="already running"):
        await start_ab(**common, challenger_id=vid, share=0.2, history_delta=5.0)


async def test_activating_a_version_ends_the_test(engine: AsyncEngine) -> None:
    await _seed(engine, leads=20, labels=0)
    vid, _ = await _bumped_version(engine, 10.0)
    await start_ab(
        engine=engine, config_model=MODEL, challenger_id=vid, share=0.5, by="cli", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    await activate(engine=engine, version_id=vid, by="cli", now=NOW + 1)
    async with engine.connect() as conn:
        assert await conn.run_sync(abtests.running_test) is None
        latest = await conn.run_sync(abtests.latest_test)
    assert latest is not None
    assert latest.stopped_by == f"activation of v{vid}"


async def test_the_running_bot_scores_new_events_of_cohort_b_with_the_challenger(
    db_url: str,
) -> None:
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    settings_ = load_settings({
        "DATABASE_URL": db_url, "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
    })  # fmt: skip
    challenger = replace(
        config.model,
        rules=tuple(replace(r, points=r.points + 7) if r.id == "software" else r
                    for r in config.model.rules),
    )  # fmt: skip
    async with TestClient(TestServer(build_app(settings=settings_, config=config))) as client:
        engine = client.app[ENGINE]

        def add(conn: Any) -> int:
            return repo.add_version(
                conn, yaml=model_yaml(challenger), status=repo.Status.PROPOSED,
                created_by="t", created_at=datetime.fromtimestamp(NOW, UTC),
            )  # fmt: skip

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: ensure_active(c, config_model=config.model, now=NOW))
            vid = await conn.run_sync(add)
        await start_ab(
            engine=engine, config_model=config.model, challenger_id=vid, share=0.5, by="t",
            now=time.time(), history_delta=5.0,
        )  # fmt: skip
        ids = [f"ab{i}" for i in range(12)]
        now = time.time()
        calls = [
            identify(lid, now, title="Analyst", company={"industry": "Software"}) for lid in ids
        ]
        body = orjson.dumps({"batch": calls})
        headers = sign(WEBHOOK_SECRET, body, msg_id="m-ab", timestamp=int(now))
        assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202
        async with engine.connect() as conn:
            rows = (await conn.execute(select(col(Lead.id), col(Lead.fit)))).all()
            fits: dict[str, float] = {lid: fit for lid, fit in rows}
    for lid in ids:
        assert fits[lid] == (17.0 if cohort(lid, 0.5) == "B" else 10.0), lid
    assert {cohort(lid, 0.5) for lid in ids} == {"A", "B"}


async def test_conversion_is_reported_per_cohort(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    states = await _seed(engine, leads=120, labels=0)
    vid, _ = await _bumped_version(engine, 10.0)
    await start_ab(
        engine=engine, config_model=MODEL, challenger_id=vid, share=0.5, by="cli", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    # Every B lead converts, one A lead in three.
    rows = []
    for n, (lid, state) in enumerate(states.items()):
        won = cohort(lid, 0.5) == "B" or n % 3 == 0
        rows.append(
            Feedback(
                lead_id=lid, outcome="won" if won else "lost", by="U1",
                at=datetime.fromtimestamp(NOW + 60 + n, UTC),
                features=features_at(state, MODEL, NOW),
            ).model_dump(exclude={"id"})
        )  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(Feedback.__table__.insert(), rows)  # type: ignore[attr-defined]
        test = await conn.run_sync(abtests.running_test)
        assert test is not None
        a, b = await conn.run_sync(lambda c: cohort_stats(c, test))
    n_b = sum(cohort(lid, 0.5) == "B" for lid in states)
    assert (a.name, a.version_id, a.labels) == ("A", 1, len(states) - n_b)
    assert (b.name, b.version_id, b.labels, b.conversion) == ("B", vid, n_b, 1.0)
    assert 0.2 < a.conversion < 0.5

    settings_ = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    args = parser().parse_args(["model", "ab", "status"])
    assert await model_command(settings_, load_config(), args, now=NOW) == 0
    out = capsys.readouterr().out
    assert f"v{vid} (B, 50% of leads) against v1 (A)" in out
    assert f"B            v{vid} {n_b:>6}      100%" in out
    # The digest's model health shows the cohorts too.
    digest = await build_digest(
        engine, config=load_config(), period=Period.last("week", NOW + 3600),
        scope=Scope.everyone(), now=NOW + 3600,
    )  # fmt: skip
    assert digest.model.cohorts == (
        f"A v1 (50% of leads): {a.labels} labels, {a.conversion:.0%} converted",
        f"B v{vid} (50% of leads): {n_b} labels, 100% converted",
    )
