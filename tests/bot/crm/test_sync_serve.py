"""Scores reach HubSpot on their own from a real ``leadbot serve``: a hot lead's score, band and
reasons, as ``leadbot lead`` shows them, with the token as a bearer token; through a HubSpot
outage and a killed server, nothing is lost — it only arrives later."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession

from bot.ingest.signatures import generate_secret, sign
from tests.fakes.hubspot_api import FakeHubSpot
from tests.live_server import LiveServer

TOKEN = "pat-na1-e2e"
SECRET = generate_secret()
EMAIL = "ines@northwind.example"
WAIT = 30.0  # seconds a score may take to reach the fake


@pytest.fixture
def hubspot_token() -> str:
    return TOKEN  # the fake HubSpot (tests/bot/crm/conftest.py) takes this one


def env_for(tmp: Path, hub: FakeHubSpot) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'crm.db'}",
        "LEADBOT_WEBHOOK_SECRET": SECRET,
        "HUBSPOT_ACCESS_TOKEN": TOKEN,
        "HUBSPOT_API_URL": hub.url,
    }


async def start(server: LiveServer) -> LiveServer:
    return await asyncio.to_thread(server.start)  # the fake answers on this loop meanwhile


async def send(server: LiveServer, *calls: dict[str, Any]) -> None:
    body = orjson.dumps({"batch": list(calls)})
    headers = sign(SECRET, body, msg_id=f"m-{time.time_ns()}", timestamp=int(time.time()))
    url = server.base + "/webhooks/events"
    async with ClientSession() as http, http.post(url, data=body, headers=headers) as answer:
        assert answer.status == 202, await answer.text()


def call(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "userId": "u-ines", "messageId": f"e2e-{kind}-{n}", **fields}


async def written(hub: FakeHubSpot, key: str, until: Any) -> dict[str, Any]:
    """The contact's properties once ``until(properties)`` holds (fails after WAIT)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        contact = hub.contact_by_email(EMAIL)
        if contact is not None and key in contact.properties and until(contact.properties):
            return dict(contact.properties)
        await asyncio.sleep(0.1)
    raise AssertionError(f"HubSpot did not get {key} within {WAIT:g} s")


def lead_json(env: dict[str, str]) -> dict[str, Any]:
    code = "import sys; from bot.cli import main; sys.exit(main(['lead', '--json', sys.argv[1]]))"
    done = subprocess.run(
        [sys.executable, "-c", code, EMAIL], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


async def test_a_hot_lead_reaches_hubspot_and_survives_an_outage_and_a_kill(
    tmp_path: Path, hub: FakeHubSpot
) -> None:
    env = env_for(tmp_path, hub)
    server = await start(LiveServer(tmp_path, env))
    try:
        traits = {"email": EMAIL, "title": "VP Sales", "address": {"country": "Germany"},
                  "company": {"name": "Northwind", "employee_count": 450,
                              "industry": "Software"}}  # fmt: skip
        await send(server, call("identify", 1, traits=traits),
                   call("track", 1, event="Demo Requested"),
                   call("page", 1, properties={"path": "/pricing"}))  # fmt: skip
        props = await written(hub, "leadbot_band", lambda p: p["leadbot_band"] == "hot")
        upsert = hub.requests_to("POST", "/crm/v3/objects/contacts/batch/upsert")[0]
        assert upsert.headers["Authorization"] == f"Bearer {TOKEN}"
        shown = await asyncio.to_thread(lead_json, env)
        assert abs(float(props["leadbot_score"]) - shown["score"]) <= 1.0
        assert shown["band"] == "hot"
        assert "Requested a demo +30" in props["leadbot_reasons"]
        assert props["leadbot_grade"] == shown["grade"]

        # HubSpot goes away; a trial starts: the new score waits, then arrives.
        before = float(props["leadbot_score"])
        await hub.stop()
        await send(server, call("track", 2, event="Trial Started"))
        await asyncio.sleep(1.5)
        await hub.start()
        props = await written(hub, "leadbot_score", lambda p: float(p["leadbot_score"]) > before)
        assert float(props["leadbot_score"]) == pytest.approx(before + 25, abs=1.0)

        # HubSpot down again, the server killed after taking an event: nothing is lost.
        before = float(props["leadbot_score"])
        await hub.stop()
        await send(server, call("track", 3, event="Whitepaper Downloaded"))
        await asyncio.sleep(2.0)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        await hub.start()
        server = await start(LiveServer(tmp_path, env, name="restarted"))
        props = await written(hub, "leadbot_score", lambda p: float(p["leadbot_score"]) > before)
        assert float(props["leadbot_score"]) == pytest.approx(before + 8, abs=1.0)
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.process.wait, 20)
