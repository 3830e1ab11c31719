"""HTTP answers every route gives alike: JSON bodies, refusals counted by reason, 503 with
``Retry-After``, and reading a body that may be too large or may not decode.

Every answer but 2xx and 503 says the request is wrong and a retry would fail the same way
(4xx, naming the field); 503 says nothing was stored and a retry will do.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from bot.errors import InputError
from bot.metrics import REQUESTS_REJECTED

RETRY_AFTER_SECONDS = 5
"""What a 503 asks the sender to wait: about the time the writer takes to restart."""

_ENDPOINTS = {"/webhooks/events": "webhooks", "/slack/events": "slack", "/api/messages": "teams"}
TRACKING = "tracking"
"""The metrics label of Segment's tracking API routes (``/v1/*``)."""

CODES = {
    "signature": "unauthorized",
    "write_key": "unauthorized",
    "invalid": "invalid_request",
    "too_large": "payload_too_large",
    "unavailable": "unavailable",
}
"""An error body's ``code`` for each refusal reason. Segment's and RudderStack's SDKs read
``code`` and ``message`` from an error body (RudderStack's fails on a body without them)."""


def endpoint_of(request: web.Request) -> str:
    """The metrics label of a request's route (a fixed set: paths are caller-chosen)."""
    if request.path.startswith("/v1/"):
        return TRACKING
    return _ENDPOINTS.get(request.path, "other")


def json_response(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def refused(endpoint: str, status: int, reason: str, body: dict[str, Any]) -> web.Response:
    """A refusal, counted by endpoint and reason (signature, invalid, too_large, …). The
    body gets ``code`` and ``message`` beside its ``error`` and ``field``."""
    REQUESTS_REJECTED.labels(endpoint, reason).inc()
    return json_response(status, coded(reason, body))


def unavailable(endpoint: str, message: str) -> web.Response:
    """503: nothing was stored; come back after ``Retry-After`` seconds."""
    REQUESTS_REJECTED.labels(endpoint, "unavailable").inc()
    body = coded("unavailable", {"error": message, "retry_after": RETRY_AFTER_SECONDS})
    return json_response(503, body, **{"Retry-After": str(RETRY_AFTER_SECONDS)})


def coded(reason: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` led by the ``code`` and ``message`` SDKs read from an error."""
    return {"code": CODES.get(reason, reason), "message": body.get("error", ""), **body}


def too_large(request: web.Request) -> web.Response:
    message = f"body is over the limit of {request.client_max_size} bytes (LEADBOT_MAX_BODY_BYTES)"
    return refused(
        endpoint_of(request), 413, "too_large", InputError(413, [("", message)]).to_json()
    )


def undecodable(request: web.Request) -> web.Response:
    """A body whose Content-Encoding does not decode (a corrupt deflate or gzip stream).

    The stream is unusable after the error: the connection is closed after the answer, and
    the payload is marked finished so aiohttp does not try to drain it and log the error a
    second time as unhandled."""
    request.content.feed_eof()
    encoding = request.headers.get("Content-Encoding", "")
    response = refused(endpoint_of(request), 400, "invalid", {
        "error": f"the body does not decode as Content-Encoding {encoding!r}",
        "field": "Content-Encoding",
    })  # fmt: skip
    response.force_close()
    return response


async def read_body(request: web.Request) -> bytes | web.Response:
    """The request's body, or the answer to give when it is too large or does not decode."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        return too_large(request)
    except RequestPayloadError:
        return undecodable(request)
