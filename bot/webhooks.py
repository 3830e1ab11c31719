"""``POST /webhooks/events``: verify, parse, hand to the group committer, answer 202.

Every answer but 202 and 503 says the request is wrong and that a retry would fail the
same way (4xx, with the field). 503 says nothing was stored and a retry will do: it
carries ``Retry-After``, and its log line is throttled, because an outage fails every
request alike.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from bot.errors import InputError, SignatureError
from bot.inbound import parse_body
from bot.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE, INGEST_SECONDS, REQUESTS_REJECTED
from bot.state import INGEST, LIMITS, VERIFIER
from bot.throttle import Throttled

log = logging.getLogger(__name__)

ENDPOINT = "webhooks"
RETRY_AFTER_SECONDS = 5
"""What a 503 asks the sender to wait: about the time the writer takes to restart."""
_outage = Throttled(log)  # one line per 30 s while storing fails, with a count


def json_response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def rejected(status: int, reason: str, body: dict[str, Any]) -> web.Response:
    """A refusal, counted by reason (signature, invalid, too_large, unavailable)."""
    REQUESTS_REJECTED.labels(ENDPOINT, reason).inc()
    return json_response(status, body)


async def receive_events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app = request.app
    limits = app[LIMITS]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return rejected(413, "too_large", InputError(413, [("", (
            f"body is over the limit of {limits.max_body_bytes} bytes"
            " (LEADBOT_MAX_BODY_BYTES)"))]).to_json())  # fmt: skip
    except RequestPayloadError:
        return undecodable(request)
    verifier = app[VERIFIER]
    if verifier is not None:
        try:
            verifier.verify(request.headers, body)
        except SignatureError as exc:
            return rejected(401, "signature", {"error": exc.reason, "field": "signature"})
    try:
        events = parse_body(
            body,
            max_body_bytes=limits.max_body_bytes,
            max_event_bytes=limits.max_event_bytes,
            now=limits.clock(),
        )
    except InputError as exc:
        return rejected(exc.status, "too_large" if exc.status == 413 else "invalid", exc.to_json())
    try:
        result = await app[INGEST].submit(events)
    except Exception as exc:
        _outage.failed(
            "ingest", "could not store events (answering 503): %s: %s", type(exc).__name__, exc,
            exc_info=True,
        )  # fmt: skip
        return unavailable()
    _outage.recovered("ingest", "storing events again")
    EVENTS_ACCEPTED.inc(result.accepted)
    EVENTS_DUPLICATE.inc(result.duplicates)
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return json_response(202, {"accepted": result.accepted, "duplicates": result.duplicates})


def undecodable(request: web.Request) -> web.Response:
    """A body whose Content-Encoding does not decode (a corrupt deflate or gzip stream).

    The stream is unusable after the error: the connection is closed after the answer, and
    the payload is marked finished so aiohttp does not try to drain it and log the error a
    second time as unhandled."""
    request.content.feed_eof()
    encoding = request.headers.get("Content-Encoding", "")
    response = rejected(400, "invalid", {
        "error": f"the body does not decode as Content-Encoding {encoding!r}",
        "field": "Content-Encoding",
    })  # fmt: skip
    response.force_close()
    return response


def unavailable() -> web.Response:
    response = rejected(503, "unavailable", {
        "error": "storage unavailable: nothing was stored, retry",
        "retry_after": RETRY_AFTER_SECONDS,
    })  # fmt: skip
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})
