"""The alert both renderers' tests draw: Dana Reyes after pricing pages and a demo request
(free mail: a negative contribution), and a model big enough to test the size limits."""

from __future__ import annotations

from typing import Any

from bot.chat.alerts import WhyNow, alert_payload
from scoring import LeadState, score
from scoring.model import Condition, Model, Op, Rule, RuleKind
from tests.bot.conftest import IDEAL, T0


def sample_alert(
    model: Model, *, name: str = "Dana Reyes", company: str = "AcmeSoft", email: str = ""
) -> dict[str, Any]:
    traits = {
        **IDEAL,
        "name": name,
        "email": email or "dana.reyes@gmail.com",
        "company": {**IDEAL["company"], "name": company},
    }
    state = LeadState()
    state.identify(traits, model, T0)
    state.event("page", None, {"path": "/pricing"}, model, T0 + 60)
    state.event("page", None, {"path": "/pricing/team"}, model, T0 + 120)
    state.event("track", "Demo Requested", {}, model, T0 + 180)
    result = score(state, model, T0 + 200)
    lead = {"id": "u1", "email": traits["email"], "name": name, "company": company}
    why = WhyNow("track", "Demo Requested", T0 + 180, ("demo",))
    return alert_payload(lead=lead, traits=traits, score=result, why=why, now=T0 + 200)


def huge_model() -> Model:
    """200 rules with long labels, every one contributing: an alert at the size limits."""
    rules = [
        Rule(id=f"f{i}", label=f"Trait {i} " + "x" * 60, kind=RuleKind.FIT,
             points=(-1) ** i * (i + 1), conditions=(Condition(("title",), Op.EXISTS, True),))
        for i in range(100)
    ] + [
        Rule(id=f"i{i}", label=f"Visited {i} " + "y" * 60, kind=RuleKind.INTENT, points=1 + i,
             event_type="page", half_life_days=7)
        for i in range(100)
    ]  # fmt: skip
    return Model(rules=tuple(rules))
