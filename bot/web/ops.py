"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (can take events now) and
``/metrics`` (Prometheus text), and the read timeout every request body is held to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import OUTBOX_MESSAGES, REGISTRY
from bot.web.answers import RETRY_AFTER_SECONDS, json_response, too_large
from bot.web.keys import ENGINE, INGEST
from storage import health
from storage.migrate import current_revision, head_revision

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Whether it can do its work is ``/readyz``."""
    return json_response(200, {"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, the ingest writer runs, the schema is current.
    503 names what is wrong, so a load balancer stops sending and an operator knows why."""
    checks = {
        "database": await _timed(_database(request.app)),
        "writer": _writer(request.app),
        "migrations": await _timed(_migrations(request.app)),
    }
    ready = all(c["ok"] for c in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if ready:
        return json_response(200, body)
    return json_response(503, body, **{"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _timed(check: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_SECONDS:g} s"}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _database(app: web.Application) -> dict[str, Any]:
    engine = app.get(ENGINE)
    if engine is None:
        return {"ok": False, "error": "not started"}
    async with engine.connect() as conn:
        await health.ping(conn)
    return {"ok": True}


async def _migrations(app: web.Application) -> dict[str, Any]:
    engine = app.get(ENGINE)
    if engine is None:
        return {"ok": False, "error": "not started"}
    current, head = await current_revision(engine), head_revision()
    if current != head:
        return {"ok": False, "error": f"database at {current}, this leadbot needs {head}"}
    return {"ok": True, "revision": head}


def _writer(app: web.Application) -> dict[str, Any]:
    ingest = app.get(INGEST)
    if ingest is None:
        return {"ok": False, "error": "not started"}
    status: dict[str, Any] = {"ok": ingest.alive}
    pid = getattr(ingest, "pid", None)
    if pid is not None:
        status["pid"] = pid
    restarts = getattr(ingest, "restarts", None)
    if restarts is not None:
        status["restarts"] = restarts
    if not ingest.alive:
        status["error"] = "the ingest writer is down (restarting)"
    return status


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text: this process's counters, and the outbox as the database has it."""
    engine = request.app.get(ENGINE)
    if engine is not None:
        try:
            async with asyncio.timeout(CHECK_SECONDS), engine.connect() as conn:
                counts = await health.outbox_by_transport(conn)
        except Exception as exc:  # the counters still answer while the database is down
            log.debug("metrics: outbox counts unavailable: %r", exc)
        else:
            OUTBOX_MESSAGES.clear()
            for (transport, status), n in counts.items():
                OUTBOX_MESSAGES.labels(transport=transport, status=status).set(n)
    return web.Response(
        body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def read_timeout(seconds: float) -> Middleware:
    """A middleware that reads each request body within ``seconds``: a client that
    announces more bytes than it sends (or trickles them) gets 408 and the connection is
    closed, instead of holding it open for ever. Handlers then read the cached body."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                if request.content.is_eof():  # all received (most requests): nothing to wait for
                    await request.read()
                else:
                    async with asyncio.timeout(seconds):
                        await request.read()
            except TimeoutError:
                log.info("request body not received within %g s; closing", seconds)
                response = json_response(
                    408, {"error": f"request body not received within {seconds:g} s"}
                )
                response.force_close()
                # Send it, then drop the connection: aiohttp would otherwise linger to read
                # the rest of a body that is never coming.
                await response.prepare(request)
                await response.write_eof()
                if request.protocol is not None:
                    request.protocol.force_close()
                return response
            except web.HTTPRequestEntityTooLarge:
                return too_large(request)
            except RequestPayloadError:
                pass  # a body that does not decode: each route answers it (400, JSON)
        return await handler(request)

    return middleware
