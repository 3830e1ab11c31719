"""Segment's HTTP Tracking API on leadbot's server: what Segment's and RudderStack's SDKs post.

``POST /v1/batch`` and ``/v1/import`` take a batch; ``/v1/identify``, ``/v1/track``,
``/v1/page``, ``/v1/screen``, ``/v1/group`` and ``/v1/alias`` one call of that type. Each goes
through the parser and pipeline of ``/webhooks/events``, with two differences that the SDKs
need:

- Authentication is a write key (``bot.ingest.writekeys``), not a signature: SDKs sign
  nothing. A wrong or missing key is refused (401) before any call is read.
- A call that cannot be used is dropped and reported, and the rest are stored: an SDK gives
  up on a whole batch at the first 4xx, so one bad value would lose every call beside it.
  The answer is 200 once the kept calls are committed; only a body that is not JSON, not a
  call or a batch (400), or too large (413) is refused whole, and 503 means nothing was
  stored. RudderStack's SDKs count nothing but 200 as success.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from bot.errors import InputError, SignatureError
from bot.ingest.inbound import Parsed, Rejected, load_json, parse_doc
from bot.ingest.webhooks import input_refused, store
from bot.ingest.writekeys import MISSING, header_key
from bot.metrics import EVENTS_DROPPED, INGEST_SECONDS
from bot.throttle import Throttled
from bot.web.answers import TRACKING, json_response, read_body, refused
from bot.web.keys import LIMITS, WRITE_KEYS

log = logging.getLogger(__name__)

BATCH_ROUTES = ("/v1/batch", "/v1/import")
CALL_ROUTES = ("identify", "track", "page", "screen", "group", "alias")
LOG_EVERY = 10.0
"""Seconds between two log lines about dropped calls: a sender that keeps sending a bad
call must not flood the log (the metric and each answer count every one)."""

Handler = Callable[[web.Request], Coroutine[Any, Any, web.Response]]


def add_tracking_routes(router: web.UrlDispatcher) -> None:
    for path in BATCH_ROUTES:
        router.add_post(path, tracking_handler(None))
    for call_type in CALL_ROUTES:
        router.add_post(f"/v1/{call_type}", tracking_handler(call_type))


def tracking_handler(call_type: str | None) -> Handler:
    """The handler of a batch route (``call_type`` None) or of one call type's route."""

    async def receive(request: web.Request) -> web.Response:
        return await receive_tracking(request, call_type)

    return receive


async def receive_tracking(request: web.Request, call_type: str | None) -> web.Response:
    started = time.perf_counter()
    app = request.app
    limits = app[LIMITS]
    body = await read_body(request)
    if isinstance(body, web.Response):
        return body
    keys = app[WRITE_KEYS]
    try:
        given = header_key(request.headers)
        if keys is not None and given is not None:
            keys.check(given)  # before the body is read: a stranger learns nothing of it
        doc = load_json(body, max_body_bytes=limits.max_body_bytes)
        if keys is not None and given is None:
            keys.check(_body_key(doc))
        parsed = parse_doc(
            doc, body=body, now=limits.clock(), max_event_bytes=limits.max_event_bytes,
            lenient=True, call_type=call_type,
        )  # fmt: skip
    except SignatureError as exc:
        return refused(TRACKING, 401, "write_key", {"error": exc.reason, "field": "writeKey"})
    except InputError as exc:
        if keys is not None and given is None:  # a body without a readable key: no key
            return refused(TRACKING, 401, "write_key", {"error": MISSING, "field": "writeKey"})
        return input_refused(TRACKING, exc)
    result = await store(app, TRACKING, parsed)
    if isinstance(result, web.Response):
        return result
    _report_dropped(request.path, parsed)
    INGEST_SECONDS.observe(time.perf_counter() - started)
    return json_response(200, {
        "success": True,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [_rejected(r) for r in parsed.rejected],
    })  # fmt: skip


def _body_key(doc: Any) -> str | None:
    key = doc.get("writeKey") if isinstance(doc, dict) else None
    return key if isinstance(key, str) else None


def _rejected(item: Rejected) -> dict[str, Any]:
    return {"index": item.index, "field": item.field, "error": item.error}


def _report_dropped(path: str, parsed: Parsed) -> None:
    """Count the calls dropped, and log the first of them, throttled (the answer lists all)."""
    if not parsed.rejected:
        return
    EVENTS_DROPPED.labels(TRACKING).inc(len(parsed.rejected))
    first = parsed.rejected[0]
    _dropped.failed(
        path, "%s: dropped %d call(s) that could not be used; first: %s: %s",
        path, len(parsed.rejected), first.field or "(the call)", first.error,
    )  # fmt: skip


_dropped = Throttled(log, period=LOG_EVERY, level=logging.WARNING)
