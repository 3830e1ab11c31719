"""A scaled rule's line in an alert: its points and the lead's number they were read from,
the same in the console, in Slack and in Teams, through the stored payload."""

from __future__ import annotations

import json

from bot.chat import plain
from bot.outbox.messages import AlertMessage, Signal
from bot.slack import alert_blocks
from bot.teams import alert_card
from scoring import LeadState, Model, Rule, RuleKind, Scale, score

CALLS = Scale(("call_seconds",), 60.0, 1200.0)
MODEL = Model(rules=(Rule("talk", "call_seconds, in proportion from 60 to 1,200", RuleKind.FIT,
                          30.0, scale=CALLS),))  # fmt: skip


def _payload(seconds: object) -> dict:  # type: ignore[type-arg]
    state = LeadState()
    state.identify({"call_seconds": seconds}, MODEL, 0.0)
    result = score(state, MODEL, 0.0)
    return {
        "lead": {"id": "u1", "email": "x@acme.com", "name": "Dana", "company": "Acme"},
        "score": {"total": result.total, "fit": result.fit, "intent": result.intent,
                  "band": "hot", "grade": "C", "engagement": 1, "probability": 0.4},
        "why_now": {"type": "identify", "name": "", "at": "2026-03-02T10:00:00Z"},
        "contributions": [c.to_dict() for c in result.contributions],
        "facts": [], "actions": ["claim"], "at": "2026-03-02T10:00:00Z",
    }  # fmt: skip


def _read_back(payload: dict) -> AlertMessage:  # type: ignore[type-arg]
    return AlertMessage.from_payload(json.loads(json.dumps(payload)))


def test_a_scale_line_shows_its_points_and_the_number_in_every_chat() -> None:
    alert = _read_back(_payload("630"))  # numbers sent as text read the same
    (signal,) = alert.contributions
    assert (signal.points, signal.value, signal.reading) == (15.0, 0.5, 630.0)
    assert Signal.from_json(signal.to_json()) == signal
    text = plain.render_alert(alert)
    assert any("+15.0" in line and line.endswith("(at 630)") for line in text.splitlines())
    blocks = json.dumps(alert_blocks.alert_message(alert)[0], ensure_ascii=False)
    assert "`+15.0`  call_seconds, in proportion from 60 to 1,200 · at 630" in blocks
    card = json.dumps(alert_card.alert_card(alert), ensure_ascii=False)
    assert "in proportion from 60 to 1,200 · at 630" in card  # call\\_seconds: escaped


def test_a_number_past_the_top_shows_as_sent_and_earns_the_whole_points() -> None:
    alert = _read_back(_payload(5_000_000))
    (signal,) = alert.contributions
    assert (signal.points, signal.reading) == (30.0, 5_000_000.0)
    assert "(at 5,000,000)" in plain.render_alert(alert)


def test_a_lead_without_the_number_gets_no_line() -> None:
    assert _read_back(_payload("n/a")).contributions == ()
