"""The ingest writer child is supervised: killed with -9 under load, or unable to start,
it never wedges ingest, loses an acknowledged event or keeps the server from stopping."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.ingest.signatures import generate_secret
from bot.ingest.writer import IngestProcess, WriterStartError, WriterUnavailable
from config.loader import LeadbotConfig
from storage.engine import create_engine
from storage.ingest import EVENTS
from tests.bot.conftest import T0, events, track
from tests.bot.ingest.conftest import running_writer
from tests.live_server import LiveServer, signed_request

SECRET = generate_secret()
ANSWER_SECONDS = 15.0  # every request must be answered within this, 202 or 503


def _calls(n: int) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"type": "track", "userId": f"u{i % 50}", "event": "Demo Requested",
         "messageId": f"sup-{i}", "timestamp": now}
        for i in range(n)
    ]  # fmt: skip


async def _post(
    session: aiohttp.ClientSession, url: str, call: dict[str, Any]
) -> tuple[int, str | None]:
    body, headers = signed_request(SECRET, call, f"h-{call['messageId']}")
    async with session.post(url, data=body, headers=headers) as answer:
        await answer.read()
        return answer.status, answer.headers.get("Retry-After")


async def _load(
    server: LiveServer, calls: list[dict[str, Any]], outcomes: dict[str, int], workers: int = 12
) -> None:
    """Post every call once from ``workers`` connections; record each one's status."""
    queue = list(calls)
    timeout = aiohttp.ClientTimeout(total=ANSWER_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            while queue:
                call = queue.pop()
                status, retry_after = await _post(session, server.base + "/webhooks/events", call)
                assert status in (202, 503), status
                if status == 503:
                    assert retry_after is not None
                    assert int(retry_after) > 0
                outcomes[call["messageId"]] = status
                await asyncio.sleep(0.002)

        await asyncio.gather(*(worker() for _ in range(workers)))


async def _wait_writer(server: LiveServer, *, other_than: int | None, within: float) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pid = await asyncio.to_thread(server.writer_pid)
        if pid is not None and pid != other_than:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"the writer did not come back within {within:g} s")


async def _kill_writer_repeatedly(server: LiveServer, kills: int, recoveries: list[float]) -> None:
    rng = random.Random(11)
    pid = await _wait_writer(server, other_than=None, within=10)
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        pid = await _wait_writer(server, other_than=pid, within=10)
        recoveries.append(time.monotonic() - killed)


def _stored(db: Path) -> int:
    async def count() -> int:
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        async with engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(EVENTS))).scalar_one()
        await engine.dispose()
        return int(n)

    return asyncio.run(count())


async def test_killing_the_writer_under_load_loses_nothing_and_ingest_returns(
    tmp_path: Path,
) -> None:
    db = tmp_path / "leadbot.db"
    server = LiveServer(tmp_path, {"DATABASE_URL": f"sqlite+aiosqlite:///{db}",
                                   "LEADBOT_WEBHOOK_SECRET": SECRET}).start()  # fmt: skip
    try:
        calls = _calls(3000)
        outcomes: dict[str, int] = {}
        recoveries: list[float] = []
        await asyncio.gather(
            _load(server, calls, outcomes), _kill_writer_repeatedly(server, 3, recoveries)
        )
        assert len(outcomes) == len(calls)  # every request was answered in time
        assert len(recoveries) == 3
        assert max(recoveries) < 10
        acknowledged = [m for m, status in outcomes.items() if status == 202]
        refused = [m for m, status in outcomes.items() if status == 503]
        assert acknowledged  # the kills landed during the load
        assert refused
        # Ingest is back by itself: a re-send of everything is stored, acknowledged ones as
        # duplicates (nothing acknowledged was lost, nothing counted twice).
        again: dict[str, int] = {}
        await _load(server, calls, again)
        assert set(again.values()) == {202}
        stop_seconds = server.stop()
    finally:
        server.stop(signal.SIGKILL)
    assert stop_seconds < 15
    assert await asyncio.to_thread(_stored, db) == len(calls)
    log = server.log()
    assert log.count("Traceback") <= 3  # no traceback per failed request
    assert "the ingest writer process died" in log


async def test_sigterm_stops_the_server_while_the_writer_is_down(tmp_path: Path) -> None:
    db = tmp_path / "leadbot.db"
    server = LiveServer(tmp_path, {"DATABASE_URL": f"sqlite+aiosqlite:///{db}",
                                   "LEADBOT_WEBHOOK_SECRET": SECRET}).start()  # fmt: skip
    try:
        pid = await _wait_writer(server, other_than=None, within=10)
        os.kill(pid, signal.SIGKILL)
        assert server.stop() < 15
    finally:
        server.stop(signal.SIGKILL)


@pytest.fixture
def not_executable(tmp_path: Path) -> Path:
    path = tmp_path / "python-that-cannot-run"
    path.write_text("#!/bin/sh\nexit 1\n")
    path.chmod(0o600)  # no execute bit: exec fails even for root
    return path


async def test_a_writer_that_cannot_start_says_why_and_ingest_answers_at_once(
    tmp_path: Path,
    config: LeadbotConfig,
    not_executable: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running_writer(tmp_path, config) as writer:
        pid = writer.pid
        assert pid is not None
        writer.python = str(not_executable)
        try:
            os.kill(pid, signal.SIGKILL)
            with caplog.at_level(logging.ERROR, logger="bot.ingest.writer"):
                deadline = time.monotonic() + 5
                while "cannot start the ingest writer" not in caplog.text:
                    assert time.monotonic() < deadline, caplog.text
                    await asyncio.sleep(0.05)
            started = time.monotonic()
            with pytest.raises(WriterUnavailable):
                await writer.submit(events(track("u1", "Demo Requested", T0)))
            assert time.monotonic() - started < 0.5  # refused at once, not after a timeout
            assert not writer.alive
        finally:
            writer.python = sys.executable
        deadline = time.monotonic() + 15
        while not writer.alive:
            assert time.monotonic() < deadline, "the writer did not start again"
            await asyncio.sleep(0.05)
        assert writer.restarts >= 2
        assert (await writer.submit(events(track("u1", "Demo Requested", T0)))).accepted == 1


async def test_a_hung_writer_fails_its_requests_after_the_answer_timeout(
    tmp_path: Path, config: LeadbotConfig
) -> None:
    async with running_writer(tmp_path, config, answer_timeout=0.6) as writer:
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive, holding its socket, answering nothing
        try:
            started = time.monotonic()
            with pytest.raises(WriterUnavailable, match=r"did not answer within 0\.6 s"):
                await writer.submit(events(track("u1", "Pricing Viewed", T0 + 1)))
            assert 0.6 <= time.monotonic() - started < 2.0
        finally:
            os.kill(pid, signal.SIGCONT)
        # Awake again: its late answer is dropped, and the next request is answered.
        answered = await writer.submit(events(track("u2", "Demo Requested", T0 + 2)))
        assert answered.accepted == 1
        assert writer.pid == pid


async def test_an_interpreter_that_cannot_run_stops_the_start_with_why(
    tmp_path: Path, config: LeadbotConfig, not_executable: Path
) -> None:
    """At ``serve``'s start, a writer that cannot be executed is a clear start error (serve
    prints it and exits 1), not a traceback."""
    writer = IngestProcess(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", config=config)
    writer.python = str(not_executable)
    with pytest.raises(WriterStartError, match=f"the interpreter {not_executable} cannot be"):
        await writer.start()
    assert not writer.alive
