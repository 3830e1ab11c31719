"""Hypothesis over each endpoint, through the real app: well-formed requests are taken,
mutated ones are answered 4xx (JSON, with ``error``) and change nothing; none gets a 5xx.

Example counts are modest so that the whole package stays within a few tens of seconds
(``LEADBOT_FUZZ_EXAMPLES=2000`` searches longer); the corpus (``test_corpus.py``) keeps
every case found worth keeping.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bot.slack_helpers import Client
from tests.fakes.slack_api import FakeSlack
from tests.fakes.teams_connector import FakeConnector
from tests.fuzz.conftest import (
    TEAMS_WARNING,
    check_answer,
    row_counts,
    slack_bases,
    slack_body,
    slack_signed,
    teams_bases,
    webhook_headers,
)
from tests.fuzz.strategies import mutated, mutated_bodies, well_formed_bodies


def examples(n: int) -> int:
    """``n``, or LEADBOT_FUZZ_EXAMPLES to search longer on demand (new finds go in the
    corpus)."""
    return int(os.environ.get("LEADBOT_FUZZ_EXAMPLES") or n)


# One app per test, shared by its examples: the fixtures are function-scoped on purpose.
FUZZ = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def _post_webhook(client: Client, payload: Any) -> tuple[Any, dict[str, int]]:
    body = orjson.dumps(payload)
    before = await row_counts(client)
    response = await client.post(
        "/webhooks/events", data=body,
        headers={**webhook_headers(body, "ok"), "Content-Type": "application/json"},
    )  # fmt: skip
    return response, before


@FUZZ
@given(payload=st.one_of(well_formed_bodies, mutated_bodies), fresh=st.booleans())
async def test_segment_calls(webhooks: Client, payload: Any, fresh: bool) -> None:
    response, before = await _post_webhook(webhooks, payload)
    assert not await check_answer(webhooks, response, before, repr(payload)[:300])


@settings(FUZZ, max_examples=examples(40))
@given(payload=well_formed_bodies)
async def test_well_formed_segment_calls_are_stored(webhooks: Client, payload: Any) -> None:
    response, _ = await _post_webhook(webhooks, payload)
    assert response.status == 202, await response.text()


@st.composite
def slack_requests(draw: st.DrawFn, bases: dict[str, Any]) -> tuple[str, Any]:
    kind = draw(st.sampled_from(sorted(bases)))
    value = bases[kind] if draw(st.integers(0, 4)) == 0 else draw(mutated(bases[kind]))
    return kind, value


@settings(FUZZ, max_examples=examples(120))
@given(data=st.data())
async def test_slack_payloads(slack_app: Client, slack: FakeSlack, data: st.DataObject) -> None:
    kind, value = data.draw(slack_requests(slack_bases(slack)))
    body, content_type = slack_body(value, kind)
    tamper = data.draw(st.sampled_from(["none", "none", "none", "body", "stale", "unsigned"]))
    headers = {"Content-Type": content_type, **slack_signed(body, "stale" if tamper == "stale"
               else "none" if tamper == "unsigned" else "ok")}  # fmt: skip
    if tamper == "body":
        body = body + b"&x=1"  # signed, then changed on the way
    before = await row_counts(slack_app)
    response = await slack_app.post("/slack/events", data=body, headers=headers)
    assert not await check_answer(slack_app, response, before, f"{kind}: {value!r:.300}")
    if tamper != "none":
        assert response.status == 401


@pytest.mark.filterwarnings(TEAMS_WARNING)
@settings(FUZZ, max_examples=examples(120))
@given(data=st.data())
async def test_teams_activities(
    teams_app: Client, connector: FakeConnector, data: st.DataObject
) -> None:
    bases = teams_bases(connector)
    kind = data.draw(st.sampled_from(sorted(bases)))
    value = data.draw(st.one_of(st.just(bases[kind]), mutated(bases[kind])))
    before = await row_counts(teams_app)
    started = time.monotonic()
    response = await teams_app.post("/api/messages", data=orjson.dumps(value),
                                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert not await check_answer(teams_app, response, before, f"{kind}: {value!r:.300}")
    assert time.monotonic() - started < 5
