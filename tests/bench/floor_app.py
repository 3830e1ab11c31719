"""The floor: the least any signed-webhook server must do, in the same runtime as leadbot.

One aiohttp process; ``POST /webhooks/events`` reads the body, verifies the Standard Webhooks
signature with the very ``WebhookVerifier`` leadbot uses (so it pays the same crypto), parses
the JSON with orjson, and answers 202 ``{"accepted": n, "duplicates": 0}`` — no database, no
scoring. leadbot's ingest rate is read against this figure, measured in the same run.

Run: ``LEADBOT_WEBHOOK_SECRET=whsec_... python -m tests.bench.floor_app --port 8081``
"""

from __future__ import annotations

import argparse
import os
import sys

import orjson
from aiohttp import web

from bot.errors import SignatureError
from bot.ingest.signatures import WebhookVerifier

SECRET_ENV = "LEADBOT_WEBHOOK_SECRET"
VERIFIER = web.AppKey("verifier", WebhookVerifier)
MAX_BODY_BYTES = 1_048_576  # leadbot's default LEADBOT_MAX_BODY_BYTES


def _json(status: int, body: dict[str, object]) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        request.app[VERIFIER].verify(request.headers, body)
    except SignatureError as exc:
        return _json(401, {"error": exc.reason, "field": "signature"})
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _json(400, {"error": f"invalid JSON: {exc}"})
    batch = doc.get("batch") if isinstance(doc, dict) else None
    accepted = len(batch) if isinstance(batch, list) else 1
    return _json(202, {"accepted": accepted, "duplicates": 0})


async def health(request: web.Request) -> web.Response:
    return _json(200, {"status": "ok"})


def build_floor_app(secret: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[VERIFIER] = WebhookVerifier(secrets=[secret])
    app.router.add_post("/webhooks/events", receive)
    app.router.add_get("/healthz", health)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        sys.stderr.write(f"floor_app: set {SECRET_ENV} to the secret the requests are signed by\n")
        return 2
    web.run_app(
        build_floor_app(secret), host=args.host, port=args.port, access_log=None, print=None
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
