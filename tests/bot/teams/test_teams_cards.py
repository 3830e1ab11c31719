"""Adaptive Cards for Teams: real payloads, every action, state after a click, escaping,
the 40 KB limit, proposals, follow-ups and digests.

Alert payloads come from the real ``alert_payload`` over a real ``Score``; lead reports from
the real pipeline and ``lead_report``; follow-ups from ``bot.jobs.sla.follow_ups`` and
``bot.jobs.decay.cooling_payload``; digests from a seeded database and the real chart. Every card
is checked structurally by ``_validate`` (schema 1.5, known element types, Execute actions
with a matching Submit fallback, unique ids, within ``MAX_CARD_BYTES``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.lookup import lead_report
from bot.chat.messages import DisqualifyReason, Reply
from bot.chat.plain import clean
from bot.digest.chart import render_chart
from bot.digest.delivery import digest_payload
from bot.ingest.pipeline import Pipeline
from bot.jobs.decay import cooling_payload
from bot.jobs.sla import Waiting, follow_ups
from bot.models.learning import describe
from bot.outbox.messages import (
    AlertMessage,
    CustomerAtRisk,
    DigestMessage,
    ProposalMessage,
    UnknownKind,
    decode,
)
from bot.teams import cards as teams
from bot.teams.card_parts import MAX_CARD_BYTES, CardTooLargeError, card, guard, text
from bot.teams.cards import crm_link, plain, reply_card, summary_text, text_card
from bot.teams.digest_card import digest_message_card
from config.loader import LeadbotConfig
from scoring import LeadState, score
from storage.engine import session_factory
from tests.bot.alert_samples import huge_model, sample_alert
from tests.bot.conftest import DAY, IDEAL, T0, events, identify, page, track
from tests.bot.digest.test_digest_content import digest_of, seed

HOSTILE = "**[click](http://evil)** {{DATE(2020-01-01)}}"
ESCAPED = r"\*\*\[click\]\(http://evil\)\*\* {\{DATE\(2020\-01\-01\)}}"
ELEMENTS = {"TextBlock", "FactSet", "Container", "Image", "Input.ChoiceSet", "Input.Text"}
ACTIONS = {"Action.Execute", "Action.Submit", "Action.ShowCard", "Action.OpenUrl"}
DATE = r"\{\{DATE\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, SHORT\)\}\}"
TIME = r"\{\{TIME\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\}\}"
CLAIMER = "teams:00000000-aaaa-bbbb-cccc-000000000001"


# --- helpers ----------------------------------------------------------------------------


# The renderers take typed messages; these read a stored payload first, as the transport
# does (``decode`` of the outbox row), so every card below comes from what a row holds.


def alert_card(payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    return teams.alert_card(AlertMessage.from_payload(payload), **options)


def proposal_card(payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    return teams.proposal_card(ProposalMessage.from_payload(payload), **options)


def followup_card(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    message = decode(kind, payload)
    assert not isinstance(message, AlertMessage | ProposalMessage | DigestMessage | CustomerAtRisk)
    return teams.followup_card(message)


def digest_card(payload: Mapping[str, Any]) -> dict[str, Any]:
    return digest_message_card(DigestMessage.from_payload(payload))


def card_for(kind: str, payload: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    try:
        message = decode(kind, payload)
    except UnknownKind:  # a kind newer than the code: its text (``TeamsTransport._card``)
        return text_card(str(payload["text"]))
    return teams.card_for(message, **options)


def _strings(node: object) -> Iterator[str]:
    """Every string value in a JSON value."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, Sequence):
        for item in node:
            yield from _strings(item)


def _shown(node: object) -> list[str]:
    """The text a reader sees: TextBlock texts and FactSet titles and values."""
    out: list[str] = []
    if isinstance(node, Mapping):
        if node.get("type") == "TextBlock":
            out.append(node["text"])
        if node.get("type") == "FactSet":
            out += [f"{f['title']} {f['value']}" for f in node["facts"]]
        for value in node.values():
            out += _shown(value)
    elif isinstance(node, list):
        for item in node:
            out += _shown(item)
    return out


def _body(card: Mapping[str, Any]) -> str:
    return "\n".join(_shown(card["body"]))


def _actions(card: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Top-level actions by verb (Execute), title (ShowCard) or type (OpenUrl)."""
    out = {}
    for a in card["actions"]:
        key = a.get("verb") or (a["title"] if a["type"] == "Action.ShowCard" else a["type"])
        out[key] = a
    return out


def _validate(card: Mapping[str, Any]) -> None:
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert isinstance(card["fallbackText"], str)
    assert card["fallbackText"]
    ids: list[str] = []
    _check_card(card, ids)
    assert len(ids) == len(set(ids)), ids
    assert len(json.dumps(card).encode()) <= MAX_CARD_BYTES


def _check_card(card: Mapping[str, Any], ids: list[str]) -> None:
    assert card["type"] == "AdaptiveCard"
    for element in card["body"]:
        _check_element(element, ids)
    for action in card.get("actions", []):
        _check_action(action, ids)


def _check_element(element: Mapping[str, Any], ids: list[str]) -> None:
    assert element["type"] in ELEMENTS, element["type"]
    if "id" in element:
        ids.append(element["id"])
    if element["type"] == "TextBlock":
        assert isinstance(element["text"], str)
        assert element["text"]
    if element["type"] == "FactSet":
        assert element["facts"]
        for fact in element["facts"]:
            assert set(fact) == {"title", "value"}
            assert all(isinstance(v, str) and v for v in fact.values())
    if element["type"] == "Container":
        for item in element["items"]:
            _check_element(item, ids)
    if element["type"] == "Image":
        assert element["url"].startswith("data:image/png;base64,")


def _check_action(action: Mapping[str, Any], ids: list[str]) -> None:
    assert action["type"] in ACTIONS, action["type"]
    assert action["title"]
    if action["type"] == "Action.Execute":
        assert action["verb"]
        assert isinstance(action["data"], dict)
        assert action["fallback"] == {
            "type": "Action.Submit", "title": action["title"], "data": action["data"],
        }  # fmt: skip
    if action["type"] == "Action.ShowCard":
        _check_card(action["card"], ids)
    if action["type"] == "Action.OpenUrl":
        assert action["url"].startswith(("https://", "http://"))


# --- alerts -----------------------------------------------------------------------------


def test_an_alert_from_a_real_payload_says_what_slack_says(config: LeadbotConfig) -> None:
    payload = sample_alert(config.model)
    card = alert_card(payload, crm_url="https://crm.example/leads/{id}")
    _validate(card)
    sc = payload["score"]
    head = card["body"][0]
    assert head["text"] == f"🔥 Dana Reyes · AcmeSoft — {sc['total']:.0f}"
    assert head["weight"] == "Bolder"
    body = _body(card)
    assert f"**Hot** · score **{sc['total']:.1f}**" in body
    assert f"Fit {sc['fit']:.0f} · grade {sc['grade']}" in body
    assert f"Intent {sc['intent']:.0f} · engagement {sc['engagement']}/4" in body
    assert re.search(rf"\*\*Why now:\*\* Demo Requested \(track\) — {DATE} {TIME}", body)
    assert "{{DATE(2026-03-02T09:03:00Z, SHORT)}}" in body
    assert "Matched: demo" in body
    for c in payload["contributions"]:
        assert plain(c["label"]) in body
    assert re.search(rf"Visited pricing · 2 events, last {DATE}", body)
    negative = [c for c in payload["contributions"] if c["points"] < 0]
    assert negative, "the free-mail rule should have fired"
    for c in negative:
        assert f"−{abs(c['points']):.1f} {plain(c['label'])}" in body
    assert "Title VP of Sales" in body
    assert "E-mail dana.reyes@gmail.com" in body
    assert card["fallbackText"].startswith("Hot lead: Dana Reyes (AcmeSoft), score ")
    assert _actions(card)["Action.OpenUrl"]["url"] == "https://crm.example/leads/u1"


def test_every_action_is_an_execute_with_a_submit_fallback(config: LeadbotConfig) -> None:
    card = alert_card(sample_alert(config.model))
    actions = _actions(card)
    assert list(actions) == ["lead_claim", "lead_qualify", "Disqualify", "lead_snooze"]
    for verb in ("lead_claim", "lead_qualify", "lead_snooze"):
        action = actions[verb]["data"]
        assert action == {"leadbot": "lead_action", "action": verb[5:], "lead_id": "u1"}
    assert [a["title"] for a in card["actions"]] == ["Claim", "Qualified", "Disqualify", "Snooze"]
    assert "Action.OpenUrl" not in actions  # no CRM template, no link


def test_disqualify_asks_the_reason_in_the_card(config: LeadbotConfig) -> None:
    show = _actions(alert_card(sample_alert(config.model)))["Disqualify"]
    assert show["type"] == "Action.ShowCard"
    reason, note = show["card"]["body"]
    assert reason["type"] == "Input.ChoiceSet"
    assert reason["id"] == "reason"
    assert reason["isRequired"] is True
    assert [c["value"] for c in reason["choices"]] == [r.value for r in DisqualifyReason]
    assert note["type"] == "Input.Text"
    assert note["id"] == "note"
    assert not note.get("isRequired")
    [submit] = show["card"]["actions"]
    assert submit["verb"] == "lead_disqualify"
    assert submit["data"] == {"leadbot": "lead_action", "action": "disqualify", "lead_id": "u1"}
    assert submit["fallback"]["data"] == submit["data"]


def test_a_claim_shows_who_and_when_and_removes_claim(config: LeadbotConfig) -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp()
    state = {"claimed_by": CLAIMER, "claimed_at": at, "outcome": None, "snoozed_until": None}
    named = alert_card(sample_alert(config.model), state={**state, "names": {CLAIMER: "Ana Ruiz"}})
    _validate(named)
    assert "🙋 Claimed by Ana Ruiz at {{DATE(2026-03-02T09:30:00Z, SHORT)}}" in _body(named)
    assert list(_actions(named)) == ["lead_qualify", "Disqualify", "lead_snooze"]
    assert named["fallbackText"].endswith("(claimed)")
    unnamed = alert_card(sample_alert(config.model), state=state)
    assert "Claimed by a rep at" in _body(unnamed)
    from_slack = alert_card(sample_alert(config.model), state={**state, "claimed_by": "slack:U1"})
    assert "Claimed by a Slack user at" in _body(from_slack)
    assert "U1" not in _body(from_slack)


def test_an_outcome_leaves_only_the_crm_link(config: LeadbotConfig) -> None:
    state = {
        "claimed_by": CLAIMER, "claimed_at": T0, "outcome": "disqualified",
        "outcome_by": CLAIMER, "outcome_by_name": "Ana *Ruiz*", "reason": "bad fit: " + HOSTILE,
    }  # fmt: skip
    card = alert_card(sample_alert(config.model), state=state, crm_url="https://crm/{email}")
    _validate(card)
    assert f"🚫 **Disqualified** by Ana \\*Ruiz\\* — bad fit: {ESCAPED}" in _body(card)
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"]
    assert card["actions"][0]["url"] == "https://crm/dana.reyes@gmail.com"
    assert card["fallbackText"].endswith("(disqualified)")


def test_a_snoozed_alert_says_until_when_and_keeps_its_actions(config: LeadbotConfig) -> None:
    card = alert_card(sample_alert(config.model), state={"snoozed_until": T0 + DAY})
    assert re.search(rf"💤 Snoozed until {DATE} {TIME}", _body(card))
    assert "lead_claim" in _actions(card)


def test_a_state_it_cannot_show_is_refused(config: LeadbotConfig) -> None:
    with pytest.raises(ValueError, match=r"state.outcome: expected one of qualified, .*'maybe'"):
        alert_card(sample_alert(config.model), state={"outcome": "maybe"})


def test_crm_links_quote_the_lead_s_values() -> None:
    lead = {"id": "a/b?c", "email": None}
    assert crm_link("https://crm/{id}", lead) == "https://crm/a%2Fb%3Fc"
    assert crm_link("https://crm/?e={email}", lead) is None
    assert crm_link(None, lead) is None


def test_lead_data_never_becomes_markup(config: LeadbotConfig) -> None:
    model = replace(
        config.model,
        rules=tuple(replace(r, label=f"{r.label} {HOSTILE}") for r in config.model.rules),
    )
    payload = sample_alert(model, name=HOSTILE, company=HOSTILE, email=f"{HOSTILE}@x.com")
    payload["why_now"]["name"] = HOSTILE
    payload["facts"].append(("Source", HOSTILE))
    card = alert_card(payload, state={"claimed_by": CLAIMER, "names": {CLAIMER: HOSTILE}})
    _validate(card)
    assert card["body"][0]["text"].startswith(f"🔥 {ESCAPED} · {ESCAPED} — ")
    for s in _strings(card):
        assert HOSTILE not in s
        rest = re.sub(rf"{DATE}|{TIME}", "", s)
        assert "{{" not in rest, s
        assert not re.search(r"(?<!\\)[\[\]]|(?<!\\)\(http", rest), s


_ESCAPES = re.compile(r"\\.")


@given(st.text())
def test_plain_leaves_no_markup_and_loses_nothing(value: str) -> None:
    out = plain(value)
    bare = _ESCAPES.sub("", out)
    assert not re.search(r"[\\*_\[\]()#>+!`\-]", bare)
    assert "{{" not in out
    # No list marker: the dot or parenthesis right after leading digits is escaped. (Checked
    # on the output itself: removing escapes from "0\\.." would leave a "0." it never shows.)
    assert not re.match(r"\s*\d+[.)]", out)
    assert _ESCAPES.sub(lambda m: m.group()[1], out) == clean(value)
    assert "\n" not in out
    assert "\r" not in out


def test_a_huge_alert_stays_under_40_kb(config: LeadbotConfig) -> None:
    payload = sample_alert(huge_model(), name="N" * 500, company="C*" * 250)
    assert len(payload["contributions"]) == 200
    card = alert_card(payload, crm_url="https://crm.example/{id}")
    _validate(card)
    assert card["body"][0]["text"].endswith(f"— {payload['score']['total']:.0f}")
    shown = sum(
        len(e["facts"]) for e in card["body"] if e["type"] == "FactSet" and
        e["facts"][0]["title"][0] in "+−"
    )  # fmt: skip
    more = re.search(r"… and (\d+) more signals", _body(card))
    assert more is not None
    assert shown > 0
    assert shown + int(more.group(1)) == 200


def test_the_size_guard_names_the_card_and_the_limit() -> None:
    huge = card([text("x" * MAX_CARD_BYTES)], summary="x")
    with pytest.raises(CardTooLargeError, match=r"alert card: \d+ bytes of JSON, over .* 40000"):
        guard(huge, "alert")


# --- proposals --------------------------------------------------------------------------


def _proposal(*, improved: bool = True, changes: int = 2) -> dict[str, Any]:
    """A proposal payload as ``bot.models.learning.proposal_payload`` writes it."""
    return {
        "version": 3, "base": 2, "labels": 40,
        "changes": [
            {"rule": f"r{i}", "label": f"Rule {i} {HOSTILE}", "old": 10.0, "new": 12.5 - 3 * i}
            for i in range(changes)
        ],
        "intercept": -2.5, "points_per_logodds": 20.0,
        "metrics": ["ROC AUC: 0.700 → 0.750", "hot conversion: 40% of 10 → 50% of 10"],
        "improved": improved,
        "text": "Model v3 proposed: a refit of v2 on 40 labels, 2 rule(s) changed. Approve or "
        "reject it.",
    }  # fmt: skip


def test_a_proposal_shows_rule_changes_metrics_and_two_verbs() -> None:
    card = proposal_card(_proposal())
    _validate(card)
    body = _body(card)
    assert card["body"][0]["text"] == "Model v3 proposed"
    assert f"▲ Rule 0 {ESCAPED} 10 → **12.5**" in body
    assert f"▼ Rule 1 {ESCAPED} 10 → **9.5**" in body
    assert "ROC AUC: 0.700 → 0.750" in body
    approve, reject = card["actions"]
    assert (approve["verb"], approve["title"], approve["style"]) == (
        "model_approve", "Approve", "positive",
    )  # fmt: skip
    assert approve["data"] == {"leadbot": "model", "version": 3, "action": "approve"}
    assert reject["verb"] == "model_reject"
    assert reject["data"] == {"leadbot": "model", "version": 3, "action": "reject"}
    assert proposal_card(_proposal(improved=False))["actions"][0]["title"] == "Approve anyway"


def test_after_a_decision_the_buttons_give_way_to_it() -> None:
    card = proposal_card(_proposal(), decision="Model v3 rejected by Ana. The active model stays.")
    _validate(card)
    assert card["actions"] == []
    assert "Model v3 rejected by Ana. The active model stays." in _body(card)
    assert card["fallbackText"].endswith("The active model stays.")
    applied = card_for("model_applied", {**_proposal(), "decision": "Model v3 applied"})
    _validate(applied)
    assert applied["body"][0]["text"] == "Model v3 applied"
    assert applied["actions"] == []


def test_a_proposal_with_many_rules_is_shortened() -> None:
    card = proposal_card(_proposal(changes=600))
    _validate(card)
    assert re.search(r"… and \d+ more rules", _body(card))


def test_describe_s_people_render_inertly() -> None:
    from bot.models.learning import Decision

    decision = Decision(3, approved=False, done=True, by=CLAIMER, status="rejected")
    text_ = describe(decision, lambda ref: "Ana" if ref == CLAIMER else str(ref))
    assert "rejected by Ana" in _body(proposal_card(_proposal(), decision=text_))


# --- replies ----------------------------------------------------------------------------


async def _report(engine: AsyncEngine, config: LeadbotConfig) -> dict[str, Any]:
    """A lead scored by the real pipeline, one judgement by a Teams rep."""
    from storage.tables import Feedback

    hostile = {**IDEAL, "name": HOSTILE, "company": {**IDEAL["company"], "name": "AT&T"}}
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(identify("u1", T0, **hostile)), now=T0)
        await pipeline.ingest(events(page("u1", "/pricing", T0 + 60)), now=T0 + 60)
        await pipeline.ingest(events(track("u1", "Demo Requested", T0 + 120)), now=T0 + 120)
    async with session_factory(engine)() as session:
        when = datetime.fromtimestamp(T0 + 200, UTC)
        session.add(Feedback(lead_id="u1", outcome="qualified", by=CLAIMER, at=when))
        await session.commit()
        report = await lead_report(session, key="u1", model=config.model, now=T0 + 400)
    assert report is not None
    return report


async def test_a_lead_reply_shows_score_signals_trend_and_feedback(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    report = await _report(sqlite_engine, config)
    card = reply_card(Reply(text="Dana: score", lead=report))
    _validate(card)
    body = _body(card)
    assert card["body"][0]["text"] == f"{ESCAPED} · AT&T — {report['score']:.0f}"
    assert "**Top signals**" in body
    assert re.search(rf"Trend ↗ .* → {report['score']:.1f} hot {DATE}", body)
    assert re.search(rf"Feedback 1 so far; latest: qualified by a rep, {DATE}", body)
    assert card["fallbackText"] == "Dana: score"


def test_plain_error_and_ranked_replies() -> None:
    plain_card = reply_card(Reply(text="Logged.\nThanks " + HOSTILE))
    _validate(plain_card)
    assert [e["text"] for e in plain_card["body"]] == ["Logged.", f"Thanks {ESCAPED}"]
    error = reply_card(Reply(text="Usage: /lead score <email>", error=True))
    assert error["body"][0]["text"] == "⚠️ Usage: /lead score <email\\>"
    assert error["body"][0]["color"] == "Attention"
    leads = [
        {"id": f"l{i}", "name": HOSTILE, "email": None, "company": "Acme", "score": 90.0 - i,
         "band": "hot", "grade": "A", "engagement": 3, "probability": 0.9}
        for i in range(300)
    ]  # fmt: skip
    ranked = reply_card(Reply(text="Top leads", leads=leads, title="Top 300"))
    _validate(ranked)
    rows = next(e for e in ranked["body"] if e["type"] == "FactSet")["facts"]
    assert rows[0] == {"title": "1.", "value": f"**90.0** hot · A3 · {ESCAPED} · Acme"}
    more = re.search(r"… and (\d+) more leads", _body(ranked))
    assert more is not None
    assert len(rows) + int(more.group(1)) == 300


def test_a_very_long_text_is_cut_with_a_count() -> None:
    card = card_for("notice", {"text": "\n".join(f"line {i} " + "z" * 400 for i in range(5000))})
    _validate(card)
    assert re.search(r"… and \d+ more lines", _body(card))


async def test_a_digest_reply_lays_out_every_section(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    card = reply_card(Reply(text="digest", digest=digest))
    _validate(card)
    body = _body(card)
    assert card["body"][0]["text"].startswith("Weekly digest")
    for heading in ("New hot leads", "Conversion by band", "Alert → claim", "Heating up"):
        assert f"**{heading}" in body
    assert not any(e["type"] == "Image" for e in card["body"])


# --- follow-ups and digests -------------------------------------------------------------


def _waiting(hours: float) -> tuple[Waiting, float]:
    alerted = datetime.fromtimestamp(T0, UTC)
    lead = {"id": "u1", "email": "d@acme.test", "name": HOSTILE, "company": "Acme"}
    waiting = Waiting(lead, 81.0, "hot", alerted, ("teams:conversation:19:abc", "slack:#sales"),
                      ("U1", "U2"))  # fmt: skip
    return waiting, T0 + hours * 3600


def test_sla_reminders_and_escalations_from_real_payloads(config: LeadbotConfig) -> None:
    waiting, now = _waiting(100)
    rows = {row["kind"]: row["payload"] for row in follow_ups(waiting, config, now)}
    reminder = card_for("sla_reminder", rows["sla_reminder"])
    _validate(reminder)
    assert f"**Still waiting:** {ESCAPED} (Acme) is hot (score 81.0)" in _body(reminder)
    assert "Alerted in Slack \\#sales, a Teams conversation · routed to 2 reps" in _body(reminder)
    escalation = card_for("sla_escalation", rows["sla_escalation"])
    _validate(escalation)
    assert escalation["body"][0]["text"] == f"SLA missed: {ESCAPED}"
    assert "has waited **4.2 days** since its alert" in _body(escalation)


def test_a_cooling_notice(config: LeadbotConfig) -> None:
    lead = {"id": "u1", "email": None, "name": HOSTILE, "company": None}
    result = score(LeadState(), config.model, T0)
    card = followup_card("cooling", cooling_payload(lead, result))
    _validate(card)
    assert f"❄️ {ESCAPED} is cooling down: hot → {result.band}" in _body(card)
    with pytest.raises(UnknownKind, match="outbox kind 'nope': not one of alert, sla_reminder"):
        followup_card("nope", {})


async def _digest_payload(engine: AsyncEngine, config: LeadbotConfig) -> dict[str, Any]:
    await seed(engine)
    digest = await digest_of(engine, config)
    return digest_payload(digest, render_chart(digest))


async def test_a_digest_with_a_chart_that_fits(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    payload = await _digest_payload(sqlite_engine, config)
    small = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 2000).decode()
    card = digest_card({**payload, "chart": {**payload["chart"], "png_base64": small}})
    _validate(card)
    [image] = [e for e in card["body"] if e["type"] == "Image"]
    assert image["url"] == f"data:image/png;base64,{small}"
    assert image["altText"].startswith("Conversion by band")
    assert "did not fit" not in _body(card)
    assert "**New hot leads: " in _body(card)


async def test_a_digest_whose_chart_does_not_fit_says_where_it_is(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    payload = await _digest_payload(sqlite_engine, config)
    big = base64.b64encode(bytes(range(256)) * 160).decode()  # 40 KB of PNG
    card = digest_card({**payload, "chart": {**payload["chart"], "png_base64": big}})
    _validate(card)
    assert not any(e["type"] == "Image" for e in card["body"])
    assert "leadbot digest \\-\\-png" in _body(card)
    real = card_for("digest", payload)  # the real chart: in the card only if it fits
    _validate(real)
    has_image = any(e["type"] == "Image" for e in real["body"])
    assert has_image != ("did not fit" in _body(real))


async def test_a_crowded_digest_is_shortened(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    from storage.digests import HotEntry, LeadName

    await seed(sqlite_engine)
    digest = await digest_of(sqlite_engine, config)
    entry = digest.new_hot[0]
    many = tuple(
        HotEntry(LeadName(f"z{i}", HOSTILE + "x" * 400, None, "&Co"), entry.at, 80.0, None, None)
        for i in range(500)
    )
    crowded = replace(digest, new_hot=many, waiting=digest.waiting * 200,
                      bucket=timedelta(days=1))  # fmt: skip
    card = digest_card(digest_payload(crowded, render_chart(crowded)))
    _validate(card)
    assert re.search(r"… and 4\d\d more leads", _body(card))
    assert "New hot leads: 500" in _body(card)
    assert HOSTILE not in json.dumps(card)


def test_card_for_knows_every_kind_and_refuses_a_textless_stranger(
    config: LeadbotConfig,
) -> None:
    alert = card_for("alert", sample_alert(config.model), crm_url="https://crm/{id}")
    _validate(alert)
    assert alert["actions"][-1]["url"] == "https://crm/u1"
    assert card_for("proposal", _proposal())["actions"]
    _validate(card_for("notice", {"text": HOSTILE}))
    with pytest.raises(KeyError):  # a stranger with no text: the transport's test says the rest
        card_for("mystery", {})


def test_the_summary_for_notifications_is_plain_text(config: LeadbotConfig) -> None:
    card = alert_card(
        sample_alert(config.model, name="Jean-Luc *Picard*"), state={"outcome": "won"}
    )
    assert card["fallbackText"].startswith("Hot lead: Jean\\-Luc \\*Picard\\* (AcmeSoft)")
    assert summary_text(card).startswith("Hot lead: Jean-Luc *Picard* (AcmeSoft), score ")
    assert summary_text(card).endswith("(won)")
