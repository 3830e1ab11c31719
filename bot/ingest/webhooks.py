"""``POST /webhooks/events``: verify, parse, hand to the group committer, answer 202.

Every answer but 202 and 503 says the request is wrong and that a retry would fail the
same way (4xx, with the field). 503 says nothing was stored and a retry will do: it
carries ``Retry-After``, and its log line is throttled, because an outage fails every
request alike.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot.errors import InputError, SignatureError
from bot.ingest.inbound import parse_body
from bot.ingest.writer import WriterUnavailable
from bot.metrics import EVENTS_ACCEPTED, EVENTS_DUPLICATE, INGEST_SECONDS
from bot.throttle import Throttled
from bot.web.answers import json_response, read_body, refused, unavailable
from bot.web.keys import INGEST, LIMITS, VERIFIER

log = logging.getLogger(__name__)

ENDPOINT = "webhooks"
_outage = Throttled(log)  # one line per 30 s while storing fails, with a count


async def receive_events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app = request.app
    limits = app[LIMITS]
    body = await read_body(request)
    if isinstance(body, web.Response):
        return body
    verifier = app[VERIFIER]
    if verifier is not None:
        try:
            verifier.verify(request.headers, body)
        except SignatureError as exc:
            return refused(ENDPOINT, 401, "signature", {"error": exc.reason, "field": "signature"})
    try:
        events = parse_body(
            body,
            max_body_bytes=limits.max_body_bytes,
            max_event_bytes=limits.max_event_bytes,
            now=limits.clock(),
        )
    except InputError as exc:
        reason = "too_large" if exc.status == 413 else "invalid"
        return refused(ENDPOINT, exc.status, reason, exc.to_json())
    try:
        result = await app[INGEST].submit(events)
    except Exception as exc:
        _outage.failed(
            "ingest", "could not store events (answering 503): %s: %s", type(exc).__name__, exc,
            exc_info=not isinstance(exc, WriterUnavailable),  # the writer logged its own
        )  # fmt: skip
        return unavailable(ENDPOINT, "storage unavailable: nothing was stored, retry")
    _outage.recovered("ingest", "storing events again")
    EVENTS_ACCEPTED.inc(result.accepted)
    EVENTS_DUPLICATE.inc(result.duplicates)
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return json_response(202, {"accepted": result.accepted, "duplicates": result.duplicates})
