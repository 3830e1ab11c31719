"""Helpers for bot tests: a small readable model, and Segment calls built as sources send them."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bot.ingest.inbound import InboundEvent, parse_body
from config.loader import LeadbotConfig, load_config
from tests.fakes.slack_api import FakeSlack

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0

SMALL_MODEL = """
model:
  name: test-model
  points_per_logodds: 20
  intercept: -3
  bands: {warm: 20, hot: 50}
fit:
  - id: leader
    label: Sales leader
    points: 20
    when: {title: {pattern: 'vp|head'}}
  - id: software
    label: Software company
    points: 10
    when: {company.industry: {one_of: [software, saas]}}
intent:
  - id: pricing
    label: Visited pricing
    points: 10
    page: {path: {pattern: '^/pricing'}}
    half_life_days: 7
    cap: 3
  - id: demo
    label: Requested a demo
    points: 30
    track: Demo Requested
    half_life_days: 14
    cap: 1
negative:
  - id: free_mail
    label: Free e-mail
    points: -15
    when: {email_domain: {one_of: [gmail.com]}}
alerts:
  cooldown_hours: 24
  history_min_delta: 5
"""

_ids = itertools.count()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def call(kind: str, at: float, **fields: Any) -> dict[str, Any]:
    """One Segment-spec call; a fresh messageId unless one is given."""
    body = {"type": kind, "timestamp": iso(at), "messageId": f"m-{next(_ids)}"}
    body.update(fields)
    return body


def identify(user: str, at: float, **traits: Any) -> dict[str, Any]:
    return call("identify", at, userId=user, traits=traits)


def track(user: str | None, event: str, at: float, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": event, **extra}
    if user is not None:
        fields["userId"] = user
    return call("track", at, **fields)


def page(user: str | None, path: str, at: float, **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"properties": {"path": path}, **extra}
    if user is not None:
        fields["userId"] = user
    return call("page", at, **fields)


def events(*calls: dict[str, Any], now: float = T0) -> list[InboundEvent]:
    """Parse calls with the real parser, as the webhook endpoint does."""
    body = calls[0] if len(calls) == 1 else {"batch": list(calls)}
    return parse_body(orjson.dumps(body), now=now)


@pytest.fixture
def config() -> LeadbotConfig:
    return load_config(text=SMALL_MODEL, name="small.yaml")


IDEAL: dict[str, Any] = {
    "email": "dana@acmesoft.com",
    "name": "Dana Reyes",
    "title": "VP of Sales",
    "company": {"name": "AcmeSoft", "industry": "Software", "employee_count": 350},
}


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token="xoxb-test") as fake:
        yield fake
