"""Several replicas on one PostgreSQL never lose an update.

Real ``leadbot serve`` replicas share a fresh PostgreSQL database. Every round sends, for
each of 120 leads, one signed event to every replica at the same moment; a third of the
leads start anonymous and are folded into a known lead by an identify that races their page
view. The result must equal a single-replica run of the same events on a fresh database:
the same leads, states, scores, bands, alerted or not, and the same number of alert rows
per lead (none doubled).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from bot.chat.routing import Router
from bot.ingest.inbound import parse_body
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig, load_config
from scoring import LeadState, score
from storage.engine import create_engine
from storage.ingest import LEADS, OUTBOX
from storage.migrate import upgrade
from tests.bench.servers import STOP_SECONDS, Server, free_port, leadbot_command
from tests.bot.conftest import SMALL_MODEL, call

pytestmark = pytest.mark.postgres

SECRET = "whsec_" + "cmVwbGljYXMtYXJlLXJhY2luZy1vbi1vbmUtZGI="
# No scheduled job: a decay sweep must not move scores while the runs are compared.
CONFIG = SMALL_MODEL + "schedules: []\n"
LEADS_N = 120
ROUNDS = 3
T = time.time() - 3_600  # event times: the same in both runs
TRAITS: list[dict[str, Any]] = [
    {"title": "VP Sales", "company": {"industry": "software"}},
    {"title": "Head of Growth"},
    {"company": {"industry": "saas"}},
    {"title": "Engineer", "company": {"industry": "retail"}},
]

Event = dict[str, Any]
Make = Callable[[int, int], Event]
Rounds = list[list[list[Event]]]  # round → replica → its events, one per lead


def _user(i: int) -> str:
    return f"u{i}"


def _identify(i: int, k: int) -> Event:
    domain = "gmail.com" if i % 5 == 0 else "acme.example"
    traits = {"email": f"{_user(i)}@{domain}", **TRAITS[i % len(TRAITS)]}
    return call("identify", T + k, userId=_user(i), anonymousId=f"a{i}", traits=traits)


def _demo(i: int, k: int) -> Event:
    return call("track", T + k, userId=_user(i), event="Demo Requested")


def _pricing(i: int, k: int) -> Event:
    return call("page", T + k, userId=_user(i), properties={"path": f"/pricing/{k}"})


def _anon_pricing(i: int, k: int) -> Event:
    return call("page", T + k, anonymousId=f"a{i}", properties={"path": f"/pricing/a{k}"})


def _anon_demo(i: int, k: int) -> Event:
    return call("track", T + k, anonymousId=f"a{i}", event="Demo Requested")


# Per kind of lead, the events of each round, one per replica in turn.
KNOWN: list[list[Make]] = [[_identify, _demo], [_pricing, _pricing], [_pricing, _demo]]
FOLDED: list[list[Make]] = [[_anon_pricing, _identify], [_anon_demo, _pricing], [_anon_pricing]]


def workload(replicas: int) -> Rounds:
    """Per round, the events each replica gets (one per lead, all sent together)."""
    out = []
    for r in range(ROUNDS):
        per = [[] for _ in range(replicas)]  # type: list[list[Event]]
        for i in range(LEADS_N):
            makes = (FOLDED if i % 3 == 0 else KNOWN)[r]
            for j in range(replicas):
                per[j].append(makes[(i + j) % len(makes)](i, 10 * r + j))
        out.append(per)
    return out


@pytest.fixture
def config() -> LeadbotConfig:
    return load_config(text=CONFIG, name="replicas.yaml")


def _start(url: str, workdir: Path, n: int, ingest: str) -> list[Server]:
    """``n`` ``leadbot serve`` replicas started at once (``LEADBOT_INGEST=ingest``); returned
    when each answers /healthz."""
    config_path = workdir / "replicas.yaml"
    config_path.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNECTIONS__"))}
    env |= {"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET,
            "LEADBOT_CONFIG": str(config_path), "LEADBOT_LOG_LEVEL": "WARNING",
            "LEADBOT_INGEST": ingest}  # fmt: skip
    servers = []
    for i in range(n):
        port = free_port()
        log_path = workdir / f"replica{i}.log"
        command = [*leadbot_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        log = log_path.open("wb")
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        servers.append(Server(f"replica{i}", process, port, log_path, log))
    try:
        for server in servers:
            server.wait_ready()
    except BaseException:
        _stop(servers)
        raise
    return servers


def _stop(servers: list[Server]) -> None:
    """SIGINT to every replica first, so they drain side by side; then reap each."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
    for server in servers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(STOP_SECONDS)
        server.stop()


@pytest.fixture
async def replicas(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path
) -> AsyncIterator[list[str]]:
    """``leadbot serve`` replicas on a migrated ``postgres_url``; their webhook URLs."""
    n, ingest = request.param
    await _migrated(postgres_url)  # once, before the replicas start side by side
    servers = _start(postgres_url, tmp_path, n, ingest)
    yield [server.url for server in servers]
    _stop(servers)


async def _post(http: aiohttp.ClientSession, url: str, event: Event) -> None:
    body = orjson.dumps(event)
    msg_id = f"msg_{event['messageId']}"
    signed_at = datetime.now(UTC)  # one clock read: the header must carry the signed time
    signature = Webhook(SECRET).sign(msg_id, signed_at, body.decode())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(signed_at.timestamp())),
               "webhook-signature": signature, "content-type": "application/json"}  # fmt: skip
    async with http.post(url, data=body, headers=headers) as answer:
        assert answer.status == 202, (url, answer.status, await answer.text())


async def _send_racing(urls: list[str], rounds: Rounds) -> None:
    """Each round: every replica's events at once, every lead's events side by side."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for per_replica in rounds:
            await asyncio.gather(
                *(
                    _post(http, urls[j], events[i])
                    for i in range(LEADS_N)
                    for j, events in enumerate(per_replica)
                )
            )


async def _reference(url: str, config: LeadbotConfig, rounds: Rounds) -> None:
    """The same events, one request at a time, through one pipeline."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        router = Router(config.routing)
        async with Pipeline(engine, config, router=router) as pipeline:
            for per_replica in rounds:
                for i in range(LEADS_N):
                    for events in per_replica:
                        body = orjson.dumps(events[i])
                        await pipeline.ingest(parse_body(body, now=time.time()), now=time.time())
    finally:
        await engine.dispose()


async def _snapshot(url: str, config: LeadbotConfig, at: float) -> dict[str, dict[str, Any]]:
    """Per lead: its state, its score at ``at`` from that state, the stored score and band,
    whether it was alerted, and its alert rows."""
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(LEADS))).mappings().all()
            alerts: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(OUTBOX.c.lead_id, func.count())
                        .where(OUTBOX.c.kind == "alert")
                        .group_by(OUTBOX.c.lead_id)
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    out = {}
    for row in rows:
        state = LeadState.from_dict(row["state"])
        out[row["id"]] = {
            "state": _rounded(row["state"]),
            "score_now": round(score(state, config.model, at, explain=False).total, 6),
            "score": row["score"],
            "band": row["band"],
            "alerted": row["alerted_at"] is not None,
            "alert_rows": alerts.get(row["id"], 0),
        }
    return out


def _same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Equal, but for the stored scores: each run scored at its own clock (intent decays
    by about 1e-4 points a minute here)."""
    rest = {k: v for k, v in got.items() if k != "score"}
    return rest == {k: v for k, v in want.items() if k != "score"} and (
        abs(got["score"] - want["score"]) < 0.01
    )


def _rounded(value: Any) -> Any:
    """Float sums may differ in the last bits with the order events arrived in."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


async def _migrated(url: str) -> None:
    """Migrate once, before replicas start side by side."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _compare(url: str, config: LeadbotConfig, rounds: Rounds, tmp_path: Path) -> None:
    """Every lead on ``url`` as a single replica leaves it after the same events."""
    reference_url = f"sqlite+aiosqlite:///{tmp_path}/reference.db"
    await _reference(reference_url, config, rounds)
    at = time.time()
    got = await _snapshot(url, config, at)
    want = await _snapshot(reference_url, config, at)
    assert len(want) == LEADS_N
    assert sum(w["alert_rows"] for w in want.values()) > 10  # the workload does alert
    assert sorted(got) == sorted(want)
    wrong = {lid: (got[lid], want[lid]) for lid in want if not _same(got[lid], want[lid])}
    assert not wrong, f"{len(wrong)} of {LEADS_N} leads differ, e.g. {next(iter(wrong.items()))}"


# Two replicas as deployed (each with its writer process); four with the ingest in the
# server process (LEADBOT_INGEST=thread, the same transaction), so the test starts four
# processes, not eight, on a small CI machine.
@pytest.mark.parametrize(
    "replicas", [(2, "process"), (4, "thread")], ids=["2-process", "4-thread"], indirect=True
)
async def test_racing_replicas_end_like_one_replica(
    replicas: list[str], postgres_url: str, config: LeadbotConfig, tmp_path: Path
) -> None:
    rounds = workload(len(replicas))
    await _send_racing(replicas, rounds)
    await _compare(postgres_url, config, rounds, tmp_path)
