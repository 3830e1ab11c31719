"""Several replicas on one PostgreSQL never lose an update.

Real ``leadbot serve`` processes (each with its writer child) share a fresh PostgreSQL
database. Every round sends, for each of 120 leads, one signed event to every replica at the
same moment; a third of the leads start anonymous and are folded into a known lead by an
identify that races their page view. The result must equal a single-replica run of the same
events on a fresh database: the same leads, states, scores, bands, alerted or not, and the
same number of alert rows per lead (none doubled).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from bot.inbound import parse_body
from bot.pipeline import Pipeline
from bot.routing import Router
from config.loader import LeadbotConfig, load_config
from scoring import LeadState, score
from storage.engine import create_engine
from storage.ingest import LEADS, OUTBOX
from storage.migrate import upgrade
from tests.bench.servers import Server, free_port, leadbot_command
from tests.bot.conftest import SMALL_MODEL, call

pytestmark = pytest.mark.postgres

SECRET = "whsec_" + "cmVwbGljYXMtYXJlLXJhY2luZy1vbi1vbmUtZGI="
# No scheduled job: a decay sweep must not move scores while the runs are compared.
CONFIG = SMALL_MODEL + "schedules: []\n"
LEADS_N = 120
ROUNDS = 3
T = time.time() - 3_600  # event times: the same in both runs
TRAITS = [
    {"title": "VP Sales", "company": {"industry": "software"}},
    {"title": "Head of Growth"},
    {"company": {"industry": "saas"}},
    {"title": "Engineer", "company": {"industry": "retail"}},
]

Event = dict[str, Any]
Make = Callable[[int, int], Event]


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


def workload(replicas: int) -> list[list[list[Event]]]:
    """rounds → replica → the events it gets (one per lead, sent together)."""
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


def _start(url: str, config_path: Path, workdir: Path, n: int) -> list[Server]:
    """``n`` replicas started at once; returned when every one answers /healthz."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNECTIONS__"))}
    env |= {"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": SECRET,
            "LEADBOT_CONFIG": str(config_path), "LEADBOT_LOG_LEVEL": "WARNING"}  # fmt: skip
    servers = []
    for i in range(n):
        port = free_port()
        log_path = workdir / f"replica{i}.log"
        log = log_path.open("wb")
        command = [*leadbot_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        servers.append(Server(f"replica{i}", process, port, log_path, log))
    for server in servers:
        server.wait_ready()
    return servers


@pytest.fixture
def replica_dir(tmp_path: Path, config: LeadbotConfig) -> Path:
    (tmp_path / "replicas.yaml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def running(postgres_url: str, replica_dir: Path) -> Iterator[Callable[[int], list[Server]]]:
    started: list[Server] = []

    def start(n: int) -> list[Server]:
        started.extend(_start(postgres_url, replica_dir / "replicas.yaml", replica_dir, n))
        return started

    yield start
    for server in started:
        server.stop()


async def _post(http: aiohttp.ClientSession, server: Server, event: Event) -> None:
    body = orjson.dumps(event)
    msg_id = f"msg_{event['messageId']}"
    signature = Webhook(SECRET).sign(msg_id, datetime.now(UTC), body.decode())
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(time.time())),
               "webhook-signature": signature, "content-type": "application/json"}  # fmt: skip
    async with http.post(server.url, data=body, headers=headers) as answer:
        assert answer.status == 202, (answer.status, await answer.text(), server.log_tail())


async def _send_racing(servers: list[Server], rounds: list[list[list[Event]]]) -> None:
    """Each round: every replica's events at once, every lead's events side by side."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for per_replica in rounds:
            await asyncio.gather(
                *(
                    _post(http, servers[j], events[i])
                    for i in range(LEADS_N)
                    for j, events in enumerate(per_replica)
                )
            )


async def _reference(url: str, config: LeadbotConfig, rounds: list[list[list[Event]]]) -> None:
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
            alerts = dict(
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


@pytest.mark.parametrize("replicas", [2, 4])
async def test_racing_replicas_end_like_one_replica(
    replicas: int,
    running: Callable[[int], list[Server]],
    postgres_url: str,
    config: LeadbotConfig,
    tmp_path: Path,
) -> None:
    engine = create_engine(postgres_url)
    await upgrade(engine)  # once, before the replicas start side by side
    await engine.dispose()
    servers = running(replicas)
    rounds = workload(replicas)
    await _send_racing(servers, rounds)
    reference_url = f"sqlite+aiosqlite:///{tmp_path}/reference.db"
    await _reference(reference_url, config, rounds)

    at = time.time()
    got = await _snapshot(postgres_url, config, at)
    want = await _snapshot(reference_url, config, at)
    assert len(want) == LEADS_N
    assert sum(w["alert_rows"] for w in want.values()) > 10  # the workload does alert
    assert sorted(got) == sorted(want)
    wrong = {lid: (got[lid], want[lid]) for lid in want if not _same(got[lid], want[lid])}
    assert not wrong, f"{len(wrong)} of {LEADS_N} leads differ, e.g. {next(iter(wrong.items()))}"
