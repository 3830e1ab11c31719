"""Orders sent as a shop sends them (signed webhooks), and the leadbot CLI read back: shared
by the RFM tests (the check scenario, the online-retail replay, the import)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.cli import main
from bot.ingest.signatures import generate_secret, sign
from bot.outbox.dispatcher import ConsoleTransport
from config.loader import LeadbotConfig
from config.settings import load_settings

SECRET = generate_secret()
DAY = 86_400.0
Client = TestClient[web.Request, web.Application]
_ids = itertools.count()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@contextlib.asynccontextmanager
async def shop(db_url: str, config: LeadbotConfig, **env: str) -> AsyncIterator[Client]:
    """The bot's HTTP app on ``db_url`` (thread ingest), for posting signed webhooks."""
    settings = load_settings({
        "DATABASE_URL": db_url, "LEADBOT_WEBHOOK_SECRET": SECRET, "LEADBOT_INGEST": "thread",
        **env,
    })  # fmt: skip
    app = build_app(settings=settings, config=config, transport=ConsoleTransport(io.StringIO()))
    async with TestClient(TestServer(app)) as client:
        yield client


async def post(client: Client, calls: Sequence[dict[str, Any]]) -> tuple[int, Any]:
    body = orjson.dumps({"batch": list(calls)})
    msg = f"msg_{next(_ids)}"
    headers = sign(SECRET, body, msg_id=msg, timestamp=int(time.time()))
    answer = await client.post("/webhooks/events", data=body, headers=headers)
    return answer.status, await answer.json()


def order(
    event: str, user: str, at: float, order_id: str, message_id: str | None = None, **props: Any
) -> dict[str, Any]:
    """A track call of a Segment e-commerce event by ``user`` (a userId)."""
    return {
        "type": "track", "event": event, "userId": user, "timestamp": iso(at),
        "messageId": message_id or f"o-{next(_ids)}",
        "properties": {"order_id": order_id, **props},
    }  # fmt: skip


def person(user: str, email: str, at: float) -> dict[str, Any]:
    return {
        "type": "identify", "userId": user, "traits": {"email": email}, "timestamp": iso(at),
        "messageId": f"i-{user}",
    }  # fmt: skip


async def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str,
    *argv: str, config: Path | None = None,
) -> tuple[int, str, str]:  # fmt: skip
    """``leadbot ARGV`` on ``db_url``: (exit status, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    if config is not None:
        monkeypatch.setenv("LEADBOT_CONFIG", str(config))
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def cli_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_url: str,
    *argv: str, config: Path | None = None,
) -> Any:  # fmt: skip
    code, out, err = await cli(monkeypatch, capsys, db_url, *argv, "--json", config=config)
    assert code == 0, err
    return orjson.loads(out)
