"""Model versions end to end: retrain from feedback, activate with a rescore, roll back."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.models import model_command, retrain_command
from bot.app import build_app
from bot.chat.actions import features_at
from bot.chat.routing import Router
from bot.cli import parser
from bot.metrics import REGISTRY
from bot.models.rescore import RescoreAlerts
from bot.models.versions import activate, ensure_active, retrain, rollback
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig, load_config
from config.settings import load_settings
from config.writer import model_yaml
from scoring.engine import score
from scoring.model import DAY, Model
from scoring.refit import Guardrails
from scoring.state import LeadState
from storage import models as repo
from storage.engine import create_engine
from storage.ingest import upsert_leads
from storage.migrate import upgrade
from storage.models import Status, add_version
from storage.tables import Feedback, Lead, OutboxMessage, ScoreChange
from tests.bot.conftest import SMALL_MODEL, identify, track

NOW = 1_800_000_000.0
MODEL = load_config().model
TITLES = ["VP Sales", "Student", "Engineer", "RevOps lead", "Marketing"]
INDUSTRIES = ["Software", "Retail", "SaaS", "Mining"]


def _state(rng: random.Random, model: Model) -> LeadState:
    state = LeadState()
    start = NOW - rng.uniform(1, 60) * DAY
    traits = {
        "title": rng.choice(TITLES),
        "company": {"industry": rng.choice(INDUSTRIES), "employee_count": rng.randint(5, 5000)},
        "email": f"p{rng.randint(0, 10**6)}@{rng.choice(['acme.io', 'gmail.com'])}",
    }
    state.identify(traits, model, start)
    for _ in range(rng.randint(0, 6)):
        name = rng.choice(["Demo Requested", "Trial Started", "Email Link Clicked"])
        state.event("track", name, {}, model, start + rng.uniform(0, NOW - start))
    return state


def _row(lead_id: str, state: LeadState, model: Model) -> dict[str, Any]:
    s = score(state, model, NOW, explain=False)
    return {
        "id": lead_id, "email": None, "name": None, "company": None, "anonymous": False,
        "state": state.to_dict(), "score": s.total, "fit": s.fit, "intent": s.intent,
        "band": str(s.band), "grade": s.grade, "engagement": s.engagement,
        "probability": s.probability, "first_seen_at": state.first_seen,
        "last_event_at": state.last_seen, "scored_at": NOW, "alerted_at": None,
    }  # fmt: skip


async def _seed(engine: AsyncEngine, *, leads: int, labels: int) -> dict[str, LeadState]:
    """Leads scored by the configured model; feedback where the software industry almost
    always qualifies and the rest almost never does."""
    rng = random.Random(5)
    states = {f"lead-{i}": _state(rng, MODEL) for i in range(leads)}
    rows = [_row(lid, st, MODEL) for lid, st in states.items()]
    feedback = []
    for n, (lid, st) in enumerate(list(states.items())[:labels]):
        good = "industry_software" in st.fit
        won = rng.random() < (0.9 if good else 0.1)
        feedback.append(
            Feedback(
                lead_id=lid, outcome="qualified" if won else "disqualified", by="U1",
                at=datetime.fromtimestamp(NOW - (labels - n) * 60, UTC),
                features=features_at(st, MODEL, NOW),
            ).model_dump(exclude={"id"})
        )  # fmt: skip

    def write(conn: Connection) -> None:
        upsert_leads(conn, rows=rows)
        if feedback:
            conn.execute(Feedback.__table__.insert(), feedback)  # type: ignore[attr-defined]

    async with engine.begin() as conn:
        await conn.run_sync(write)
    return states


async def _leads(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return {r.id: r for r in (await conn.execute(select(Lead.__table__))).all()}  # type: ignore[attr-defined]


async def _causes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(ScoreChange.__table__.c.cause))).scalars())  # type: ignore[attr-defined]


def _assert_scored(stored: dict[str, Any], states: dict[str, LeadState], model: Model) -> None:
    for lid, state in states.items():
        st = state.copy()
        st.refit(model)
        expected = score(st, model, NOW, explain=False)
        row = stored[lid]
        assert row.score == pytest.approx(expected.total, abs=1e-9), lid
        assert (row.band, row.grade, row.engagement) == (
            str(expected.band), expected.grade, expected.engagement,
        )  # fmt: skip
        assert row.probability == pytest.approx(expected.probability, rel=1e-9)


async def test_below_min_labels_nothing_is_proposed(engine: AsyncEngine) -> None:
    await _seed(engine, leads=20, labels=10)
    result = await retrain(
        engine=engine, config_model=MODEL, guardrails=Guardrails(min_labels=30), now=NOW
    )
    assert result.version_id is None
    assert "fewer than the minimum of 30" in (result.proposal.reason or "")
    async with engine.connect() as conn:
        versions = await conn.run_sync(repo.list_versions)
    assert [(v.id, v.status, v.created_by) for v in versions] == [(1, "active", "config")]


async def test_retrain_proposes_points_that_follow_the_labels(engine: AsyncEngine) -> None:
    await _seed(engine, leads=300, labels=300)
    result = await retrain(engine=engine, config_model=MODEL, guardrails=Guardrails(), now=NOW)
    assert result.version_id == 2
    assert result.base_id == 1
    old, new = result.proposal.changes["industry_software"]
    assert new > old == 8.0
    async with engine.connect() as conn:
        stored = await conn.run_sync(repo.get_version, 2)
    assert stored is not None
    assert (stored.status, stored.parent_id, stored.labels) == ("proposed", 1, 300)
    assert set(stored.metrics) == {"before", "after"}
    assert load_config(text=stored.yaml).model.rule("industry_software").points == new


async def _bumped_version(
    engine: AsyncEngine, extra: float, rules: tuple[str, ...] = ("industry_software",)
) -> tuple[int, Model]:
    """Store (proposed) the configured model with ``extra`` points on ``rules``."""
    bumped = replace(
        MODEL,
        rules=tuple(
            replace(r, points=r.points + extra) if r.id in rules else r for r in MODEL.rules
        ),
    )

    def add(conn: Connection) -> int:
        ensure_active(conn, config_model=MODEL, now=NOW)
        return repo.add_version(
            conn, yaml=model_yaml(bumped), status=repo.Status.PROPOSED, created_by="cli",
            created_at=datetime.fromtimestamp(NOW, UTC), parent_id=1,
        )  # fmt: skip

    async with engine.begin() as conn:
        return await conn.run_sync(add), bumped


async def test_activate_rescores_and_rollback_restores(engine: AsyncEngine) -> None:
    states = await _seed(engine, leads=120, labels=0)
    before = await _leads(engine)
    vid, bumped = await _bumped_version(engine, 25.0, ("industry_software", "demo_request"))
    timed = REGISTRY.get_sample_value("leadbot_rescore_seconds_count") or 0
    done = await activate(engine=engine, version_id=vid, by="cli", now=NOW)
    assert (done.version_id, done.previous_id, done.leads) == (vid, 1, 120)
    assert REGISTRY.get_sample_value("leadbot_rescore_seconds_count") == timed + 1
    after = await _leads(engine)
    _assert_scored(after, states, bumped)
    assert any(after[k].band != before[k].band for k in states)
    causes = await _causes(engine)
    assert done.history == len(causes) > 0
    assert set(causes) == {f"model v{vid}"}

    back = await rollback(engine=engine, by="cli", now=NOW)
    assert (back.version_id, back.previous_id) == (1, vid)
    restored = await _leads(engine)
    _assert_scored(restored, states, MODEL)
    assert {k: r.score for k, r in restored.items()} == pytest.approx(
        {k: r.score for k, r in before.items()}
    )
    async with engine.connect() as conn:
        versions = await conn.run_sync(repo.list_versions)
    assert [(v.id, v.status) for v in versions] == [(1, "active"), (vid, "rejected")]
    with pytest.raises(LookupError, match="no earlier"):
        await rollback(engine=engine, by="cli", now=NOW)


async def _outbox(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(OutboxMessage.__table__))).all())  # type: ignore[attr-defined]


@pytest.mark.parametrize("on_rescore", [False, True])
async def test_a_rescore_alerts_leads_it_turns_hot_once_and_old_alerts_only_if_told(
    engine: AsyncEngine, on_rescore: bool
) -> None:
    await _seed(engine, leads=120, labels=0)
    before = await _leads(engine)
    # Half the leads were alerted long ago (outside the cooldown), half never.
    alerted_long_ago = {lid for n, lid in enumerate(sorted(before)) if n % 2}
    async with engine.begin() as conn:
        await conn.execute(
            Lead.__table__.update()  # type: ignore[attr-defined]
            .where(Lead.__table__.c.id.in_(alerted_long_ago))  # type: ignore[attr-defined]
            .values(alerted_at=datetime.fromtimestamp(NOW - 30 * DAY, UTC))
        )
    vid, _ = await _bumped_version(engine, 60.0)
    policy = load_config().alerts.model_copy(update={"on_rescore": on_rescore})
    alerts = RescoreAlerts(Router(slack_channel="#sales"), policy)
    done = await activate(engine=engine, version_id=vid, by="cli", now=NOW, alerts=alerts)
    after = await _leads(engine)
    turned_hot = {k for k in after if after[k].band == "hot" and before[k].band != "hot"}
    expected = turned_hot if on_rescore else turned_hot - alerted_long_ago
    assert turned_hot - alerted_long_ago  # the data has both kinds
    assert turned_hot & alerted_long_ago
    queued = await _outbox(engine)
    assert {m.lead_id for m in queued} == expected
    assert done.alerts == len(expected)
    assert {m.destination for m in queued} == {"slack:#sales"}
    assert {m.payload["why_now"]["name"] for m in queued} == {f"model v{vid}"}
    assert all(after[k].alerted_at is not None for k in expected)
    # The same rescore again owes nothing: no lead crosses into hot twice.
    again = await activate(engine=engine, version_id=1, by="cli", now=NOW + 60, alerts=alerts)
    assert again.alerts == 0


async def test_cli_model_list_show_diff(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await _seed(engine, leads=300, labels=300)
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    config = load_config()
    assert await retrain_command(settings, config, now=NOW) == 0
    out = capsys.readouterr().out
    assert out.startswith("proposed v2 (refit of v1 on 300 labels)")
    assert "industry_software" in out

    async def run(*argv: str) -> str:
        args = parser().parse_args(["model", *argv])
        assert await model_command(settings, config, args, now=NOW) == 0
        return capsys.readouterr().out

    listing = (await run("list")).splitlines()
    assert listing[1].split()[:2] == ["1", "active"]
    assert listing[2].split()[:2] == ["2", "proposed"]
    assert "→" in listing[2]
    assert "300" in listing[2].split()
    shown = await run("show", "2")
    assert "industry_software" in shown
    diff = {line.split()[0]: line for line in (await run("diff", "1", "2")).splitlines()}
    assert diff["industry_software"].split()[1:3] == ["8", "→"]
    assert diff["industry_software"].endswith("*")
    activated = await run("activate", "2")
    assert activated.startswith("v2 active (was v1): 300 leads rescored")


async def test_serve_scores_with_the_active_version_not_the_configured_model(
    db_url: str, config: LeadbotConfig
) -> None:
    """After `leadbot model activate`, a (re)started bot scores new events with that version."""
    boosted = load_config(text=SMALL_MODEL.replace("points: 30", "points: 50"), name="v2").model
    engine = create_engine(db_url)
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: add_version(
            c, yaml=model_yaml(boosted), status=Status.ACTIVE, created_by="test",
            created_at=datetime.now(UTC),
        ))  # fmt: skip
    await engine.dispose()
    settings = load_settings({"DATABASE_URL": db_url, "LEADBOT_INGEST": "thread"})
    app = build_app(settings=settings, config=config, insecure=True)
    async with TestClient(TestServer(app)) as client:
        now = datetime.now(UTC).timestamp()
        body = orjson.dumps({"batch": [identify("u1", now, title="VP Sales"),
                                       track("u1", "Demo Requested", now)]})  # fmt: skip
        assert (await client.post("/webhooks/events", data=body)).status == 202
        async with client.app[ENGINE].connect() as conn:
            stored = (await conn.execute(select(Lead.score))).scalar_one()  # type: ignore[call-overload]
    assert stored == pytest.approx(20 + 50, abs=0.01)  # leader 20 + the active version's demo 50
