"""Every line of the corpus (``corpus/*.jsonl``) against the real app over HTTP.

Each endpoint's cases run in one test, against one app, so that the corpus can grow to
hundreds of lines and stay fast; a failure lists every case that broke the rule or its
line's expectation.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.metrics import REGISTRY
from config.loader import LeadbotConfig
from config.settings import load_settings
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.fuzz.conftest import (
    TEAMS_SDK,
    TEAMS_WARNING,
    check_answer,
    expectation_problems,
    row_counts,
    slack_bases,
    slack_body,
    slack_signed,
    teams_bases,
    webhook_headers,
)
from tests.fuzz.corpus import Case, load


async def _run(client: Client, case: Case, send: Any, problems: list[str]) -> int:
    before = await row_counts(client)
    response: ClientResponse = await send()
    text = await response.text()
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = text
    problems += await check_answer(client, response, before, case.name, plain=case.by_aiohttp)
    problems += expectation_problems(case, response.status, answer)
    return response.status


def _rejected(endpoint: str) -> Counter[int]:
    """The rejected-requests counter of ``endpoint``, by the status its reason answers."""
    out: Counter[int] = Counter()
    for reason, status in (("signature", 401), ("invalid", 400), ("too_large", 413)):
        labels = {"endpoint": endpoint, "reason": reason}
        out[status] += int(
            REGISTRY.get_sample_value("leadbot_requests_rejected_total", labels) or 0
        )
    return out


def _refusals(statuses: Counter[int]) -> Counter[int]:
    return Counter({s: n for s, n in statuses.items() if s in (400, 401, 413)})


def _signed_part(case: Case, body: bytes) -> bytes:
    """What the server verifies: the body after its Content-Encoding, when it decodes."""
    if case.headers.get("Content-Encoding") in ("gzip", "deflate"):
        try:
            return zlib.decompress(body, wbits=47)  # 47: zlib or gzip, by the header
        except zlib.error:
            return body
    return body


async def test_webhook_corpus(webhooks: Client) -> None:
    problems: list[str] = []
    for case in load("webhooks"):
        body = case.encoded(case.body({}))
        headers = {**webhook_headers(_signed_part(case, body), case.sign), **case.headers}
        headers.setdefault("Content-Type", "application/json")

        async def send(body: bytes = body, headers: dict[str, str] = headers) -> ClientResponse:
            return await webhooks.post("/webhooks/events", data=body, headers=headers)

        await _run(webhooks, case, send, problems)
    assert not problems, "\n".join(problems)


async def test_slack_corpus(slack_app: Client, slack: FakeSlack) -> None:
    bases = slack_bases(slack)
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    counted = _rejected("slack")
    for case in load("slack"):
        value = case.body(bases)
        if isinstance(value, bytes):
            body, content_type = value, "application/x-www-form-urlencoded"
        else:
            body, content_type = slack_body(value, case.spec.get("base"), case.encoded)
        headers = {"Content-Type": content_type, **slack_signed(body, case.sign), **case.headers}

        async def send(body: bytes = body, headers: dict[str, str] = headers) -> ClientResponse:
            return await slack_app.post("/slack/events", data=body, headers=headers)

        statuses[await _run(slack_app, case, send, problems)] += 1
    assert not problems, "\n".join(problems)
    assert _rejected("slack") - counted == _refusals(statuses)  # every refusal is counted


@pytest.mark.filterwarnings(TEAMS_WARNING)
async def test_teams_corpus(teams_app: Client, connector: FakeConnector) -> None:
    bases = teams_bases(connector)
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    counted = _rejected("teams")
    for case in load("teams"):
        body = case.encoded(case.body(bases))
        headers = {"Content-Type": "application/json", **case.headers}

        async def send(body: bytes = body, headers: dict[str, str] = headers) -> ClientResponse:
            return await teams_app.post("/api/messages", data=body, headers=headers)

        statuses[await _run(teams_app, case, send, problems)] += 1
    assert not problems, "\n".join(problems)
    assert _rejected("teams") - counted == _refusals(statuses)


@pytest.mark.filterwarnings(TEAMS_WARNING)
async def test_teams_with_credentials_refuses_every_case_unread_without_a_token(
    tmp_path: Path, config: LeadbotConfig, connector: FakeConnector
) -> None:
    """With credentials, the SDK's JWT check answers 401 before the gate reads the body:
    every corpus case, garbled or not, gets 401 without a valid token."""
    settings = load_settings({
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/leadbot.db", "LEADBOT_INGEST": "thread",
        "LEADBOT_WEBHOOK_SECRET": WEBHOOK_SECRET,
        f"{TEAMS_SDK}CLIENTID": "00000000-0000-0000-0000-0000000000aa",
        f"{TEAMS_SDK}CLIENTSECRET": "secret", f"{TEAMS_SDK}TENANTID": "tenant-1",
    })  # fmt: skip
    bases = teams_bases(connector)
    problems: list[str] = []
    counted = _rejected("teams")
    async with TestClient(TestServer(build_app(settings=settings, config=config))) as client:
        for case in load("teams"):
            body = case.encoded(case.body(bases))
            for auth in ({}, {"Authorization": "Bearer not-a-jwt"}):

                async def send(body: bytes = body, auth: dict[str, str] = auth) -> ClientResponse:
                    return await client.post("/api/messages", data=body, headers=auth)

                before = await row_counts(client)
                response = await send()
                problems += await check_answer(client, response, before, case.name)
                if response.status != 401:
                    problems.append(f"{case.name} {auth}: {response.status}, not 401")
    assert connector.calls == []
    assert not problems, "\n".join(problems)
    assert _rejected("teams")[401] - counted[401] == 2 * len(load("teams"))
