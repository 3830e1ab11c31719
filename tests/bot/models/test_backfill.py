"""An intent rule a retrain discovers counts each lead's PAST events once it is activated:
leads through the pipeline with a model that does not know "Webinar Attended", labels by
``leadbot feedback --file``, a retrain that proposes "did Webinar Attended", a manager's
approval, and the lead who attended three webinars before is scored with all three."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.ingest.pipeline import Pipeline
from bot.models.backfill import changed_intent_rules, recount
from bot.models.learning import decide
from bot.models.versions import retrain
from config.loader import DEFAULT_PATH, load_config
from scoring import score
from scoring.discover import Discovery
from scoring.model import DAY, Rule, RuleKind
from scoring.state import LeadState
from storage import offloop
from storage.tables import Lead
from tests.bot.conftest import T0, events, identify, iso, track

WEBINAR = re.compile(r"  - id: webinar_attended\n(    .*\n)+\n")
NOW = T0 + DAY


def _config_text() -> str:
    """The default model without its webinar rule: a signal it does not know."""
    text, n = WEBINAR.subn("", DEFAULT_PATH.read_text())
    assert n == 1
    return text


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "leadbot.yaml"
    path.write_text(_config_text())
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("LEADBOT_CONFIG", str(path))
    return path


async def _leads(engine: AsyncEngine, n: int) -> list[tuple[str, str]]:
    """``n`` leads; those who attended webinars (1-3, days apart) mostly won. Lead 0
    attended exactly three."""
    rng = random.Random(5)
    calls, outcomes = [], []
    for i in range(n):
        email = f"p{i}@firm{i}.com"
        calls.append(identify(f"u{i}", T0 - 40 * DAY + i, email=email))
        times = 3 if i == 0 else rng.choice([0, 0, 1, 2, 3])
        for k in range(times):
            calls.append(track(f"u{i}", "Webinar Attended", T0 - (5 + 9 * k) * DAY + i))
        won = rng.random() < (0.85 if times else 0.15)
        outcomes.append((email, "won" if won else "lost"))
    async with Pipeline(engine, load_config(text=_config_text())) as pipeline:
        for start in range(0, len(calls), 50):
            await pipeline.ingest(events(*calls[start : start + 50]), now=T0)
    return outcomes


async def _label(tmp_path: Path, outcomes: list[tuple[str, str]]) -> None:
    rows = [f"{email},{outcome},{iso(T0 + i)}" for i, (email, outcome) in enumerate(outcomes)]
    labels = tmp_path / "labels.csv"
    labels.write_text("email,outcome,at\n" + "\n".join(rows) + "\n")
    assert await asyncio.to_thread(main, ["feedback", "--file", str(labels)]) == 0


async def _lead(engine: AsyncEngine, lead_id: str) -> tuple[LeadState, float]:
    L = Lead.__table__.c  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        row = (await conn.execute(select(L.state, L.score).where(L.id == lead_id))).one()
    return LeadState.from_dict(row.state), float(row.score)


async def _lead_id(engine: AsyncEngine, email: str) -> str:
    L = Lead.__table__.c  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        return (await conn.execute(select(L.id).where(L.email == email))).scalar_one()


async def test_an_approved_discovered_event_rule_counts_the_past_events(
    engine: AsyncEngine, cli_env: Path, tmp_path: Path
) -> None:
    await _label(tmp_path, await _leads(engine, 150))
    config = load_config(cli_env)
    result = await retrain(
        engine=engine, config_model=config.model, guardrails=config.learning.guardrails,
        now=NOW, discovery=Discovery(max_rules=3),
    )  # fmt: skip
    assert result.version_id is not None
    new = [r for r in result.new_rules if "Webinar Attended" in r["label"]]
    assert new, result.new_rules
    lead = await _lead_id(engine, "p0@firm0.com")
    before, score_before = await _lead(engine, lead)
    assert new[0]["id"] not in before.intent  # the model did not count them

    decision = await decide(
        engine=engine, version_id=result.version_id, approve=True, by="U1", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    assert decision.done
    assert decision.approved

    after, score_after = await _lead(engine, lead)
    rule: Rule = result.proposal.model.rule(new[0]["id"])
    assert (rule.kind, rule.event_name, after.intent[rule.id].count) == (
        RuleKind.INTENT, "Webinar Attended", 3,
    )  # fmt: skip
    # The three events, decayed to NOW by the rule's own half-life and capped, by hand.
    ages = [NOW - (T0 - (5 + 9 * k) * DAY) for k in range(3)]
    h = rule.half_life_seconds
    value = sum(1.0 if h is None else 2.0 ** (-age / h) for age in ages)
    expected = rule.points * (value if rule.cap is None else min(rule.cap, value))
    explained = {c.rule: c.points for c in score(after, result.proposal.model, NOW).contributions}
    assert explained[rule.id] == pytest.approx(expected)
    assert score_after == pytest.approx(score(after, result.proposal.model, NOW).total)
    assert score_after != pytest.approx(score_before)


async def test_a_recount_keeps_property_tests_and_drops_stale_counts(
    engine: AsyncEngine, cli_env: Path
) -> None:
    """A rule with a property test counts only the events that pass it; a count the state
    held for a rule id that now matches nothing is removed."""
    calls = [identify("a", T0 - DAY, email="a@x.com")]
    calls += [track("a", "Webinar Attended", T0 - k * DAY, properties={"duration_minutes": m})
              for k, m in ((1, 30), (2, 5), (3, 45))]  # fmt: skip
    async with Pipeline(engine, load_config(text=_config_text())) as pipeline:
        await pipeline.ingest(events(*calls), now=T0)
    lead = await _lead_id(engine, "a@x.com")
    model = load_config().model  # the default model: webinar_attended needs 10 minutes
    rule = model.rule("webinar_attended")
    assert rule in changed_intent_rules(load_config(text=_config_text()).model, model)
    ghost = Rule("ghost", "ghost", RuleKind.INTENT, 1.0, (), "track", "Never Sent")

    def seed_and_recount(conn):  # type: ignore[no-untyped-def]
        L = Lead.__table__.c  # type: ignore[attr-defined]
        state = conn.execute(select(L.state).where(L.id == lead)).scalar_one()
        state["intent"]["ghost"] = [2.0, T0, 2]
        conn.execute(Lead.__table__.update().where(L.id == lead).values(state=state))  # type: ignore[attr-defined]
        return recount(conn, [rule, ghost])

    assert await offloop.write(engine, seed_and_recount) == 1
    state, _ = await _lead(engine, lead)
    assert "ghost" not in state.intent
    assert state.intent["webinar_attended"].count == 2  # the 5-minute one does not count
