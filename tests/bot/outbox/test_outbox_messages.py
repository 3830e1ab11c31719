"""Typed outbox messages: every kind survives its row (``to_payload`` → JSON →
``decode``), and rows written before the types existed still decode and still deliver."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.codec import STORED_MAX
from bot.digest.data import Conversion, Digest, ModelHealth, Period, RepSpeed, Scope, ScopeKind
from bot.outbox.dispatcher import ConsoleTransport, Dispatcher
from bot.outbox.messages import (
    AlertMessage,
    AlertScore,
    Chart,
    CoolingMessage,
    DigestMessage,
    Kind,
    LeadRef,
    Message,
    ProposalMessage,
    RuleChange,
    Signal,
    SlaEscalation,
    SlaReminder,
    UnknownKind,
    WhyNow,
    decode,
)
from bot.slack.runtime import renderers
from bot.slack.transport import SlackTransport
from bot.teams.cards import card_for
from config.loader import LeadbotConfig
from storage.digests import HotEntry, HotLead, LeadName, Move
from storage.ingest import enqueue
from storage.outbox import Dead
from tests.bot.conftest import T0
from tests.bot.slack.test_slack_transport import Clock
from tests.fakes.slack_api import FakeSlack

words = st.text(max_size=12)
maybe = st.none() | words
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)
counts = st.integers(min_value=0, max_value=10**6)
leads = st.builds(LeadRef, id=words, email=maybe, name=maybe, company=maybe)
iso = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z"))
signals = st.builds(
    Signal, rule=words, label=words, group=words, points=numbers, weight=numbers, value=numbers,
    count=st.none() | counts, last_seen=st.none() | numbers, reading=st.none() | numbers,
)  # fmt: skip
alerts = st.builds(
    AlertMessage,
    lead=leads,
    score=st.builds(AlertScore, numbers, numbers, numbers, words, words, counts, numbers),
    why_now=st.builds(WhyNow, words, words, iso, st.lists(words, max_size=3).map(tuple)),
    contributions=st.lists(signals, max_size=4).map(tuple),
    facts=st.lists(st.tuples(words, words), max_size=3).map(tuple),
    actions=st.lists(words, max_size=4).map(tuple),
    at=iso,
)
waiting = {
    "lead": leads, "score": numbers, "band": words, "hours_waiting": numbers, "alerted_at": iso,
    "alerted_in": st.lists(words, max_size=3).map(tuple),
    "routed_to": st.lists(words, max_size=3).map(tuple), "text": words,
}  # fmt: skip
proposals = st.builds(
    ProposalMessage, version=counts, base=counts, labels=counts,
    changes=st.lists(st.builds(RuleChange, words, words, numbers, numbers), max_size=4).map(tuple),
    intercept=numbers, points_per_logodds=numbers, metrics=st.lists(words, max_size=3).map(tuple),
    improved=st.booleans(), text=words, decision=maybe,
)  # fmt: skip

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
names = st.builds(LeadName, id=words, name=maybe, email=maybe, company=maybe)


@st.composite
def digests(draw: st.DrawFn) -> Digest:
    start = draw(moments)
    end = start + draw(st.sampled_from([timedelta(days=1), timedelta(days=7)]))
    entries = st.builds(HotEntry, names, moments, numbers, maybe, st.none() | moments)
    conversions = st.lists(st.builds(Conversion, words, counts, counts), max_size=4).map(tuple)
    moves = st.lists(st.builds(Move, names, numbers, numbers, words), max_size=5).map(tuple)
    return Digest(
        period=Period(start, end),
        scope=draw(
            st.builds(
                Scope,
                st.sampled_from(list(ScopeKind)),
                words,
                st.lists(words, max_size=3).map(tuple),
            )
        ),
        now=end,
        sla_hours=draw(numbers),
        new_hot=tuple(draw(st.lists(entries, max_size=STORED_MAX + 5))),
        waiting=tuple(
            draw(
                st.lists(
                    st.builds(HotLead, names, numbers, st.none() | moments), max_size=STORED_MAX + 5
                )
            )
        ),
        funnel=tuple(draw(st.lists(st.tuples(words, counts), max_size=5))),
        by_band=draw(conversions),
        by_grade=draw(conversions),
        warnings=tuple(draw(st.lists(words, max_size=2))),
        reps=tuple(
            draw(
                st.lists(
                    st.builds(RepSpeed, words, counts, counts, st.none() | numbers), max_size=3
                )
            )
        ),
        heating=draw(moves),
        cooling=draw(moves),
        model=draw(
            st.builds(
                ModelHealth,
                st.none() | counts,
                words,
                st.none() | moments,
                counts,
                st.none() | numbers,
                st.lists(counts, max_size=3).map(tuple),
                st.lists(words, max_size=2).map(tuple),
            )
        ),
        hot_counts=tuple(draw(st.lists(st.tuples(moments, counts), max_size=7))),
        bucket=timedelta(days=1),
        outbox_dead=Dead(draw(counts), draw(st.none() | moments)),
    )


filled = st.text(min_size=1, max_size=12)  # a chart's names default when empty
charts = st.none() | st.builds(Chart, words, filled, filled, filled)
messages: st.SearchStrategy[Message] = st.one_of(
    alerts,
    st.builds(SlaReminder, **waiting),
    st.builds(SlaEscalation, **waiting),
    st.builds(CoolingMessage, leads, words, words, numbers, words),
    proposals,
)


def _through_a_row(message: Message) -> Message:
    """What a transport reads back: the payload as the database's JSON column holds it."""
    row = json.loads(json.dumps(message.to_payload()))
    return decode(str(message.kind), row)


@settings(max_examples=60, deadline=None)
@given(messages)
def test_every_kind_survives_its_outbox_row(message: Message) -> None:
    assert _through_a_row(message) == message


@settings(max_examples=30, deadline=None)
@given(digests(), charts)
def test_a_digest_survives_its_row_with_long_lists_cut_and_counted(
    digest: Digest, chart: Chart | None
) -> None:
    back = _through_a_row(DigestMessage(digest, chart))
    assert isinstance(back, DigestMessage)
    assert back.chart == chart
    assert back.digest == replace(
        digest, new_hot=digest.new_hot[:STORED_MAX], waiting=digest.waiting[:STORED_MAX],
        new_hot_total=len(digest.new_hot), waiting_total=len(digest.waiting),
    )  # fmt: skip
    assert back.digest.hot_count == len(digest.new_hot)
    assert _through_a_row(back) == back  # stable once stored


def test_an_unknown_kind_and_a_broken_payload_say_what_is_wrong() -> None:
    with pytest.raises(UnknownKind, match="outbox kind 'fax': not one of alert"):
        decode("fax", {})
    with pytest.raises(ValueError, match=r"sla_reminder payload: KeyError\('lead'\)"):
        decode(Kind.SLA_REMINDER, {"text": "hi"})


# --- rows written before the types existed ------------------------------------------------

OLD_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nold chart").decode()
OLD_DIGEST = {  # bot/digest/delivery.py's payload before typed messages
    "title": "Weekly digest — all leads",
    "text": "Weekly digest — all leads\nFunnel: new 3 → hot 1",
    "plain": "Weekly digest — all leads\n2026-02-23 09:00 → 2026-03-02 09:00 UTC\n\n"
    "Funnel: new 3 → hot 1",
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Funnel* new 3 → hot 1"}}],
    "chart": {
        "png_base64": OLD_PNG,
        "filename": "digest.png",
        "title": "Weekly digest",
        "alt": "Conversion by band",
    },
    "period": {
        "kind": "week",
        "start": "2026-02-23T09:00:00+00:00",
        "end": "2026-03-02T09:00:00+00:00",
    },
    "scope": {"kind": "all", "name": ""},
}
OLD_COOLING = {"lead": {"id": "u1", "email": None, "name": "Dana", "company": None},
               "from": "hot", "to": "warm", "score": 55.0, "text": "Dana is cooling down",
               "thread_of": {"lead_id": "u1"}}  # fmt: skip


def _row(kind: str, payload: dict[str, Any], destination: str) -> dict[str, Any]:
    return {"kind": kind, "lead_id": None, "destination": destination, "dedupe_key": kind,
            "payload": payload, "status": "pending", "attempts": 0, "available_at": T0,
            "created_at": T0}  # fmt: skip


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test", clock=Clock(T0)) as fake:
        yield fake


async def test_an_old_digest_row_still_delivers_to_slack_as_it_was_stored(
    sqlite_engine: AsyncEngine, fake: FakeSlack, config: LeadbotConfig
) -> None:
    async with sqlite_engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=[_row("digest", OLD_DIGEST, "slack:#m")]))
    clock = Clock(T0)
    slack = SlackTransport(token="xoxb-test", base_url=fake.url, renderers=renderers(config),
                           clock=clock, sleep=clock.sleep)  # fmt: skip
    assert await Dispatcher(sqlite_engine, slack, clock=clock).run_once() == 1
    [post] = fake.calls_to("chat.postMessage")
    assert post.body["text"] == OLD_DIGEST["text"]
    assert post.body["blocks"] == OLD_DIGEST["blocks"]
    [upload] = fake.uploads
    assert upload.content == base64.b64decode(OLD_PNG)


async def test_old_rows_still_print_on_the_console(sqlite_engine: AsyncEngine) -> None:
    rows = [_row("digest", OLD_DIGEST, "console"), _row("cooling", OLD_COOLING, "console")]
    async with sqlite_engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=rows))
    out = io.StringIO()
    clock = Clock(T0)
    assert await Dispatcher(sqlite_engine, ConsoleTransport(out), clock=clock).run_once() == 2
    printed = out.getvalue()
    assert "[digest] Weekly digest — all leads\n2026-02-23 09:00" in printed
    assert "[cooling] Dana is cooling down" in printed


def test_an_old_digest_row_becomes_a_teams_card_of_its_text() -> None:
    card = card_for(decode("digest", OLD_DIGEST))
    texts = [e["text"] for e in card["body"]]
    assert texts[0] == "Weekly digest — all leads"
    assert "Funnel: new 3 → hot 1" in texts
    assert card["fallbackText"] == "Weekly digest — all leads"
