"""The learner's policy without Slack: when a refit is due, what auto_apply accepts."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.models.learning import Learner, decide, describe, running_learner
from bot.models.versions import improved, retrain
from bot.outage import Backoff
from config.learning import Learning
from config.loader import load_config
from scoring.refit import Guardrails, Proposal
from storage import models as repo
from storage.tables import Feedback
from tests.bot.models.test_versions import MODEL, NOW, _seed
from tests.logs import logged, until_logged
from tests.outage import movable_database


def proposal(before: tuple[float, float], after: tuple[float, float]) -> Proposal:
    def metrics(auc: float, loss: float) -> dict[str, float]:
        return {"roc_auc": auc, "log_loss": loss}

    return Proposal(MODEL, {}, metrics(*before), metrics(*after), labels=50)


@pytest.mark.parametrize(
    ("before", "after", "applies"),
    [
        ((0.70, 0.60), (0.75, 0.60), True),  # better ranking, same calibration
        ((0.58, 0.69), (0.58, 0.62), True),  # a tie on AUC (few labels), better log loss
        ((0.70, 0.60), (0.80, 0.65), False),  # better ranking, worse calibration
        ((0.70, 0.60), (0.70, 0.60), False),  # nothing better
        ((0.70, 0.60), (math.nan, 0.50), False),  # AUC undefined: never "better"
    ],
)
def test_auto_apply_takes_a_refit_no_worse_on_both_and_better_on_one(
    before: tuple[float, float], after: tuple[float, float], applies: bool
) -> None:
    assert improved(proposal(before, after)) is applies


def learner(engine: AsyncEngine, *, every: int, least: int) -> Learner:
    learning = Learning(retrain_every=every, guardrails=Guardrails(min_labels=least))
    config = replace(load_config(), learning=learning)
    return Learner(engine=engine, config=config, destinations=("console",), clock=lambda: NOW)


async def add_label(engine: AsyncEngine, lead_id: str) -> None:
    row = Feedback(lead_id=lead_id, outcome="won", by="U1", at=datetime.fromtimestamp(NOW, UTC))
    async with engine.begin() as conn:
        await conn.execute(Feedback.__table__.insert(), [row.model_dump(exclude={"id"})])  # type: ignore[attr-defined]


async def test_a_refit_refused_for_too_few_labels_runs_as_soon_as_there_are_enough(
    engine: AsyncEngine,
) -> None:
    await _seed(engine, leads=40, labels=29)
    bot = learner(engine, every=25, least=30)
    first = await bot.run_once()
    assert first is not None
    assert first.version_id is None
    assert "fewer than the minimum of 30" in (first.proposal.reason or "")
    assert await bot.run_once() is None  # 29 labels: not due again
    await add_label(engine, "lead-39")
    second = await bot.run_once()  # the 30th label: due at once, not 25 labels later
    assert second is not None
    assert second.proposal.labels == 30


async def test_no_refit_before_retrain_every_labels(engine: AsyncEngine) -> None:
    await _seed(engine, leads=40, labels=24)
    assert await learner(engine, every=25, least=10).run_once() is None
    await add_label(engine, "lead-30")
    result = await learner(engine, every=25, least=10).run_once()
    assert result is not None
    assert result.proposal.labels == 25


async def test_a_newer_proposal_supersedes_the_waiting_one(engine: AsyncEngine) -> None:
    await _seed(engine, leads=60, labels=40)
    first = await retrain(
        engine=engine, config_model=MODEL, guardrails=Guardrails(min_labels=10), now=NOW
    )
    second = await retrain(
        engine=engine, config_model=MODEL, guardrails=Guardrails(min_labels=10), now=NOW + 60
    )
    assert first.version_id is not None
    assert second.version_id is not None
    async with engine.connect() as conn:
        statuses = {v.id: v.status for v in await conn.run_sync(repo.list_versions)}
    assert statuses == {1: "active", first.version_id: "superseded", second.version_id: "proposed"}
    late = await decide(
        engine=engine, version_id=first.version_id, approve=True, by="slack:U1", now=NOW,
        history_delta=5.0,
    )  # fmt: skip
    assert not late.done
    assert describe(late) == (
        f"Model v{first.version_id} was superseded by v{second.version_id} before anyone "
        "decided: decide on that one."
    )


async def test_a_refit_woken_during_an_outage_runs_once_the_database_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Enough labels are stored, then the database goes away as the learner wakes; once it
    is back, the refit runs without waiting for another label."""
    caplog.set_level(logging.INFO, logger="bot.models.learning")
    async with movable_database(tmp_path) as db:
        await _seed(db.engine, leads=40, labels=30)
        db.take_away()
        bot = learner(db.engine, every=25, least=10)
        bot.backoff = Backoff(first=0.02, most=0.05)
        async with running_learner(bot):  # it wakes itself once at the start, as at boot
            await until_logged(caplog, "waits for the database")
            await asyncio.sleep(0.1)  # a few more tries
            db.put_back()
            await until_logged(caplog, "automatic refit stored model v")
        async with db.engine.connect() as conn:
            versions = await conn.run_sync(repo.list_versions)
    assert versions[-1].created_by == "auto"
    [waited] = logged(caplog, "waits for the database")
    assert "unable to open database file" in waited.getMessage()
    assert not waited.exc_info
    assert not logged(caplog, "automatic refit failed")
    assert logged(caplog, "automatic refit reaches the database")
