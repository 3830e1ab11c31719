"""``learning.weights``: a label's weight by its source and, for a rep's disqualification,
by its reason; the reasons the config accepts are the ones reps can click."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.messages import DisqualifyReason
from bot.models.discovered import with_new_rules
from bot.models.label_weights import reason_of, weigh
from bot.models.learning import retrain_now
from config.errors import ConfigError
from config.learning import REASONS, LabelWeights, Learning
from config.loader import DEFAULT_PATH, load_config
from scoring.discover import Discovery
from scoring.refit import Guardrails
from storage.labels import Label, labels_of
from storage.tables import Feedback
from tests.bot.models.test_versions import MODEL, NOW, _seed
from tests.scoring.test_scoring_discover import spam_leads

AT = datetime.fromtimestamp(NOW, UTC)
WEIGHTS = LabelWeights(
    sources={"rep": 2.0, "crm:hubspot": 5.0}, reasons={"bad timing": 0.5, "spam": 0.0}
)


def _label(lead: str, outcome: str, source: str = "rep", reason: str | None = None) -> Label:
    return Label(lead, outcome, AT, {}, source, 0, reason)


def test_a_label_weighs_by_its_source_and_its_disqualify_reason() -> None:
    labels = [
        _label("a", "qualified"),
        _label("b", "disqualified", reason="bad timing: after Q3"),
        _label("c", "disqualified", reason="spam"),
        _label("d", "disqualified", reason="no budget"),  # not named: × 1
        _label("e", "won", "crm:hubspot"),
        _label("f", "lost", "crm:salesforce"),  # a CRM not named: crm.label_weight
        _label("g", "disqualified", reason="we chatted, not now"),  # free text: no reason
    ]
    weighed = weigh(labels, 3.0, WEIGHTS)
    assert weighed.weights == (2.0, 1.0, 0.0, 2.0, 5.0, 3.0, 2.0)
    assert weighed.set_aside == 0  # a reason weighing 0 sets no label aside for a CRM outcome
    assert weighed.used == {"crm:hubspot": 1, "crm:salesforce": 1, "rep": 4}
    assert weigh(labels, 3.0).weights == (1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 1.0)  # no weights
    assert [reason_of(label) for label in labels[:3]] == [None, "bad timing", "spam"]


def test_the_config_names_the_reasons_reps_can_click() -> None:
    assert set(REASONS) == {reason.value for reason in DisqualifyReason}
    base = DEFAULT_PATH.read_text()
    text = base.replace(
        "  retrain_every: 50 ",
        "  weights: {sources: {rep: 2}, reasons: {Bad_Timing: 0.5}}\n"
        "  new_rules: {reasons: [spam, competitor]}\n  retrain_every: 50 ",
    )
    learning = load_config(text=text).learning
    assert learning.weights == LabelWeights({"rep": 2.0}, {"bad timing": 0.5})
    assert learning.discovery.reasons == ("spam", "competitor")
    bad = base.replace(
        "  retrain_every: 50 ", "  weights: {reasons: {cheap: 0}}\n  retrain_every: 50 "
    )
    with pytest.raises(ConfigError, match=r"learning\.weights\.reasons\.cheap: expected a "
                       r"disqualify reason: bad fit, .*, got 'cheap'"):  # fmt: skip
        load_config(text=bad)


async def test_a_refit_reads_each_labels_reason_and_weighs_it(engine: AsyncEngine) -> None:
    await _seed(engine, leads=60, labels=60)
    F = Feedback.__table__.c  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(update(Feedback.__table__).where(F.outcome == "disqualified")  # type: ignore[attr-defined]
                           .values(reason="spam"))  # fmt: skip
        labels = await conn.run_sync(lambda c: labels_of(c, outcomes=["qualified", "disqualified"]))
    spam = sum(label.reason == "spam" for label in labels)
    assert spam == sum(label.outcome == "disqualified" for label in labels) > 10
    learning = Learning(guardrails=Guardrails(min_labels=10), retrain_every=0,
                        weights=LabelWeights(reasons={"spam": 0.0}))  # fmt: skip
    config = replace(load_config(), learning=learning)
    result, _ = await retrain_now(engine=engine, config=config, destinations=(), now=NOW + 60)
    # with every disqualification weighing 0, one outcome is left: nothing to fit
    assert result.sources == {"rep": 60 - spam}
    assert result.version_id is None


def test_a_retrain_adds_the_negative_rules_of_a_configured_reason() -> None:
    snaps, y, reasons = spam_leads(800, seed=4)
    X = np.zeros((800, len(MODEL.rules)))
    at = NOW - np.arange(800)[::-1] * 60.0
    # one rule of each kind: the reason's rule is not the main selection's gmail rule again
    guard = Discovery(max_rules=1, reasons=("spam",))
    found = with_new_rules(MODEL, X, y, at, np.ones(800), snaps, guard, Guardrails(), reasons)
    assert [r.rule.label for r in found.rules] == [
        "Lead Source is Reference", "spam signal: email_domain is gmail.com",
    ]  # fmt: skip
    spam = [r for r in found.rules if r.rule.id == "spam_email_domain_gmail_com"]
    assert spam
    assert spam[0].rule.points < 0
    assert found.model.rule("spam_email_domain_gmail_com") == spam[0].rule
    j = [r.id for r in found.model.rules].index("spam_email_domain_gmail_com")
    gmail = [s["traits"]["email_domain"] == "gmail.com" for s in snaps]
    assert found.X[:, j].tolist() == [float(g) for g in gmail]
    without = with_new_rules(
        MODEL, X, y, at, np.ones(800), snaps, Discovery(), Guardrails(), reasons
    )
    assert not any(r.rule.label.startswith("spam signal") for r in without.rules)
