"""A fake Slack Socket Mode endpoint at the wire, for tests.

``FakeSocketSlack`` is the fake Web API of ``tests/fakes/slack_api.py`` plus what Socket
Mode adds, as ``slack_sdk.socket_mode.aiohttp.SocketModeClient`` (under Bolt's
``AsyncSocketModeHandler``) uses it:

- ``apps.connections.open`` on the same Web API base URL, answered only for the app-level
  token (``Authorization: Bearer xapp-…``); a bot token gets ``not_allowed_token_type`` and
  anything else ``invalid_auth``, as Slack answers them. The URL it hands out carries a
  one-use ticket.
- a WebSocket on a second aiohttp server (127.0.0.1, ephemeral port) at that URL: it greets a
  connection with ``hello``, sends envelopes, and collects the acks
  (``{"envelope_id": …, "payload": …}``) the app sends back.

    async with FakeSocketSlack(token="xoxb-test", app_token="xapp-test") as fake:
        ...  # start the app with SLACK_API_URL=fake.url, SLACK_APP_TOKEN=xapp-test
        ack = await fake.send_envelope("slash_commands", {"command": "/lead", ...})
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import WSMsgType, web

from tests.fakes.slack_api import Answer, Clock, FakeSlack

APP_ID = "A0LEADBOT"
# Slack sets accepts_response_payload per envelope kind; these are its answers for the
# kinds leadbot handles (a view submission may answer with errors or a new view).
_ACCEPTS_PAYLOAD = {"slash_commands": True, "interactive": False, "events_api": False}


class SocketModeError(AssertionError):
    """The app did not behave as a Socket Mode client should (no connection, no ack)."""


@dataclass(slots=True)
class Connection:
    """One WebSocket the app opened, and how it ended."""

    ticket: str
    ws: web.WebSocketResponse
    opened_at: float
    close_code: int | None = None  # the code the app closed with; None while open
    received: list[dict[str, Any]] = field(default_factory=list)  # every message from the app


class FakeSocketSlack(FakeSlack):
    """The fake Web API and a fake Socket Mode server; start it with ``async with``."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test",
        app_token: str = "xapp-test",
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(token=token, clock=clock)
        self.app_token = app_token
        self.connections: list[Connection] = []
        self._tickets: set[str] = set()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._envelopes = itertools.count(1)
        self._connected = asyncio.Event()
        self._socket_runner: web.AppRunner | None = None
        self._socket_port = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        app = web.Application()
        app.router.add_get("/socket", self._socket)
        self._socket_runner = web.AppRunner(app, access_log=None)
        await self._socket_runner.setup()
        site = web.TCPSite(self._socket_runner, "127.0.0.1", 0)
        await site.start()
        self._socket_port = self._socket_runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for connection in self.connections:
            if not connection.ws.closed:  # the app left it open: close it as Slack would
                await connection.ws.close()
        if self._socket_runner is not None:
            await self._socket_runner.cleanup()
            self._socket_runner = None
        await super().__aexit__(*exc)

    # -- what the tests use -------------------------------------------------------------

    @property
    def current(self) -> Connection | None:
        """The open connection envelopes go to, if the app holds one."""
        open_ = [c for c in self.connections if not c.ws.closed]
        return open_[-1] if open_ else None

    async def wait_connected(self, within: float = 3.0) -> Connection:
        """The app's open connection, once it has one (waiting up to ``within`` seconds)."""
        try:
            await asyncio.wait_for(self._connected.wait(), within)
        except TimeoutError:
            raise SocketModeError(f"no Socket Mode connection within {within} s") from None
        assert self.current is not None
        return self.current

    async def send_envelope(
        self,
        type: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        within: float = 3.0,
    ) -> dict[str, Any]:
        """Send ``payload`` in an envelope of ``type`` over the open connection and return
        the app's ack, which must come ``within`` seconds (Slack allows 3)."""
        connection = await self.wait_connected(within)
        envelope_id = f"env-{next(self._envelopes)}-{uuid.uuid4().hex[:8]}"
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": (
                _ACCEPTS_PAYLOAD.get(type, False)
                if accepts_response_payload is None
                else accepts_response_payload
            ),
        }
        if retry_attempt is not None:  # Events API redeliveries say which attempt they are
            envelope.update(retry_attempt=retry_attempt, retry_reason="timeout")
        ack = self._acks[envelope_id] = asyncio.get_running_loop().create_future()
        await connection.ws.send_json(envelope)
        try:
            return await asyncio.wait_for(ack, within)
        except TimeoutError:
            raise SocketModeError(
                f"envelope {envelope_id} ({type}) was not acked within {within} s"
            ) from None
        finally:
            self._acks.pop(envelope_id, None)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the app to reconnect, as Slack does every few hours."""
        connection = await self.wait_connected()
        await connection.ws.send_json({"type": "disconnect", "reason": reason,
                                       "debug_info": {"host": "fake-socket"}})  # fmt: skip

    # -- apps.connections.open ------------------------------------------------------------

    def _answer(self, method: str, request: web.Request, body: dict[str, Any]) -> Answer:
        if method != "apps.connections.open":
            return super()._answer(method, request, body)
        failure = self._failure(method)
        if failure is not None:
            return failure
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer != self.app_token:
            # Slack refuses a bot token here by type, anything else as unknown.
            error = "not_allowed_token_type" if bearer.startswith("xoxb-") else "invalid_auth"
            return 200, {"ok": False, "error": error}, {}
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        url = f"ws://127.0.0.1:{self._socket_port}/socket?ticket={ticket}"
        return 200, {"ok": True, "url": url}, {}

    # -- the WebSocket ------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:  # each URL is good for one connection
            return web.json_response({"ok": False, "error": "invalid_ticket"}, status=401)
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()  # autoping: the client's pings get pongs
        await ws.prepare(request)
        connection = Connection(ticket, ws, self.clock())
        self.connections.append(connection)
        await ws.send_json(_hello(len(self.connections)))
        self._connected.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._received(connection, json.loads(message.data))
        finally:
            connection.close_code = ws.close_code
            if self.current is None:
                self._connected.clear()
        return ws

    def _received(self, connection: Connection, message: dict[str, Any]) -> None:
        connection.received.append(message)
        ack = self._acks.get(str(message.get("envelope_id")))
        if ack is not None and not ack.done():
            ack.set_result(message)


def _hello(num_connections: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {"host": "fake-socket", "build_number": 1,
                       "approximate_connection_time": 18060},
        "connection_info": {"app_id": APP_ID},
    }  # fmt: skip


__all__ = ["APP_ID", "Connection", "FakeSocketSlack", "SocketModeError"]
