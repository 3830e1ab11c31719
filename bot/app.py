"""The aiohttp application: routes, and the background tasks that live with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.ingest import running_ingest
from bot.outbox import ConsoleTransport, Dispatcher, Transport
from bot.signatures import WebhookVerifier
from bot.state import DISPATCHER, ENGINE, INGEST, LIMITS, VERIFIER, Limits
from bot.webhooks import health, receive_events
from bot.writer import IngestProcess
from storage.engine import create_engine
from storage.migrate import upgrade

if TYPE_CHECKING:
    from config.loader import LeadbotConfig
    from config.settings import Settings

log = logging.getLogger(__name__)


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
        dispatcher = Dispatcher(engine, transport or ConsoleTransport(), clock=clock)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if settings.ingest == "process":
                writer = IngestProcess(
                    database_url=settings.database_url, config=config, on_alert=dispatcher.wake
                )
                await writer.start()
                stack.push_async_callback(writer.close)
                app[INGEST] = writer
            else:
                app[INGEST] = await stack.enter_async_context(
                    running_ingest(engine, config, clock=clock, on_alert=dispatcher.wake)
                )
            app[ENGINE], app[DISPATCHER] = engine, dispatcher
            delivery = asyncio.create_task(dispatcher.run())
            yield
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery

    app.cleanup_ctx.append(lifecycle)
    return app
