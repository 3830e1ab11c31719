"""The aiohttp application: routes, and the background tasks that live with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.batcher import GroupCommitter
from bot.outbox import ConsoleTransport, Dispatcher, Transport
from bot.pipeline import Pipeline
from bot.signatures import WebhookVerifier
from bot.state import COMMITTER, DISPATCHER, ENGINE, LIMITS, PIPELINE, VERIFIER, Limits
from bot.webhooks import health, receive_events
from scoring.bands import resolve_thresholds
from storage.engine import create_engine, session_factory
from storage.leads import current_scores
from storage.migrate import upgrade

if TYPE_CHECKING:
    from config.loader import LeadbotConfig
    from config.settings import Settings

log = logging.getLogger(__name__)

THRESHOLD_REFRESH_SECONDS = 60.0


class StartupError(Exception):
    """leadbot cannot start as configured; the message says what to set."""


def make_verifier(settings: Settings, *, insecure: bool) -> WebhookVerifier | None:
    """The webhook signature check, or None when explicitly told to run open."""
    secrets = [settings.webhook_secret.get_secret_value()] if settings.webhook_secret else []
    segment = settings.segment_secret.get_secret_value() if settings.segment_secret else None
    if secrets or segment:
        return WebhookVerifier(secrets=secrets, segment_secret=segment)
    if insecure:
        return None
    raise StartupError(
        "LEADBOT_WEBHOOK_SECRET is not set, so anyone could post events. Set it to a secret "
        "from `leadbot webhook-secret` (and LEADBOT_SEGMENT_SECRET for a Segment webhook "
        "destination), or start with --insecure to accept unsigned events on purpose."
    )


def build_app(
    *,
    settings: Settings,
    config: LeadbotConfig,
    insecure: bool = False,
    clock: Callable[[], float] = time.time,
    transport: Transport | None = None,
) -> web.Application:
    """The whole bot on one aiohttp application; the database is opened at startup."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[VERIFIER] = make_verifier(settings, insecure=insecure)
    app[LIMITS] = Limits(settings.max_body_bytes, settings.max_event_bytes, clock)
    app.router.add_post("/webhooks/events", receive_events)
    app.router.add_get("/healthz", health)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await upgrade(engine)
        pipeline = Pipeline(engine, config)
        dispatcher = Dispatcher(engine, transport or ConsoleTransport(), clock=clock)
        committer = GroupCommitter(pipeline, clock=clock, on_alert=dispatcher.wake)
        app[ENGINE], app[PIPELINE], app[DISPATCHER], app[COMMITTER] = (
            engine, pipeline, dispatcher, committer,
        )  # fmt: skip
        tasks = [asyncio.create_task(committer.run()), asyncio.create_task(dispatcher.run())]
        if config.model.bands.uses_percentiles:
            tasks.append(asyncio.create_task(_refresh_thresholds(pipeline)))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pipeline.close()
        await engine.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def _refresh_thresholds(pipeline: Pipeline) -> None:
    """Percentile bands follow the current score distribution, re-read once a minute —
    off the ingest path, which uses the last edges computed here."""
    sessions = session_factory(pipeline.engine)
    while True:
        try:
            async with sessions() as session:
                scores = await current_scores(session)
            pipeline.thresholds = resolve_thresholds(pipeline.model.bands, scores)
        except Exception:
            log.exception("could not refresh percentile band edges; keeping the last ones")
        await asyncio.sleep(THRESHOLD_REFRESH_SECONDS)
