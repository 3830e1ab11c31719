"""``POST /webhooks/events``: verify, parse, hand to the group committer, answer 202.

Every answer but 202 and 503 says the request is wrong and that a retry would fail the
same way (4xx, with the field). 503 says nothing was stored and a retry will do: it
carries ``Retry-After``, and its log line is throttled, because an outage fails every
request alike. The body is taken whole or refused whole; SDKs, which drop a whole batch on
a 4xx, post to the tracking API instead (``bot.ingest.tracking``).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from bot.errors import InputError, SignatureError
from bot.ingest.inbound import Parsed, load_json, parse_doc
from bot.ingest.pipeline import IngestResult
from bot.ingest.writer import WriterUnavailable
from bot.metrics import EVENT_TIMES_CLAMPED, EVENTS_ACCEPTED, EVENTS_DUPLICATE, INGEST_SECONDS
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
        doc = load_json(body, max_body_bytes=limits.max_body_bytes)
        parsed = parse_doc(
            doc, body=body, now=limits.clock(), max_event_bytes=limits.max_event_bytes
        )
    except InputError as exc:
        return input_refused(ENDPOINT, exc)
    result = await store(app, ENDPOINT, parsed)
    if isinstance(result, web.Response):
        return result
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return json_response(202, {"accepted": result.accepted, "duplicates": result.duplicates})


def input_refused(endpoint: str, exc: InputError) -> web.Response:
    reason = "too_large" if exc.status == 413 else "invalid"
    return refused(endpoint, exc.status, reason, exc.to_json())


async def store(app: web.Application, endpoint: str, parsed: Parsed) -> IngestResult | web.Response:
    """Commit the parsed events; the counts, or the 503 to answer when storing failed."""
    if parsed.clamped:
        EVENT_TIMES_CLAMPED.inc(parsed.clamped)
    if not parsed.events:
        return IngestResult(0, 0)
    try:
        result = await app[INGEST].submit(parsed.events)
    except Exception as exc:
        _outage.failed(
            "ingest", "could not store events (answering 503): %s: %s", type(exc).__name__, exc,
            exc_info=not isinstance(exc, WriterUnavailable),  # the writer logged its own
        )  # fmt: skip
        return unavailable(endpoint, "storage unavailable: nothing was stored, retry")
    _outage.recovered("ingest", "storing events again")
    EVENTS_ACCEPTED.inc(result.accepted)
    EVENTS_DUPLICATE.inc(result.duplicates)
    return result
