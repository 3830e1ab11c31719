"""Block Kit rendering: real payloads, every button, state after a click, escaping, limits.

Payloads come from the real ``alert_payload`` over a real ``Score`` and lead reports from the
real ``lead_report`` over a real database, so a change to either shows up here. Slack's
limits are checked by slack_sdk's models (``to_dict`` validates), not re-implemented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.admin.leads import lead_summary
from bot.chat.lookup import lead_report
from bot.chat.messages import Action, DisqualifyReason, Reply
from bot.ingest.pipeline import Pipeline
from bot.outbox.messages import AlertMessage
from bot.slack import alert_blocks
from bot.slack.alert_blocks import AlertState, action_id
from bot.slack.blocks import MAX_BLOCKS, escape
from bot.slack.reply_blocks import reply_message
from bot.slack.views import REASON_ACTION, REASON_BLOCK, disqualify_modal
from config.loader import LeadbotConfig
from scoring import Model
from storage.engine import session_factory
from storage.tables import Feedback
from tests.bot.alert_samples import huge_model, sample_alert
from tests.bot.conftest import DAY, IDEAL, T0, events, identify, page, track

HOSTILE = ("<!channel>", "<@U123>", "<https://evil|click>", "AT&T")
NAME = " ".join(HOSTILE)
DATE = r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]*>"


def alert_message(payload: Mapping[str, Any], **options: Any) -> tuple[list[dict[str, Any]], str]:
    """The stored payload read back as the transport does, then rendered."""
    return alert_blocks.alert_message(AlertMessage.from_payload(payload), **options)


def _hostile_model(model: Model) -> Model:
    """Labels from config are outside data too."""
    return replace(model, rules=tuple(replace(r, label=f"{r.label} {NAME}") for r in model.rules))


def _strings(node: object) -> Iterator[str]:
    """Every string in a JSON value, keys excepted."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, Sequence):
        for item in node:
            yield from _strings(item)


def _texts(node: object) -> Iterator[dict[str, Any]]:
    """Every text object (plain_text or mrkdwn) in a JSON value."""
    if isinstance(node, Mapping):
        if node.get("type") in ("plain_text", "mrkdwn"):
            yield dict(node)
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _all_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(t["text"] for t in _texts(blocks))


def _assert_inert(blocks: object, text: str, *, mentions: Sequence[str] = ()) -> None:
    """No lead data opens a mention, link or date: every ``<…>`` is one of ours, every
    ``&`` an entity, every mrkdwn verbatim (no auto-linking or bare-mention parsing)."""
    for s in [*_strings(blocks), text]:
        for raw in set(HOSTILE) - set(mentions):
            assert raw not in s, (raw, s)
        assert not re.search(r"&(?!amp;|lt;|gt;)", s), s
        for token in re.findall(r"<[^>]*>", s):
            assert re.fullmatch(DATE, token) or token in mentions, token
    for t in _texts(blocks):
        if t["type"] == "mrkdwn":
            assert t.get("verbatim") is True, t


def _buttons(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        e["action_id"]: e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == "button"
    }


def test_an_alert_from_a_real_payload_has_the_issue_s_shape(config: LeadbotConfig) -> None:
    payload = sample_alert(config.model)
    blocks, text = alert_message(payload, crm_url="https://crm.example/leads/u1")
    assert [b["type"] for b in blocks][:3] == ["header", "section", "section"]
    head = blocks[0]["text"]
    assert head["type"] == "plain_text"
    assert head["text"].startswith("🔥 Dana Reyes · AcmeSoft — ")
    assert head["text"].endswith(f"— {payload['score']['total']:.0f}")
    sc = payload["score"]
    scores = blocks[1]["text"]["text"]
    assert f"Fit {sc['fit']:.0f} · grade {sc['grade']}" in scores
    assert f"Intent {sc['intent']:.0f} · engagement {sc['engagement']}/4" in scores
    assert f"p = {sc['probability']:.2f}" in scores
    why = blocks[2]["text"]["text"]
    assert "Demo Requested" in why
    assert re.search(DATE, why)
    assert "2026-03-02 09:03 UTC" in why
    body = _all_text(blocks)
    for c in payload["contributions"]:
        assert c["label"] in body
    assert "2 events, last <!date^" in body  # pricing, counted with its last time
    facts = next(b for b in blocks if b.get("fields"))
    assert "*Title*\nVP of Sales" in [f["text"] for f in facts["fields"]]
    assert "*E-mail*\ndana.reyes@gmail.com" in [f["text"] for f in facts["fields"]]
    assert text.startswith("Hot lead: Dana Reyes (AcmeSoft), score ")
    _assert_inert(blocks, text)


def test_negative_contributions_show_a_minus(config: LeadbotConfig) -> None:
    payload = sample_alert(config.model)
    negative = [c for c in payload["contributions"] if c["points"] < 0]
    assert negative, "the free-mail rule should have fired"
    body = _all_text(alert_message(payload)[0])
    for c in negative:
        assert f"`−{abs(c['points']):.1f}`  {c['label']}" in body
    assert "`+30.0`  Requested a demo" in body


def test_every_button_names_its_action_and_carries_the_lead_id(config: LeadbotConfig) -> None:
    # The config gives a template; the button links to this lead.
    blocks, _ = alert_message(sample_alert(config.model), crm_url="https://crm.example/{id}")
    buttons = _buttons(blocks)
    expected = {"lead_claim", "lead_qualify", "lead_disqualify", "lead_snooze"}
    assert {action_id(a) for a in Action} == expected
    assert set(buttons) == expected | {"lead_crm"}
    for name in expected:
        assert buttons[name]["value"] == "u1"
    assert buttons["lead_claim"]["style"] == "primary"
    assert buttons["lead_disqualify"]["style"] == "danger"
    assert buttons["lead_crm"]["url"] == "https://crm.example/u1"
    assert [buttons[n]["text"]["text"] for n in sorted(expected)] == [
        "Claim", "Disqualify", "Qualified", "Snooze",
    ]  # fmt: skip


def test_without_a_crm_url_there_is_no_crm_button(config: LeadbotConfig) -> None:
    assert "lead_crm" not in _buttons(alert_message(sample_alert(config.model))[0])


def test_a_claimed_alert_shows_who_and_keeps_only_the_claimer_s_buttons(
    config: LeadbotConfig,
) -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp()
    blocks, text = alert_message(
        sample_alert(config.model), state=AlertState(claimed_by="U123", claimed_at=at)
    )
    body = _all_text(blocks)
    assert f"Claimed by <@U123> at <!date^{int(at)}^" in body
    assert set(_buttons(blocks)) == {"lead_qualify", "lead_disqualify", "lead_snooze"}
    assert text.endswith("[claimed]")
    _assert_inert(blocks, text, mentions=["<@U123>"])


def test_an_outcome_replaces_the_buttons(config: LeadbotConfig) -> None:
    state = AlertState(
        claimed_by="U123", claimed_at=T0, outcome="disqualified", outcome_by="U123",
        reason="bad fit <!here>",
    )  # fmt: skip
    blocks, text = alert_message(sample_alert(config.model), state=state, crm_url="https://crm/u1")
    body = _all_text(blocks)
    assert "Disqualified by <@U123> — bad fit &lt;!here&gt;" in body
    assert set(_buttons(blocks)) == {"lead_crm"}
    assert text.endswith("[disqualified]")
    qualified, _ = alert_message(
        sample_alert(config.model), state=AlertState(outcome="qualified", outcome_by="U9ZZ")
    )
    assert "Qualified by <@U9ZZ>" in _all_text(qualified)
    assert not any(b["type"] == "actions" for b in qualified)


def test_a_snoozed_alert_says_until_when_and_keeps_its_buttons(config: LeadbotConfig) -> None:
    until = T0 + DAY
    blocks, _ = alert_message(sample_alert(config.model), state=AlertState(snoozed_until=until))
    assert f"Snoozed until <!date^{int(until)}^" in _all_text(blocks)
    assert "lead_claim" in _buttons(blocks)


def test_state_refuses_what_it_cannot_render_safely() -> None:
    with pytest.raises(ValueError, match=r"claimed_by: not a Slack user id: '<!channel>'"):
        AlertState(claimed_by="<!channel>")
    with pytest.raises(ValueError, match=r"outcome: expected one of qualified, .*got 'maybe'"):
        AlertState(outcome="maybe")


def test_lead_data_and_labels_are_escaped_in_every_field(config: LeadbotConfig) -> None:
    model = _hostile_model(config.model)
    payload = sample_alert(model, name=NAME, company=NAME, email=f"{NAME}@gmail.com")
    payload["why_now"]["name"] = NAME
    payload["facts"].append(("Source", NAME))
    blocks, text = alert_message(payload, state=AlertState(claimed_by="U999", reason=NAME))
    _assert_inert(blocks, text, mentions=["<@U999>"])
    assert escape("<!channel> & co") == "&lt;!channel&gt; &amp; co"
    assert "&lt;!channel&gt; &lt;@U123&gt;" in blocks[0]["text"]["text"]
    assert "AT&amp;T" in text


def test_a_name_cannot_forge_a_line() -> None:
    assert "\n" not in escape("Eve\n:raising_hand: Claimed by someone")


def test_a_huge_alert_stays_within_slack_s_limits(config: LeadbotConfig) -> None:
    payload = sample_alert(huge_model(), name="N" * 400, company="C&" * 300)
    assert len(payload["contributions"]) == 200
    blocks, text = alert_message(payload, crm_url="https://crm.example/u1")
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= 150
    assert blocks[0]["text"]["text"].endswith(f"— {payload['score']['total']:.0f}")
    for t in _texts(blocks):
        assert len(t["text"]) <= 3000
    body = _all_text(blocks)
    shown = len(re.findall(r"^`[+−]\d", body, re.MULTILINE))
    more = re.search(r"… and (\d+) more signals", body)
    assert more is not None
    assert shown + int(more.group(1)) == 200
    assert len(text) <= 3000


def test_the_modal_offers_every_disqualify_reason() -> None:
    view = disqualify_modal(lead_id="u1", lead_name=NAME, private_metadata='{"lead": "u1"}')
    assert view["type"] == "modal"
    assert view["private_metadata"] == '{"lead": "u1"}'
    reason = next(b for b in view["blocks"] if b.get("block_id") == REASON_BLOCK)
    options = reason["element"]["options"]
    assert reason["element"]["action_id"] == REASON_ACTION
    assert [o["value"] for o in options] == [r.value for r in DisqualifyReason]
    note = next(b for b in view["blocks"] if b.get("block_id") == "note")
    assert note["optional"] is True
    _assert_inert(view, "")


def test_a_plain_reply_is_one_escaped_section() -> None:
    blocks, text = reply_message(Reply(text="Stored: qualified for <!channel> & co"))
    assert len(blocks) == 1
    assert blocks[0]["type"] == "section"
    assert blocks[0]["text"]["text"] == "Stored: qualified for &lt;!channel&gt; &amp; co"
    assert text == blocks[0]["text"]["text"]


def test_an_error_reply_carries_a_warning() -> None:
    blocks, text = reply_message(Reply(text="usage: /lead score <email|id|name>", error=True))
    assert blocks[0]["text"]["text"] == "⚠️ usage: /lead score &lt;email|id|name&gt;"
    assert text.startswith("⚠️ usage")


def test_a_long_reply_is_split_and_stays_within_limits() -> None:
    blocks, _ = reply_message(Reply(text="\n".join(f"line {i} " + "z" * 80 for i in range(400))))
    assert 1 < len(blocks) <= MAX_BLOCKS
    assert all(len(t["text"]) <= 3000 for t in _texts(blocks))
    assert "line 0 " in _all_text(blocks)
    assert "line 399 " in _all_text(blocks)


def _summaries(n: int) -> list[dict[str, Any]]:
    class Row:  # the attributes lead_summary reads from a stored lead
        def __init__(self, i: int) -> None:
            self.id, self.email, self.name = f"u{i}", f"p{i}@x.com", f"{NAME} {i}"
            self.company, self.score, self.band = "AT&T", 100.0 - i / 10, "hot"
            self.grade, self.engagement, self.probability = "A", 4, 0.5

    return [lead_summary(Row(i)) for i in range(n)]


def test_a_ranked_list_shows_ten_rows_a_section() -> None:
    blocks, text = reply_message(Reply(text="Top 100 leads", leads=_summaries(100), title="Top"))
    assert blocks[0]["type"] == "header"
    rows = [b for b in blocks if b["type"] == "section"]
    assert len(rows) == 10
    assert all(len(b["text"]["text"].splitlines()) == 10 for b in rows)
    first = rows[0]["text"]["text"].splitlines()[0]
    assert first.startswith("1. *100.0* hot · A4 · &lt;!channel&gt;")
    assert first.endswith(" 0 · AT&amp;T")
    assert rows[-1]["text"]["text"].splitlines()[-1].startswith("100. ")
    _assert_inert(blocks, text)


def test_a_very_long_list_is_cut_with_a_count() -> None:
    blocks, _ = reply_message(Reply(text="Top", leads=_summaries(1000)))
    assert len(blocks) <= MAX_BLOCKS
    body = _all_text(blocks)
    shown = len(re.findall(r"^\d+\. ", body, re.MULTILINE))
    more = re.search(r"… and (\d+) more leads", body)
    assert more is not None
    assert shown + int(more.group(1)) == 1000


async def _report(engine: AsyncEngine, config: LeadbotConfig) -> dict[str, Any]:
    """A lead scored by the real pipeline, two feedback rows, read by ``lead_report``."""
    hostile = {**IDEAL, "name": NAME, "company": {**IDEAL["company"], "name": "AT&T"}}
    async with Pipeline(engine, config) as pipeline:
        await pipeline.ingest(events(identify("u1", T0, **hostile)), now=T0)
        await pipeline.ingest(events(page("u1", "/pricing", T0 + 60)), now=T0 + 60)
        await pipeline.ingest(events(track("u1", "Demo Requested", T0 + 120)), now=T0 + 120)
    async with session_factory(engine)() as session:
        for outcome, at in (("qualified", T0 + 200), ("won", T0 + 300)):
            when = datetime.fromtimestamp(at, UTC)
            session.add(Feedback(lead_id="u1", outcome=outcome, by="slack:U42", at=when))
        await session.commit()
        report = await _read(session, config)
    assert report is not None
    return report


async def _read(session: AsyncSession, config: LeadbotConfig) -> dict[str, Any] | None:
    return await lead_report(session, key="u1", model=config.model, now=T0 + 400)


async def test_a_lead_card_shows_score_signals_trend_and_feedback(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    report = await _report(sqlite_engine, config)
    blocks, text = reply_message(Reply(text="Dana: score", lead=report))
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"].endswith(f"— {report['score']:.0f}")
    body = _all_text(blocks)
    assert f"score *{report['score']:.1f}* · {report['matrix']}" in body
    assert "Requested a demo" in body
    assert "Visited pricing" in body
    assert "*Last activity* <!date^" in body
    last = report["history"][0]
    assert f"→ {last['score']:.1f} {last['band']}" in body
    assert "*Feedback* 2 so far; latest: won by <@U42>" in body
    assert text == "Dana: score"
    _assert_inert(blocks, text, mentions=["<@U42>"])


async def test_a_card_shows_only_the_top_five_signals(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    report = await _report(sqlite_engine, config)
    many = [{**report["contributions"][0], "label": f"Signal {i}"} for i in range(200)]
    blocks, _ = reply_message(Reply(text="x", lead={**report, "contributions": many}))
    body = _all_text(blocks)
    assert "Signal 4" in body
    assert "Signal 5" not in body
    assert "… and 195 more signals" in body
