"""``LEADBOT_REUSE_PORT=1``: several ``leadbot serve`` replicas on one machine share one port
(PostgreSQL), and the address keeps taking events while one of them stops; on SQLite the
setting is refused, since a SQLite file is for one process."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from bot.serve import REUSE_PORT_NEEDS_POSTGRES, serve
from config.loader import load_config
from config.settings import load_settings
from storage.engine import create_engine
from storage.ingest import EVENTS
from storage.migrate import upgrade
from tests.bench.bench_replicas import listening, start_replicas, stop_replicas
from tests.bench.servers import free_port
from tests.bot.conftest import SMALL_MODEL, T0, track

SECRET = "whsec_" + "cmV1c2UtcG9ydC1yZXBsaWNhcy1vbi1vbmUtcG9ydA=="


def test_sqlite_refuses_reuse_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(
        {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "LEADBOT_REUSE_PORT": "1"}
    )
    config = load_config(text=SMALL_MODEL, name="small.yaml")
    assert serve(settings, config, insecure=False, port=free_port()) == 2
    assert REUSE_PORT_NEEDS_POSTGRES in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()  # refused before anything started


async def _post(url: str, n: int) -> None:
    """``n`` signed events, each on a new connection (the kernel picks a replica per
    connection)."""
    for i in range(n):
        body = orjson.dumps(track(f"u{i % 7}", "Demo Requested", T0 + i))
        msg_id = f"msg_{time.time_ns()}_{i}"
        signed_at = datetime.now(UTC)  # one clock read: the header must carry the signed time
        signature = Webhook(SECRET).sign(msg_id, signed_at, body.decode())
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(signed_at.timestamp())),
                   "webhook-signature": signature, "content-type": "application/json"}  # fmt: skip
        connector = aiohttp.TCPConnector(force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(url, data=body, headers=headers) as answer,
        ):
            assert answer.status == 202, await answer.text()


@pytest.mark.postgres
async def test_two_replicas_share_one_port_and_one_stopping_loses_nothing(
    postgres_url: str, tmp_path: Path
) -> None:
    engine = create_engine(postgres_url)
    try:
        await upgrade(engine)
        port = free_port()
        replicas = start_replicas(postgres_url, 2, port, SECRET, tmp_path, ingest="thread")
        try:
            assert all(listening(r.pid, port) for r in replicas)
            await _post(replicas[0].url, 30)
            stop_replicas(replicas[:1])
            await _post(replicas[1].url, 10)  # the same address, served by the other
        finally:
            stop_replicas(replicas)
        async with engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(EVENTS))).scalar_one()
        assert count == 40
    finally:
        await engine.dispose()
