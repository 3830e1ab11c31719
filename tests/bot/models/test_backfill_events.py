"""Rules on page views and on a numeric event property, end to end: leads through the
pipeline (page calls with ``page_views``, one "Time on Website" with ``minutes``), labels
by ``leadbot feedback --file``, a retrain that proposes them, a manager's approval, and
every lead's recounted state then scores each new rule as the retrain read it from the
labels' snapshots."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ingest.pipeline import Pipeline
from bot.models.learning import decide
from bot.models.snapshots import labelled_snapshots
from bot.models.versions import retrain
from config.loader import load_config
from scoring.discover import Discovery, rule_columns
from scoring.engine import feature
from scoring.model import DAY, RuleKind
from scoring.state import LeadState
from storage import offloop
from storage.labels import labels_of
from storage.tables import Lead
from tests.bot.conftest import T0, events, identify, page, track
from tests.bot.models.test_backfill import _label

NOW = T0 + DAY


@pytest.fixture
def cli_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("LEADBOT_CONFIG", raising=False)  # the default model


async def _leads(engine: AsyncEngine, n: int) -> list[tuple[str, str]]:
    """Leads who spent 12+ minutes on the site, or visited 3+ times, mostly won."""
    rng = random.Random(11)
    calls, outcomes = [], []
    for i in range(n):
        email, user, base = f"v{i}@firm{i}.com", f"v{i}", T0 - 30 * DAY + i * 60
        calls.append(identify(user, base, email=email))
        visits = rng.choice([0, 1, 2, 3, 5, 8])
        views = rng.choice([1, 2, 4])
        calls += [page(user, "/courses", base + (k + 1) * DAY / 4, name="Courses",
                       properties={"path": "/courses", "page_views": views})
                  for k in range(visits)]  # fmt: skip
        minutes = round(rng.uniform(0, 30), 2)
        spent = {"minutes": minutes}
        calls.append(track(user, "Time on Website", base + 3 * DAY, properties=spent))
        won = rng.random() < 0.08 + 0.45 * (minutes >= 12) + 0.4 * (visits >= 3)
        outcomes.append((email, "won" if won else "lost"))
    async with Pipeline(engine, load_config()) as pipeline:
        for start in range(0, len(calls), 100):
            await pipeline.ingest(events(*calls[start : start + 100]), now=T0)
    return outcomes


def _labelled(conn: Connection) -> tuple[list, list, dict[str, LeadState]]:
    labels = labels_of(conn, outcomes=["won", "lost"])
    L = Lead.__table__.c  # type: ignore[attr-defined]
    states = {i: LeadState.from_dict(s) for i, s in conn.execute(select(L.id, L.state))}
    return labels, labelled_snapshots(conn, labels), states


async def test_approved_page_and_property_rules_score_as_the_retrain_read_them(
    engine: AsyncEngine, cli_env: None, tmp_path: Path
) -> None:
    await _label(tmp_path, await _leads(engine, 240))
    config = load_config()
    result = await retrain(
        engine=engine, config_model=config.model, guardrails=config.learning.guardrails,
        now=NOW, discovery=Discovery(max_rules=6),
    )  # fmt: skip
    assert result.version_id is not None
    model = result.proposal.model
    new = [model.rule(r["id"]) for r in result.new_rules]
    minutes = [r for r in new if r.conditions and r.conditions[0].path == ("minutes",)]
    pages = [r for r in new if r.event_type == "page" and not r.conditions]
    assert minutes, [r.label for r in new]
    assert pages, [r.label for r in new]
    labels, snaps, before = await offloop.read(engine, _labelled)
    assert snaps[0]["numbers"]["track:Time on Website"]["minutes"][0] == 1  # n, min, max
    assert not any(r.id in s.intent for s in before.values() for r in minutes + pages)

    decision = await decide(
        engine=engine, version_id=result.version_id, approve=True, by="U1", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    assert decision.approved

    _, _, after = await offloop.read(engine, _labelled)
    rules = [r for r in minutes + pages if r.kind is RuleKind.INTENT]
    at = [label.at.timestamp() for label in labels]
    read = rule_columns(snaps, at, rules)  # what the retrain fitted the rules on
    for i, label in enumerate(labels):
        state = after[label.lead_id]
        scored = [feature(r, state, at[i]) for r in rules]
        assert scored == pytest.approx(list(read[i]), abs=1e-9), label.lead_id
    assert set(read[:, 0]) == {0.0, 1.0}  # the property test splits the leads
