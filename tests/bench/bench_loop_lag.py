"""Does the event loop stay responsive while a model activation rescores every lead?

Run on demand: ``python -m tests.bench.bench_loop_lag [leads]`` (default 100,000, SQLite).
The whole bot runs in this process (``bot.app.build_app``, thread ingest, Slack against the
fake Web API). Leads are seeded straight into the table; then ``activate`` rescores them
all while

- a probe sleeps 10 ms in a loop and records how late it wakes (the loop's lag), and
- a signed webhook and a ``/lead`` slash command are sent shortly after the rescore starts.

Before the rescore moved off the loop (100,000 leads): max lag 3,271 ms, p99 94 ms, the
webhook answered at 5.03 s, after the rescore. After: see the commit that says so.

It prints the lag's max and p99, when each request was answered, and whether the rescore
was still running then. ``tests/bot/models/test_loop_lag.py`` runs the same with fewer leads
and asserts the behaviour (answered during the rescore), not the timings.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_app
from bot.ingest.signatures import sign
from bot.models.versions import Rescore, activate, ensure_active
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig, load_config
from config.writer import model_yaml
from scoring.model import Model
from storage import models as repo
from storage.ingest import upsert_leads
from tests.bot.models.test_versions import NOW, _row, _state
from tests.bot.slack_helpers import SIGNING_SECRET, WEBHOOK_SECRET, slack_settings
from tests.fakes.slack_api import FakeSlack

PROBE_SECONDS = 0.01
DISTINCT = 500  # distinct lead states, repeated under new ids: seeding stays fast


@dataclass
class LagProbe:
    """Sleeps ``PROBE_SECONDS`` in a loop; each wake-up's overshoot is one sample."""

    samples: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(PROBE_SECONDS)
            self.samples.append(time.perf_counter() - start - PROBE_SECONDS)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def max(self) -> float:
        return max(self.samples, default=0.0)

    def p99(self) -> float:
        ordered = sorted(self.samples)
        return ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0


@dataclass(frozen=True)
class Answered:
    status: int
    seconds: float  # after the rescore started
    during: bool  # the rescore was still running when the answer came


async def seed(engine: AsyncEngine, model: Model, leads: int) -> int:
    """``leads`` scored leads and a proposed version with every rule worth 5 points more;
    returns that version's number."""
    rng = random.Random(1)
    states = [_state(rng, model) for _ in range(DISTINCT)]
    templates = [_row("x", state, model) for state in states]
    rows = [{**templates[i % DISTINCT], "id": f"lead-{i}"} for i in range(leads)]
    bumped = replace(model, rules=tuple(replace(r, points=r.points + 5) for r in model.rules))

    def write(conn: Connection) -> int:
        upsert_leads(conn, rows=rows)
        ensure_active(conn, config_model=model, now=NOW)
        return repo.add_version(
            conn, yaml=model_yaml(bumped), status=repo.Status.PROPOSED, created_by="bench",
            created_at=datetime.fromtimestamp(NOW, UTC),
        )  # fmt: skip

    async with engine.begin() as conn:
        return await conn.run_sync(write)


@asynccontextmanager
async def running_bot(
    db_url: str, config: LeadbotConfig
) -> AsyncIterator[tuple[TestClient, FakeSlack]]:  # type: ignore[type-arg]
    async with FakeSlack(token="xoxb-test") as slack:
        settings = slack_settings(db_url, slack)
        app = build_app(settings=settings, config=config)
        async with TestClient(TestServer(app)) as client:
            yield client, slack


async def webhook(client: TestClient) -> int:  # type: ignore[type-arg]
    now = time.time()
    at = datetime.fromtimestamp(now, UTC).isoformat()
    call = {"type": "track", "userId": "lag-probe", "event": "Demo Requested",
            "messageId": f"lag-{now}", "timestamp": at}  # fmt: skip
    body = orjson.dumps({"batch": [call]})
    headers = sign(WEBHOOK_SECRET, body, msg_id=f"lag-{now}", timestamp=int(now))
    async with client.post("/webhooks/events", data=body, headers=headers) as resp:
        return resp.status


async def slash_command(client: TestClient, slack: FakeSlack) -> int:  # type: ignore[type-arg]
    body = urllib.parse.urlencode({
        "token": "legacy", "team_id": "T0TEAM", "channel_id": "C0SALES", "user_id": "U0REP1",
        "user_name": "rep", "command": "/lead", "text": "score lead-7", "trigger_id": "trig.lag",
        "response_url": slack.response_url("lag"), "api_app_id": "A0APP",
    })  # fmt: skip
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(signature),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with client.post("/slack/events", data=body.encode(), headers=headers) as resp:
        return resp.status


async def _timed(coro: AsyncIterator[int] | asyncio.Future[int] | object, started: float,
                 rescore: asyncio.Task[Rescore]) -> Answered:  # fmt: skip
    status = await coro  # type: ignore[misc]
    return Answered(status, time.perf_counter() - started, not rescore.done())


@dataclass(frozen=True)
class Measured:
    leads: int
    rescore_seconds: float
    probe: LagProbe
    webhook: Answered
    command: Answered


async def measure(db_url: str, leads: int, *, wait: float = 0.1) -> Measured:
    """Seed ``leads``, then activate the bumped version in the running bot; ``wait`` seconds
    into the rescore, send the webhook and the slash command."""
    config = load_config()
    async with running_bot(db_url, config) as (client, slack):
        engine = client.app[ENGINE]
        version = await seed(engine, config.model, leads)
        probe = LagProbe()
        probe.start()
        await asyncio.sleep(0.2)  # a few quiet samples first
        started = time.perf_counter()
        rescore = asyncio.create_task(
            activate(engine=engine, version_id=version, by="bench", now=time.time())
        )
        await asyncio.sleep(wait)
        hook, command = await asyncio.gather(
            _timed(webhook(client), started, rescore),
            _timed(slash_command(client, slack), started, rescore),
        )
        done = await rescore
        took = time.perf_counter() - started
        await probe.stop()
    return Measured(done.leads, took, probe, hook, command)


def report(m: Measured) -> str:
    def line(name: str, a: Answered) -> str:
        when = "during the rescore" if a.during else "after the rescore"
        return f"  {name}: {a.status} at {a.seconds:.2f} s ({when})\n"

    return (
        f"activation rescoring {m.leads:,} leads on SQLite: {m.rescore_seconds:.2f} s\n"
        f"  loop lag (10 ms probe, {len(m.probe.samples)} samples): "
        f"max {m.probe.max() * 1000:.0f} ms, p99 {m.probe.p99() * 1000:.0f} ms\n"
        + line("signed webhook", m.webhook)
        + line("/lead slash command", m.command)
    )


async def run(leads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        measured = await measure(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", leads)
    sys.stdout.write(report(measured))


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
