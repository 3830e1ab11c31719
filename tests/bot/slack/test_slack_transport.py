"""The outbox dispatcher delivering to Slack through SlackTransport, against the fake Slack
Web API at the wire and a real SQLite outbox: once, paced, retried, never lost."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox.dispatcher import Dispatcher
from bot.outbox.messages import AlertMessage, Message
from bot.slack.transport import SlackTransport
from storage.ingest import OUTBOX, enqueue
from storage.outbox import Claimed
from tests.bot.conftest import T0
from tests.bot.outbox.samples import sample_alert
from tests.fakes.clock import Clock
from tests.fakes.slack_api import FakeSlack

TOKEN = "xoxb-test"


def render(message: Message) -> tuple[list[dict[str, Any]], str]:
    """A stand-in for the Block Kit renderer: one section naming the lead."""
    assert isinstance(message, AlertMessage)
    lead = message.lead.id
    section = {"type": "section", "text": {"type": "mrkdwn", "text": f"*{lead}* is hot"}}
    return [section], f"Hot lead {lead}"


def alert(key: str, destination: str = "slack:C0ALERTS") -> dict[str, Any]:
    return {"kind": "alert", "lead_id": key, "destination": destination, "dedupe_key": key,
            "payload": sample_alert(key).to_payload(), "status": "pending", "attempts": 0,
            "available_at": T0, "created_at": T0}  # fmt: skip


async def queue(engine: AsyncEngine, *rows: dict[str, Any]) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: enqueue(c, rows=list(rows)))


async def outbox_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))
        return [dict(r) for r in result.mappings()]


class Posted:
    """An ``on_posted`` callback that remembers where each message landed."""

    def __init__(self) -> None:
        self.where: list[tuple[int, str, str]] = []

    async def __call__(self, message: Claimed, channel: str, ts: str) -> None:
        self.where.append((message.id, channel, ts))


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, clock=clock) as fake:
        yield fake


def transport(fake: FakeSlack, clock: Clock, **kwargs: Any) -> SlackTransport:
    kwargs.setdefault("token", TOKEN)
    return SlackTransport(
        base_url=fake.url, renderers={"alert": render}, clock=clock, sleep=clock.sleep, **kwargs
    )


def posted_texts(fake: FakeSlack) -> list[str]:
    return [c.body["text"] for c in fake.calls_to("chat.postMessage", ok_only=True)]


async def test_an_alert_is_posted_once_with_what_the_renderer_gave(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("lead-1"))
    on_posted = Posted()
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock, on_posted=on_posted), clock=clock)
    assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    [call] = fake.calls_to("chat.postMessage")
    blocks, text = render(sample_alert("lead-1"))
    assert call.body["channel"] == "C0ALERTS"
    assert (call.body["blocks"], call.body["text"]) == (blocks, text)
    assert (call.body["unfurl_links"], call.body["unfurl_media"]) == (False, False)
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    [(message_id, channel, ts)] = on_posted.where
    assert (message_id, channel) == (row["id"], "C0ALERTS")
    assert ("C0ALERTS", ts) in fake.messages


async def test_a_dm_destination_opens_the_conversation_first_and_once(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a", "slack:@U0REP"), alert("b", "slack:@U0REP"))
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 2
    assert [c.method for c in fake.calls] == [
        "conversations.open", "chat.postMessage", "chat.postMessage"
    ]  # fmt: skip
    [opened, *posts] = fake.calls
    assert opened.body["users"] == "U0REP"
    dm = posts[0].body["channel"]
    assert dm.startswith("D")
    assert all(p.body["channel"] == dm for p in posts)


async def test_a_500_to_a_post_is_retried_after_history_shows_it_is_not_there(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    fake.fail_next("chat.postMessage", status=500)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 0  # a 500 may come after Slack stored it
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["unsure"]) == ("pending", True)
    clock.now = row["available_at"].timestamp()
    assert await dispatcher.run_once() == 1
    assert [c.method for c in fake.calls] == [
        "chat.postMessage", "auth.test", "conversations.history", "chat.postMessage"
    ]  # fmt: skip
    history = fake.calls_to("conversations.history")[0].body
    assert history["channel"] == "C0ALERTS"
    assert history["include_all_metadata"] in ("1", "true", True)
    assert float(history["oldest"]) <= T0
    assert posted_texts(fake) == ["Hot lead a"]
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"], row["unsure"]) == ("sent", 2, False)


async def test_a_500_after_slack_stored_the_post_is_found_and_not_posted_again(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    fake.fail_after_storing_next("chat.postMessage", status=500)
    on_posted = Posted()
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock, on_posted=on_posted), clock=clock)
    assert await dispatcher.run_once() == 0
    [(channel, ts)] = list(fake.messages)
    assert fake.messages[(channel, ts)]["metadata"] == {
        "event_type": "leadbot_outbox", "event_payload": {"outbox_id": 1}
    }  # fmt: skip
    clock.now += 60
    assert await dispatcher.run_once() == 1
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert on_posted.where == [(1, channel, ts)]  # recorded as if the post had answered
    [row] = await outbox_rows(sqlite_engine)
    assert row["status"] == "sent"


async def test_other_methods_are_retried_in_place_after_a_500(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a", "slack:@U0REP"))
    fake.fail_next("conversations.open", status=500)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 1
    assert [c.status for c in fake.calls_to("conversations.open")] == [500, 200]


async def test_a_short_retry_after_is_waited_in_place(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    fake.rate_limit_next("chat.postMessage", retry_after=1)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 1
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert clock.sleeps == [1.0]


async def test_a_long_retry_after_reschedules_the_row_and_it_is_delivered_once_later(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    fake.rate_limit_next("chat.postMessage", retry_after=30)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["available_at"].timestamp() == pytest.approx(T0 + 30)
    assert "rate limited" in row["last_error"]
    clock.now = T0 + 29
    assert await dispatcher.run_once() == 0
    clock.now = T0 + 31
    assert await dispatcher.run_once() == 1
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert posted_texts(fake) == ["Hot lead a"]


async def test_a_minute_of_slack_errors_delays_every_alert_and_loses_or_doubles_none(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    # 500s, 503s and 429s (Retry-After 10) for 60 s: rows use up to 7 of the outbox's 8
    # attempts here; shorter Retry-Afters are the test below.
    destinations = ["slack:C0ALERTS", "slack:#sales", "slack:@U0REP"]
    keys = [f"lead-{i}" for i in range(12)]
    await queue(sqlite_engine, *(alert(k, destinations[i % 3]) for i, k in enumerate(keys)))
    fake.fail_for(60, status=(500, 429, 503, 500), retry_after=10)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    while clock.now < T0 + 600:
        await dispatcher.run_once()
        clock.now += 5
    rows = await outbox_rows(sqlite_engine)
    assert [r["status"] for r in rows] == ["sent"] * len(keys)
    assert Counter(posted_texts(fake)) == {f"Hot lead {k}": 1 for k in keys}
    # The outage's answers (an unsure row's history look-up in a channel the fake has not
    # seen a post in yet answers 200 channel_not_found, and is posted after it, once).
    failed = [c for c in fake.calls if c.status != 200]
    assert failed
    assert all(c.at < T0 + 60 for c in failed)
    assert all(c.at >= T0 + 60 for c in fake.calls if c.ok)


async def test_a_minute_of_short_rate_limits_loses_no_alert(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, *(alert(f"lead-{i}") for i in range(3)))
    fake.fail_for(60, status=429, retry_after=5)
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    while clock.now < T0 + 600:
        await dispatcher.run_once()
        clock.now += 5
    assert [r["status"] for r in await outbox_rows(sqlite_engine)] == ["sent"] * 3


async def test_a_bad_token_waits_names_slack_bot_token_and_goes_once_fixed(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    bad = transport(fake, clock, token="xoxb-revoked")
    assert await Dispatcher(sqlite_engine, bad, clock=clock).run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert (row["status"], row["attempts"], row["unsure"]) == ("pending", 1, False)
    assert "invalid_auth" in row["last_error"]
    assert "SLACK_BOT_TOKEN" in row["last_error"]
    clock.now += 3600  # the admin sets the right token and restarts
    assert await Dispatcher(sqlite_engine, transport(fake, clock), clock=clock).run_once() == 1
    assert posted_texts(fake) == ["Hot lead a"]
    assert [c.method for c in fake.calls] == ["chat.postMessage"] * 2  # refused: no look-up


async def test_a_channel_without_the_bot_waits_and_says_invite_the_bot(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a", "slack:#sales"))
    fake.error_next("chat.postMessage", "not_in_channel")
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert row["status"] == "pending"
    assert "invite the bot to #sales" in row["last_error"]
    clock.now = row["available_at"].timestamp()  # the bot was invited meanwhile
    assert await dispatcher.run_once() == 1
    assert posted_texts(fake) == ["Hot lead a"]


async def test_a_user_that_does_not_exist_is_dead_at_once(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a", "slack:@U0GONE"))
    fake.error_next("conversations.open", "user_not_found")
    assert await Dispatcher(sqlite_engine, transport(fake, clock), clock=clock).run_once() == 0
    [row] = await outbox_rows(sqlite_engine)
    assert row["status"] == "dead"
    assert "user_not_found" in row["last_error"]


async def test_posts_to_one_channel_are_paced_and_other_channels_are_not_held(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    plan = ["#sales", "#sales", "C0OTHER", "#sales", "C0OTHER", "#sales", "#sales"]
    await queue(sqlite_engine, *(alert(f"k{i}", f"slack:{c}") for i, c in enumerate(plan)))
    dispatcher = Dispatcher(sqlite_engine, transport(fake, clock), clock=clock)
    assert await dispatcher.run_once() == len(plan)
    posts = fake.calls_to("chat.postMessage", ok_only=True)
    sales = [c.at for c in posts if c.body["channel"] == "#sales"]
    assert sales == [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 4]
    assert sum(clock.sleeps) == pytest.approx(4)  # the other channel added no waiting


async def test_other_kinds_post_their_text_and_a_failing_callback_does_not_resend(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    digest = {**alert("digest-1"), "kind": "digest", "payload": {"text": "3 hot leads today"}}
    broken = {**alert("digest-2"), "kind": "digest", "payload": {"txt": "typo"}}
    await queue(sqlite_engine, digest, broken)

    async def on_posted(message: Claimed, channel: str, ts: str) -> None:
        raise RuntimeError("the alert-location table is locked")

    slack = transport(fake, clock, on_posted=on_posted)
    dispatcher = Dispatcher(sqlite_engine, slack, clock=clock)
    assert await dispatcher.run_once() == 1
    clock.now += 3600
    assert await dispatcher.run_once() == 0
    assert posted_texts(fake) == ["3 hot leads today"]
    sent, dead = await outbox_rows(sqlite_engine)
    assert (sent["status"], dead["status"]) == ("sent", "dead")
    assert "payload.text" in dead["last_error"]
    assert "None" in dead["last_error"]
    assert "on_posted failed" in caplog.text


async def test_the_api_url_comes_from_slack_api_url_when_not_given(
    sqlite_engine: AsyncEngine, fake: FakeSlack, clock: Clock
) -> None:
    await queue(sqlite_engine, alert("a"))
    environ = {"SLACK_API_URL": fake.url.rstrip("/")}
    slack = SlackTransport(token=TOKEN, renderers={"alert": render}, clock=clock, sleep=clock.sleep,
                           environ=environ)  # fmt: skip
    assert await Dispatcher(sqlite_engine, slack, clock=clock).run_once() == 1
    assert posted_texts(fake) == ["Hot lead a"]
