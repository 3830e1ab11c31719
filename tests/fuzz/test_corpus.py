"""Every line of the corpus (``corpus/*.jsonl``) against the real app over HTTP.

Each endpoint's cases run in one test, against one app, so that the corpus can grow to
hundreds of lines and stay fast; a failure lists every case that broke the rule or its
line's expectation.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse

from tests.bot.slack_helpers import Client
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.fuzz.conftest import (
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


async def _run(client: Client, case: Case, send: Any, problems: list[str]) -> None:
    before = await row_counts(client)
    response: ClientResponse = await send()
    text = await response.text()
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = text
    problems += await check_answer(client, response, before, case.name, plain=case.by_aiohttp)
    problems += expectation_problems(case, response.status, answer)


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
    for case in load("slack"):
        value = case.body(bases)
        if isinstance(value, bytes):
            body, content_type = value, "application/x-www-form-urlencoded"
        else:
            body, content_type = slack_body(value, case.spec.get("base"), case.encoded)
        headers = {"Content-Type": content_type, **slack_signed(body, case.sign), **case.headers}

        async def send(body: bytes = body, headers: dict[str, str] = headers) -> ClientResponse:
            return await slack_app.post("/slack/events", data=body, headers=headers)

        await _run(slack_app, case, send, problems)
    assert not problems, "\n".join(problems)


@pytest.mark.filterwarnings(TEAMS_WARNING)
async def test_teams_corpus(teams_app: Client, connector: FakeConnector) -> None:
    bases = teams_bases(connector)
    problems: list[str] = []
    for case in load("teams"):
        body = case.encoded(case.body(bases))
        headers = {"Content-Type": "application/json", **case.headers}

        async def send(body: bytes = body, headers: dict[str, str] = headers) -> ClientResponse:
            return await teams_app.post("/api/messages", data=body, headers=headers)

        await _run(teams_app, case, send, problems)
    assert not problems, "\n".join(problems)
