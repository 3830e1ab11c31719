"""Per-destination delivery: a busy, paced or rate-limited destination holds back only
itself, one destination's messages keep their order, and two dispatchers sharing one
database never post a row twice. Slack is the fake Web API at the wire; databases are
real (SQLite and PostgreSQL where the fixture says ``engine``/``db_url``)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.outbox.dispatcher import Dispatcher
from bot.slack.transport import SlackTransport
from storage import outbox as repo
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bot.conftest import T0
from tests.bot.slack import test_slack_transport as slack_t
from tests.fakes.slack_api import Call, FakeSlack


def alert(key: str, channel: str, at: float) -> dict[str, Any]:
    """A message to ``channel`` whose text the transport posts as it is (no renderer: what
    is tested here is delivery, not rendering)."""
    return slack_t.alert(key, f"slack:{channel}") | {
        "kind": "notice", "payload": {"text": f"Hot lead {key}"},
        "created_at": at, "available_at": at,
    }  # fmt: skip


def posts_to(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage", ok_only=True)
            if c.body["channel"] == channel]  # fmt: skip


def outbox_id(call: Call) -> int:
    metadata = call.body["metadata"]
    return int(metadata["event_payload"]["outbox_id"])


async def until(condition: Callable[[], bool], *, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (the fake's calls are a list, not an event)
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(*dispatchers: Dispatcher) -> AsyncIterator[None]:
    """Each dispatcher's background loop, as ``serve`` runs it, stopped on the way out."""
    tasks = [asyncio.create_task(d.run()) for d in dispatchers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_an_alert_to_another_channel_is_not_held_behind_a_busy_paced_one(
    sqlite_engine: AsyncEngine,
) -> None:
    """Real time and Slack's real pacing (one post a second per channel): ten alerts to
    #busy, then one to #other; #other is posted at once, #busy keeps its order and pace."""
    async with FakeSlack(token=slack_t.TOKEN) as fake:  # the fake stamps calls by monotonic
        transport = SlackTransport(token=slack_t.TOKEN, base_url=fake.url,
                                   renderers={})  # fmt: skip
        dispatcher = Dispatcher(sqlite_engine, transport, clock=time.time)
        now = time.time()
        await slack_t.queue(sqlite_engine, *(alert(f"b{i}", "#busy", now) for i in range(10)))
        async with running(dispatcher):
            queued = time.monotonic()
            await slack_t.queue(sqlite_engine, alert("other", "#other", now))
            dispatcher.wake()  # as the pipeline does after its commit
            await until(lambda: bool(posts_to(fake, "#other")), seconds=5)
            await until(lambda: len(posts_to(fake, "#busy")) >= 3, seconds=5)
        [other] = posts_to(fake, "#other")
        assert other.at - queued < 1.0  # measured: about 0.02 s (was 9.1 s, one at a time)
        busy = posts_to(fake, "#busy")
        assert [c.body["text"] for c in busy] == [f"Hot lead b{i}" for i in range(len(busy))]
        gaps = [b.at - a.at for a, b in itertools.pairwise(busy)]
        assert all(gap >= 0.9 for gap in gaps)  # #busy's pacing was in force throughout


async def test_one_destinations_messages_go_in_order_and_each_once(
    engine: AsyncEngine,
) -> None:
    """On the fake clock (pacing sleeps move it, so only #busy may sleep): every message of
    #busy in the order it was queued, one second apart, and #other's once."""
    clock = slack_t.Clock(T0)
    plan = ["#busy"] * 4 + ["#other"] + ["#busy"] * 6
    await slack_t.queue(engine, *(alert(f"k{i}", c, T0) for i, c in enumerate(plan)))
    async with FakeSlack(token=slack_t.TOKEN, clock=clock) as fake:
        dispatcher = Dispatcher(engine, slack_t.transport(fake, clock), clock=clock)
        assert await dispatcher.run_once() == len(plan)
        busy = posts_to(fake, "#busy")
        assert [c.body["text"] for c in busy] == [
            f"Hot lead k{i}" for i, c in enumerate(plan) if c == "#busy"
        ]
        assert [c.at - busy[0].at for c in busy] == [float(i) for i in range(10)]
        [other] = posts_to(fake, "#other")
        assert other.body["text"] == "Hot lead k4"  # how soon: the real-time test above
    rows = await slack_t.outbox_rows(engine)
    assert [r["status"] for r in rows] == ["sent"] * len(plan)


async def test_a_rate_limited_channel_holds_back_only_itself(
    sqlite_engine: AsyncEngine,
) -> None:
    clock = slack_t.Clock(T0)
    async with FakeSlack(token=slack_t.TOKEN, clock=clock) as fake:
        dispatcher = Dispatcher(sqlite_engine, slack_t.transport(fake, clock), clock=clock)
        await slack_t.queue(sqlite_engine, alert("a", "#limited", T0))
        fake.rate_limit_next("chat.postMessage", retry_after=30)
        assert await dispatcher.run_once() == 0  # told to wait 30 s: back to the outbox
        await slack_t.queue(sqlite_engine, alert("b", "#limited", T0), alert("c", "#free", T0))
        assert await dispatcher.run_once() == 1
        assert [c.body["text"] for c in posts_to(fake, "#free")] == ["Hot lead c"]
        assert posts_to(fake, "#limited") == []  # not asked again before its Retry-After
        clock.now = T0 + 31
        assert await dispatcher.run_once() == 2
        assert [c.body["text"] for c in posts_to(fake, "#limited")] == ["Hot lead a", "Hot lead b"]
        assert len(fake.calls_to("chat.postMessage")) == 4  # one 429, three posts


async def test_two_dispatchers_delivering_per_destination_never_post_a_row_twice(
    db_url: str,
) -> None:
    """Two replicas (each its engine and Slack transport, paced per channel) share one
    database: 5 channels × 6 alerts, plus the claim of a replica that died holding #dead's
    messages. Every row is posted once; #dead's are taken over after that lease, and the
    dead replica's claim can no longer start a send."""
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        await upgrade(engines[0])
        now = time.time()
        channels = ["#a", "#b", "#c", "#d", "#dead"]
        rows = [alert(f"{c}-{i}", c, now) for i in range(6) for c in channels]
        await slack_t.queue(engines[0], *rows)
        # 2 s, not 1: a lane's send and its marks must fit in a lease even on a box running
        # four test workers on two cores (1 s ran out once there).
        lease = timedelta(seconds=2)
        async with engines[0].begin() as conn:  # the replica that dies right after claiming
            stale = await repo.claim(
                conn, now=datetime.fromtimestamp(now, UTC), lease=lease, limit=3,
                destination="slack:#dead",
            )  # fmt: skip
        async with FakeSlack(token=slack_t.TOKEN) as fake:
            seen = [slack_t.Posted(), slack_t.Posted()]
            dispatchers = [
                Dispatcher(
                    engine,
                    SlackTransport(
                        token=slack_t.TOKEN,
                        base_url=fake.url,
                        pace_seconds=0.02,
                        renderers={},
                        on_posted=on_posted,
                    ),
                    clock=time.time,
                    lease=lease,
                    poll_seconds=0.05,
                    claim_limit=2,
                    per_destination=2,
                    max_lanes=2,
                )
                for engine, on_posted in zip(engines, seen, strict=True)
            ]
            async with running(*dispatchers):
                ok = lambda: len(fake.calls_to("chat.postMessage", ok_only=True)) >= len(rows)  # noqa: E731
                await until(ok, seconds=10)
                await asyncio.sleep(0.2)  # time for a double post to show, were there one
            posted = Counter(outbox_id(c) for c in fake.calls_to("chat.postMessage"))
        assert posted == dict.fromkeys(range(1, len(rows) + 1), 1)
        assert all(s.where for s in seen)  # both replicas delivered
        rows_now = await slack_t.outbox_rows(engines[0])
        assert [r["status"] for r in rows_now] == ["sent"] * len(rows)
        taken_over = {r["id"]: r["attempts"] for r in rows_now if r["id"] in {m.id for m in stale}}
        assert all(attempts == 2 for attempts in taken_over.values())
        later = datetime.fromtimestamp(time.time(), UTC)
        async with engines[0].begin() as conn:
            assert not await repo.start(conn, stale[0], until=later + lease)
    finally:
        for e in engines:
            await e.dispose()
