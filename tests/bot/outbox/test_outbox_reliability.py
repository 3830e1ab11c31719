"""The outbox under outages, crashes and racing replicas, against the fake Slack Web API and
the fake Bot Connector at the wire and real databases: every alert arrives, exactly once.

Time is a fake clock the dispatcher (and the transports' pacing) read; outages are real: the
fake server is stopped (connections refused) and started again on the same port.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.digest.content import Period, Scope, build_digest
from bot.digest.plain import render_text
from bot.outbox.dispatcher import BACKOFF_CAP, LEASE, ConsoleTransport, Dispatcher
from bot.slack.digest_blocks import digest_blocks
from bot.slack.runtime import build_slack
from bot.teams.digest_card import digest_card
from config.loader import load_config
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox import Claimed
from storage.posts import POSTS, find_post
from tests.bot.alert_samples import sample_alert as real_alert_payload
from tests.bot.conftest import SMALL_MODEL, T0
from tests.bot.slack import test_slack_transport as slack_t
from tests.bot.slack_helpers import slack_settings
from tests.bot.teams import test_teams_transport as teams_t
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.logs import logged, until_logged
from tests.outage import movable_database

OUTAGE = 600.0  # seconds


async def run_for(dispatcher: Dispatcher, clock: Any, seconds: float, step: float = 5) -> None:
    """Call ``run_once`` every ``step`` seconds of the fake clock."""
    end = clock.now + seconds
    while clock.now < end:
        await dispatcher.run_once()
        clock.now += step


async def cli(*argv: str) -> int:
    """``leadbot …`` as the operator runs it (its own event loop, in a thread here)."""
    return await asyncio.to_thread(main, list(argv))


@pytest.fixture
def clock() -> slack_t.Clock:
    return slack_t.Clock(T0)


@pytest.fixture
async def url(tmp_path: Path) -> str:
    """A migrated SQLite file; its URL (the CLI opens it by DATABASE_URL)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/leadbot.db"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return url


@pytest.fixture
async def engine(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(url)
    yield engine
    await engine.dispose()


async def statuses(engine: AsyncEngine) -> list[str]:
    return [r["status"] for r in await slack_t.outbox_rows(engine)]


@pytest.mark.parametrize("how", ["stopped", "5xx"])
async def test_a_ten_minute_slack_outage_delays_every_alert_and_doubles_none(
    engine: AsyncEngine, clock: slack_t.Clock, how: str
) -> None:
    keys = [f"lead-{i}" for i in range(6)]
    destinations = ["slack:C0ALERTS", "slack:@U0REP"]
    await slack_t.queue(
        engine, *(slack_t.alert(k, destinations[i % 2]) for i, k in enumerate(keys))
    )
    async with FakeSlack(token=slack_t.TOKEN, clock=clock) as fake:
        dispatcher = Dispatcher(engine, slack_t.transport(fake, clock), clock=clock)
        if how == "stopped":
            await fake.stop()  # connections refused
        else:
            fake.fail_for(OUTAGE, status=(500, 503, 502))
        await run_for(dispatcher, clock, OUTAGE)
        assert set(await statuses(engine)) == {"pending"}
        assert slack_t.posted_texts(fake) == []
        if how == "stopped":
            await fake.start()
        await run_for(dispatcher, clock, BACKOFF_CAP + 10)
        assert await statuses(engine) == ["sent"] * len(keys)
        assert Counter(slack_t.posted_texts(fake)) == {f"Hot lead {k}": 1 for k in keys}
        assert len(fake.messages) == len(keys)


async def test_a_ten_minute_teams_outage_delays_every_alert_and_doubles_none(
    engine: AsyncEngine, clock: slack_t.Clock
) -> None:
    async with FakeConnector() as fake:
        await teams_t.install(engine, teams_t.incoming(fake, teams_t.CHANNEL, "channel"))
        keys = [f"lead-{i}" for i in range(4)]
        await teams_t.queue(engine, *(teams_t.alert(k) for k in keys))
        dispatcher = teams_t.dispatcher(engine, clock)
        await fake.stop()
        await run_for(dispatcher, clock, OUTAGE)
        assert set(await statuses(engine)) == {"pending"}
        await fake.start()
        await run_for(dispatcher, clock, BACKOFF_CAP + 10)
        assert await statuses(engine) == ["sent"] * len(keys)
        assert Counter(teams_t.posted_leads(fake)) == {f"Hot lead {k}": 1 for k in keys}


async def test_a_teams_destination_without_a_reference_waits_then_dies_and_can_be_retried(
    url: str,
    engine: AsyncEngine,
    clock: slack_t.Clock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    later, never = "teams:user:aad-later", "teams:user:aad-never"
    await teams_t.queue(engine, teams_t.alert("a", later), teams_t.alert("b", never))
    async with FakeConnector() as fake:
        dispatcher = teams_t.dispatcher(engine, clock)
        await run_for(dispatcher, clock, 2 * 3600, step=60)  # two hours: only waiting
        assert await statuses(engine) == ["pending", "pending"]
        rows = await slack_t.outbox_rows(engine)
        assert "must open the bot in Teams" in rows[0]["last_error"]
        chat = "a:1on1-later"
        await teams_t.install(engine, teams_t.incoming(fake, chat, "personal", user="aad-later"))
        await run_for(dispatcher, clock, BACKOFF_CAP + 60, step=30)
        assert await statuses(engine) == ["sent", "pending"]
        assert teams_t.posted_leads(fake, chat) == ["Hot lead a"]

        await run_for(dispatcher, clock, 22 * 3600 + BACKOFF_CAP, step=600)
        assert await statuses(engine) == ["sent", "dead"]
        dead_id = rows[1]["id"]
        assert await cli("outbox", "list", "--status", "dead", "--json") == 0
        [listed] = json.loads(capsys.readouterr().out)
        assert (listed["id"], listed["destination"], listed["status"]) == (dead_id, never, "dead")
        assert listed["last_error"].startswith("gave up after 24 h: teams:user:aad-never: ")
        assert await cli("stats") == 0
        assert "Outbox: 1 dead (oldest queued 2026-03-02 09:00 UTC)" in capsys.readouterr().out

        assert await cli("outbox", "retry", str(rows[0]["id"])) == 1  # a sent one: never re-sent
        assert "left alone: it is sent, not dead" in capsys.readouterr().out
        assert await cli("outbox", "retry", "--all-dead") == 0
        assert f"1 message(s) back to pending: {dead_id}" in capsys.readouterr().out
        clock.now = time.time()  # the CLI stamped the retry with the real time
        other = "a:1on1-never"
        await teams_t.install(engine, teams_t.incoming(fake, other, "personal", user="aad-never"))
        await run_for(dispatcher, clock, 10)
        assert await statuses(engine) == ["sent", "sent"]
        assert teams_t.posted_leads(fake, other) == ["Hot lead b"]
        assert len(fake.calls_to("send", ok_only=True)) == 2


async def test_a_crash_after_slack_took_the_post_records_it_and_never_posts_twice(
    url: str, engine: AsyncEngine, clock: slack_t.Clock
) -> None:
    """The post reaches Slack, then the dispatcher dies before it hears back (the task is
    cancelled: the database is left as a kill -9 leaves it). After the lease a new
    dispatcher, with a new transport, finds the post in the channel's history and records
    it, so a click on it finds its alert."""
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    payload = real_alert_payload(config.model)  # rendered by the real Block Kit renderer
    await slack_t.queue(engine, slack_t.alert("u1", "slack:@U0REP") | {"payload": payload})
    async with FakeSlack(token=slack_t.TOKEN, clock=clock) as fake:
        settings = slack_settings(url, fake)
        first = build_slack(settings=settings, config=config, engine=engine, clock=clock)
        fake.hold_next("chat.postMessage")
        fake.received.clear()
        task = asyncio.create_task(Dispatcher(engine, first.transport, clock=clock).run_once())
        while not fake.calls_to("chat.postMessage"):
            await fake.received.wait()
            fake.received.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [row] = await slack_t.outbox_rows(engine)
        assert (row["status"], row["unsure"]) == ("sending", True)
        [(channel, ts)] = list(fake.messages)

        clock.now += LEASE.total_seconds() + 1
        second = build_slack(settings=settings, config=config, engine=engine, clock=clock)
        assert await Dispatcher(engine, second.transport, clock=clock).run_once() == 1
        assert len(fake.calls_to("chat.postMessage")) == 1
        [history] = fake.calls_to("conversations.history")
        assert history.body["channel"] == channel  # the DM conversations.open answered
        [row] = await slack_t.outbox_rows(engine)
        assert (row["status"], row["unsure"]) == ("sent", False)
        async with engine.connect() as conn:
            posts = (await conn.execute(select(POSTS))).mappings().all()
        assert [(p["outbox_id"], p["channel"], p["ts"]) for p in posts] == [
            (row["id"], channel, ts)
        ]
        async with session_factory(engine)() as session:
            clicked = await find_post(session, platform="slack", channel=channel, ts=ts)
        assert clicked is not None
        assert clicked.lead_id == "u1"
        assert json.loads(json.dumps(payload)) == clicked.payload  # the alert it was
        fake.release()


class Slow:
    """A transport that takes ``seconds`` per send and records every send."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[int] = []

    async def deliver(self, message: Claimed) -> None:
        await asyncio.sleep(self.seconds)
        self.sent.append(message.id)


async def test_two_dispatchers_with_a_slow_transport_never_send_a_message_twice(
    db_url: str,
) -> None:
    """Each send is longer than a third of the lease and a lane's batch longer than the
    lease: the lease of each message is renewed right before its send, so the rows
    waiting in one dispatcher's lane stay its own, and the other dispatcher leaves a
    destination alone while its lease is live."""
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        await upgrade(engines[0])
        now = time.time()
        rows = [slack_t.alert(f"lead-{i}", f"slack:C0{i % 4}")
                | {"created_at": now, "available_at": now} for i in range(16)]  # fmt: skip
        await slack_t.queue(engines[0], *rows)
        # A lease of 4 s, sends of 1.1 s: a lane's batch (4 sends, 4.4 s) outlives the lease,
        # and a send is 1.9 s inside the ¾-lease cut-off, room for a CI machine running the
        # suite in four workers (at 2 s and 0.55 s, 0.95 s of room, a lease ran out there).
        lease = LEASE / 30
        transports = [Slow(1.1), Slow(1.1)]
        dispatchers = [
            Dispatcher(e, t, clock=time.time, lease=lease, per_destination=4, max_lanes=n,
                       poll_seconds=0.05)
            for e, t, n in zip(engines, transports, (2, 2), strict=True)
        ]  # fmt: skip
        tasks = [asyncio.create_task(d.run()) for d in dispatchers]
        async with asyncio.timeout(30):
            while len(transports[0].sent + transports[1].sent) < 16:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a second send of anything would show by now
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sent = transports[0].sent + transports[1].sent
        assert all(t.sent for t in transports)  # both took part
        assert Counter(sent) == dict.fromkeys(range(1, 17), 1)
        rows = await slack_t.outbox_rows(engines[0])
        assert [r["status"] for r in rows] == ["sent"] * 16
        assert [r["attempts"] for r in rows] == [1] * 16  # no lease ran out
    finally:
        for e in engines:
            await e.dispose()


async def test_dead_messages_are_in_the_digests_health_section(engine: AsyncEngine) -> None:
    await slack_t.queue(engine, slack_t.alert("a") | {"status": "dead"}, slack_t.alert("b"))
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    now = T0 + 3600
    digest = await build_digest(
        engine, config=config, period=Period.last("day", now), scope=Scope.everyone(), now=now
    )
    line = "Outbox: 1 dead (oldest queued 2026-03-02 09:00 UTC) — run leadbot outbox list"
    plain = render_text(digest)
    assert plain.endswith(f"\n\n{line}")
    blocks, _ = digest_blocks(digest)
    assert blocks[-1]["elements"][-1]["text"] == line
    card = json.dumps(digest_card(digest), ensure_ascii=False)
    assert "Outbox: 1 dead" in card  # the card escapes Markdown in the rest
    assert "run leadbot outbox list" in card


async def test_a_database_outage_is_one_line_a_period_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The database goes away, then comes back: the loop says so in one line without a
    traceback, says when it delivers again, and delivers what was queued meanwhile."""
    printed = io.StringIO()
    caplog.set_level(logging.INFO, logger="bot.outbox.dispatcher")
    async with movable_database(tmp_path) as db:
        dispatcher = Dispatcher(db.engine, ConsoleTransport(printed), clock=time.time,
                                poll_seconds=0.02)  # fmt: skip
        db.take_away()
        task = asyncio.create_task(dispatcher.run())
        try:
            await until_logged(caplog, "outbox dispatcher failed")
            await asyncio.sleep(0.2)  # ~10 more failing rounds, all within the period
            db.put_back()
            await until_logged(caplog, "outbox dispatcher delivers again")
            notice = {"kind": "notice", "payload": {"text": "Hot lead back"}}
            await slack_t.queue(db.engine, slack_t.alert("back", "console") | notice)
            async with asyncio.timeout(10):
                while "Hot lead back" not in printed.getvalue():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    [failed] = logged(caplog, "outbox dispatcher failed")
    assert "unable to open database file" in failed.getMessage()
    assert not failed.exc_info
    [back] = logged(caplog, "outbox dispatcher delivers again")
    assert int(back.getMessage().split("after ")[1].split()[0]) >= 1  # the rounds it held back
