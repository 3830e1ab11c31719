"""The guardrails hold for proposals with new rules: one worse on the held-out labels never
auto-applies; the diff lists every new rule and every reweighted one; and ``leadbot model
rollback`` after activating a version with new rules (a discovered intent rule whose past
events were recounted among them) restores the previous version's YAML and every lead's
score exactly."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.cli
from bot.cli import main
from bot.ingest.pipeline import Pipeline
from bot.models.learning import decide, proposal_message, retrain_now, retrain_summary
from bot.models.versions import improved, model_of, retrain
from config.loader import load_config
from scoring import score
from scoring.discover import Discovery
from scoring.model import DAY
from scoring.state import LeadState
from storage import models as repo
from storage.tables import Lead
from tests.bot.conftest import T0, events, identify, iso, track
from tests.bot.models.test_backfill import _config_text

NOW = T0 + DAY
LEADS = Lead.__table__.c  # type: ignore[attr-defined]


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on the test database, a config without the webinar rule, the CLI's clock at
    NOW (a rescore's decayed counts depend on its time)."""
    path = tmp_path / "leadbot.yaml"
    path.write_text(_config_text().replace("auto_apply: false", "auto_apply: true"))
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("LEADBOT_CONFIG", str(path))
    monkeypatch.setattr(bot.cli, "time", SimpleNamespace(time=lambda: NOW))
    return path


async def _ingest(engine: AsyncEngine, calls: list[dict[str, Any]]) -> None:
    async with Pipeline(engine, load_config(text=_config_text())) as pipeline:
        for start in range(0, len(calls), 50):
            await pipeline.ingest(events(*calls[start : start + 50]), now=T0)


async def _label(tmp_path: Path, outcomes: list[tuple[str, str]]) -> None:
    """Labels in list order, a second apart: the last quarter is the held-out one."""
    rows = [f"{email},{outcome},{iso(T0 + i)}" for i, (email, outcome) in enumerate(outcomes)]
    labels = tmp_path / "labels.csv"
    labels.write_text("email,outcome,at\n" + "\n".join(rows) + "\n")
    assert await asyncio.to_thread(main, ["feedback", "--file", str(labels)]) == 0


async def _leads(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(LEADS.id, LEADS.state, LEADS.score, LEADS.band,
                                          LEADS.probability))).all()  # fmt: skip
    return {r.id: r for r in rows}


async def _active(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return await conn.run_sync(repo.active_version)


async def test_a_proposal_with_new_rules_worse_on_held_out_labels_never_auto_applies(
    engine: AsyncEngine, cli_env: Path, tmp_path: Path
) -> None:
    """Campaign A won on the older labels and loses on the newest: the new rule the older
    labels support makes the held-out labels worse, and auto_apply leaves it proposed."""
    rng = random.Random(3)
    calls, outcomes = [], []
    n = 200
    for i in range(n):
        campaign = rng.choice("ABCD")
        calls.append(identify(f"u{i}", T0 - DAY + i, email=f"p{i}@f{i}.com", campaign=campaign))
        newest = i >= n * 3 // 4
        p = (0.05 if newest else 0.9) if campaign == "A" else 0.3
        outcomes.append((f"p{i}@f{i}.com", "won" if rng.random() < p else "lost"))
    await _ingest(engine, calls)
    await _label(tmp_path, outcomes)
    before = await _leads(engine)
    config = load_config(cli_env)
    assert config.learning.auto_apply

    result, decision = await retrain_now(
        engine=engine, config=config, destinations=("console",), now=NOW
    )
    assert "campaign is A" in [r["label"] for r in result.new_rules]
    assert result.version_id is not None
    assert not improved(result.proposal)
    assert result.proposal.metrics_after["roc_auc"] < result.proposal.metrics_before["roc_auc"]
    assert decision is None
    summary = retrain_summary(result, decision, {})
    assert summary["status"] == "no better"
    assert (await _active(engine)).id == result.base_id
    version = result.version_id
    async with engine.connect() as conn:
        stored = await conn.run_sync(lambda c: repo.get_version(c, version))
    assert stored is not None
    assert stored.status == "proposed"
    after = await _leads(engine)
    assert {k: (r.score, r.band) for k, r in after.items()} == {
        k: (r.score, r.band) for k, r in before.items()
    }


def _signals(n: int) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Leads whose plan and webinar attendance (1-3 times, days apart) make them win."""
    rng = random.Random(8)
    calls, outcomes = [], []
    for i in range(n):
        plan = rng.choice(["pro", "free", "team"])
        calls.append(identify(f"u{i}", T0 - 40 * DAY + i, email=f"p{i}@f{i}.com", plan=plan))
        times = rng.choice([0, 0, 1, 2, 3])
        for k in range(times):
            calls.append(track(f"u{i}", "Webinar Attended", T0 - (5 + 9 * k) * DAY + i))
        p = 0.1 + 0.45 * bool(times) + 0.35 * (plan == "pro")
        outcomes.append((f"p{i}@f{i}.com", "won" if rng.random() < p else "lost"))
    return calls, outcomes


async def test_the_diff_lists_every_change_and_rollback_restores_exactly(
    engine: AsyncEngine, cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls, outcomes = _signals(200)
    await _ingest(engine, calls)
    await _label(tmp_path, outcomes)
    config = load_config(cli_env)
    result = await retrain(
        engine=engine, config_model=config.model, guardrails=config.learning.guardrails,
        now=NOW, discovery=Discovery(),
    )  # fmt: skip
    assert result.version_id is not None
    base = await _active(engine)
    base_model, proposed = model_of(base), result.proposal.model

    # The diff: every rule the version adds, every rule whose points it moves, nothing else.
    old = {r.id: r.points for r in base_model.rules}
    added = {r.id for r in proposed.rules} - set(old)
    moved = {r.id for r in proposed.rules if r.id in old and r.points != old[r.id]}
    labels = {r.id: r.label for r in base_model.rules}
    summary = retrain_summary(result, None, labels)
    assert {r["id"] for r in summary["new_rules"]} == added
    assert {r["rule"] for r in summary["reweighted"]} == moved
    kinds = {proposed.rule(rid).kind.value for rid in added}
    assert kinds == {"fit", "intent"}  # the plan and "did Webinar Attended"
    message = proposal_message(result, model_labels=labels)
    assert [c.rule for c in message.changes][: len(added)] == [
        r["id"] for r in summary["new_rules"]
    ]
    assert {c.rule for c in message.changes} == added | moved
    assert all(c.label.startswith("New: ") for c in message.changes[: len(added)])
    assert set(old) - {r.id for r in proposed.rules} == set()  # no rule silently dropped

    before = await _leads(engine)
    decision = await decide(
        engine=engine, version_id=result.version_id, approve=True, by="U1", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    assert decision.done
    activated = await _leads(engine)
    assert any(activated[k].score != before[k].score for k in before)

    capsys.readouterr()
    assert await asyncio.to_thread(main, ["model", "rollback"]) == 0
    restored = await _active(engine)
    assert (restored.id, restored.yaml) == (base.id, base.yaml)
    after = await _leads(engine)
    assert set(after) == set(before)
    for lead_id, row in before.items():
        expected = score(LeadState.from_dict(row.state), base_model, NOW)
        got = after[lead_id]
        assert (got.score, got.band, got.probability) == (
            expected.total, str(expected.band), expected.probability,
        ), lead_id  # fmt: skip
