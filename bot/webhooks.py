"""``POST /webhooks/events``: verify, parse, hand to the group committer, answer 202."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from bot.errors import InputError, SignatureError
from bot.inbound import parse_body
from bot.state import INGEST, LIMITS, VERIFIER

log = logging.getLogger(__name__)


def json_response(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def receive_events(request: web.Request) -> web.Response:
    app = request.app
    limits = app[LIMITS]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return json_response(413, InputError(413, [("", (
            f"body is over the limit of {limits.max_body_bytes} bytes"
            " (LEADBOT_MAX_BODY_BYTES)"))]).to_json())  # fmt: skip
    verifier = app[VERIFIER]
    if verifier is not None:
        try:
            verifier.verify(request.headers, body)
        except SignatureError as exc:
            return json_response(401, {"error": exc.reason, "field": "signature"})
    try:
        events = parse_body(
            body,
            max_body_bytes=limits.max_body_bytes,
            max_event_bytes=limits.max_event_bytes,
            now=limits.clock(),
        )
    except InputError as exc:
        return json_response(exc.status, exc.to_json())
    try:
        result = await app[INGEST].submit(events)
    except Exception:
        log.exception("could not store %d events", len(events))
        return json_response(503, {"error": "storage unavailable: nothing was stored, retry"})
    return json_response(202, {"accepted": result.accepted, "duplicates": result.duplicates})


async def health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})
