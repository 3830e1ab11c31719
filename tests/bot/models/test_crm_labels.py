"""CRM outcomes in a refit: weighed by ``crm.label_weight``, a lead's CRM outcome replaces
its reps' labels, the trigger counts them, and the proposal says how many of each source."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import features_at
from bot.models.label_weights import weigh
from bot.models.learning import Learner, retrain_now
from bot.models.versions import weighted_features
from config.crm import Crm
from config.learning import Learning
from config.loader import LeadbotConfig, load_config
from scoring.refit import Guardrails
from scoring.state import LeadState
from storage import crm as links
from storage.labels import Label
from storage.tables import OutboxMessage
from tests.bot.models.test_versions import MODEL, NOW, _seed

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def _label(lead: str, outcome: str, minute: int, source: str = "rep") -> Label:
    return Label(lead, outcome, datetime.fromtimestamp(NOW + minute * 60, UTC), {}, source)


def test_a_leads_latest_crm_outcome_replaces_its_rep_labels_and_earlier_outcomes() -> None:
    labels = [
        _label("a", "qualified", 0),  # a rep's opinion …
        _label("a", "lost", 1, "crm:hubspot"),  # … an early CRM status …
        _label("b", "disqualified", 2),  # a lead the CRM says nothing about
        _label("a", "won", 3, "crm:salesforce"),  # … and the deal closed: this one stands
        _label("a", "qualified", 4),  # a rep clicking after the close changes nothing
        _label("c", "won", 5, "crm:hubspot"),
    ]
    weighed = weigh(labels, crm_weight=2.5)
    assert weighed.weights == (0.0, 0.0, 1.0, 2.5, 0.0, 2.5)
    assert weighed.used == {"crm:hubspot": 1, "crm:salesforce": 1, "rep": 1}
    assert weighed.set_aside == 3


def _config(weight: float, *, every: int = 0) -> LeadbotConfig:
    learning = Learning(retrain_every=every, guardrails=Guardrails(min_labels=10))
    return replace(load_config(), learning=learning, crm=Crm(label_weight=weight))


async def _crm_outcomes(engine: AsyncEngine, leads: dict[str, LeadState], outcome: str) -> None:
    rows = [
        {
            "lead_id": lead, "outcome": outcome, "reason": None, "by": "crm:hubspot",
            "at": NOW + 60, "features": features_at(state, MODEL, NOW),
            "source": "crm:hubspot", "ref": f"{lead}:{outcome}",
        }
        for lead, state in leads.items()
    ]  # fmt: skip
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: links.insert_outcomes(c, rows=rows))


async def test_crm_outcomes_weigh_apart_and_replace_the_reps_labels(engine: AsyncEngine) -> None:
    states = await _seed(engine, leads=40, labels=40)
    closed = dict(list(states.items())[:8])  # 8 leads the reps judged, now won in HubSpot
    await _crm_outcomes(engine, closed, "won")
    async with engine.connect() as conn:
        X, y, _at, weighed = await conn.run_sync(
            lambda c: weighted_features(c, MODEL, crm_weight=3.0)
        )
    assert y.size == 48
    assert X.shape == (48, len(MODEL.rules))
    assert weighed.used == {"rep": 32, "crm:hubspot": 8}
    w = np.array(weighed.weights)
    assert sorted(set(w.tolist())) == [0.0, 1.0, 3.0]
    assert (y[w == 3.0] == 1).all()  # every CRM row is a won deal, weighing 3
    assert (w == 0).sum() == 8  # the reps' labels of those 8 leads

    result, _ = await retrain_now(
        engine=engine, config=_config(3.0), destinations=("console",), now=NOW + 120
    )
    assert result.version_id is not None
    assert result.proposal.labels == 48
    async with engine.connect() as conn:
        payload = (await conn.execute(select(OUTBOX.c.payload))).scalar_one()
    assert (
        "on 48 labels (32 from reps, 8 from HubSpot; 8 set aside for a lead's CRM outcome)"
        in (payload["text"])
    )
    assert (
        payload["sources"] == "32 from reps, 8 from HubSpot; 8 set aside for a lead's CRM outcome"
    )


async def test_the_weight_moves_the_refit(engine: AsyncEngine) -> None:
    states = await _seed(engine, leads=60, labels=30)
    # Won deals for leads no rep judged: the heavier they weigh, the more the model hears them.
    await _crm_outcomes(engine, dict(list(states.items())[30:45]), "won")
    light, _ = await retrain_now(
        engine=engine, config=_config(1.0), destinations=("console",), now=NOW + 120
    )
    heavy, _ = await retrain_now(
        engine=engine, config=_config(8.0), destinations=("console",), now=NOW + 180
    )
    assert light.proposal.model != heavy.proposal.model
    assert heavy.proposal.model.intercept > light.proposal.model.intercept


async def test_the_retrain_trigger_counts_crm_outcomes(engine: AsyncEngine) -> None:
    states = await _seed(engine, leads=40, labels=20)
    bot = Learner(
        engine=engine, config=_config(2.0, every=25), destinations=("console",),
        clock=lambda: NOW + 120,
    )  # fmt: skip
    assert await bot.run_once() is None  # 20 rep labels: not due
    await _crm_outcomes(engine, dict(list(states.items())[:5]), "lost")
    result = await bot.run_once()  # 20 + 5 CRM outcomes: due (5 rep labels set aside)
    assert result is not None
    assert (result.proposal.labels, dict(result.sources), result.set_aside) == (
        25,
        {"rep": 15, "crm:hubspot": 5},
        5,
    )
