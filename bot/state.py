"""Typed keys for what the aiohttp application holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.batcher import GroupCommitter
from bot.outbox import Dispatcher
from bot.pipeline import Pipeline
from bot.signatures import WebhookVerifier


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int
    max_event_bytes: int
    clock: Callable[[], float]


ENGINE = web.AppKey("engine", AsyncEngine)
PIPELINE = web.AppKey("pipeline", Pipeline)
COMMITTER = web.AppKey("committer", GroupCommitter)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
VERIFIER = web.AppKey("verifier", WebhookVerifier | None)  # type: ignore[arg-type]
LIMITS = web.AppKey("limits", Limits)
