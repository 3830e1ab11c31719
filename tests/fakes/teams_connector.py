"""A fake Bot Connector service at the wire, for tests.

An aiohttp app on 127.0.0.1 (ephemeral port) that answers the Bot Connector v3 routes the
Microsoft 365 Agents SDK's ``ConnectorClient`` calls, used as the activities' ``serviceUrl``:

- ``POST /v3/conversations`` (create a conversation, e.g. a 1:1 chat) → ``{"id"}``
- ``POST /v3/conversations/{id}/activities`` (send) → ``{"id": activity id}``
- ``POST /v3/conversations/{id}/activities/{replyToId}`` (reply) → ``{"id"}``
- ``PUT /v3/conversations/{id}/activities/{activityId}`` (update) → ``{"id"}``, 404 for an
  activity it never handed out

Every request is recorded (method, path, kind, headers including ``Authorization``, JSON
body). Failures are injected per kind of route: ``fail_next("send", status=500)``,
``rate_limit_next("send", retry_after=2)`` (429 with ``Retry-After``). A failed request
stores nothing, as the real service does, so a test sees exactly what reached Teams.
``stop()`` closes the server (connections are refused: an outage) and ``start()`` opens it
again on the same port.

    async with FakeConnector() as fake:
        ... activity.service_url = fake.url ...
        [call] = fake.calls_to("send")
        assert call.body["attachments"][0]["content"]["type"] == "AdaptiveCard"
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args

from aiohttp import web

PathKind = Literal["create", "send", "reply", "update", "delete"]
PATH_KINDS: tuple[str, ...] = get_args(PathKind)
Answer = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, and how it answered."""

    method: str  # "POST", "PUT" or "DELETE"
    path: str  # as received, e.g. "/v3/conversations/19:abc@thread.tacv2/activities"
    kind: PathKind
    conversation_id: str | None
    activity_id: str | None  # the replyToId, or the updated or deleted activity's id
    headers: Mapping[str, str]
    body: dict[str, Any]
    status: int = 200

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class FakeConnector:
    """The fake service; start it with ``async with``. With ``token`` set, a request
    without ``Authorization: Bearer <token>`` is refused with 401 (credentialed mode);
    without it any request is accepted (anonymous mode sends no Authorization)."""

    def __init__(self, *, token: str | None = None) -> None:
        self.token = token
        self.calls: list[Call] = []
        # conversation id → activity id → the activity as last sent or updated
        self.activities: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.conversations: list[dict[str, Any]] = []  # bodies of created conversations
        self._injected: dict[str, deque[Answer]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def start(self) -> None:
        """Listen (again, on the same port after ``stop``)."""
        app = web.Application()
        base = "/v3/conversations"
        app.router.add_post(base, self._create)
        app.router.add_post(base + "/{conversation}/activities", self._send)
        app.router.add_post(base + "/{conversation}/activities/{activity}", self._reply)
        app.router.add_put(base + "/{conversation}/activities/{activity}", self._update)
        app.router.add_delete(base + "/{conversation}/activities/{activity}", self._delete)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Close the server: until ``start``, every connection is refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The service URL, ending with "/" as activities carry it."""
        return f"http://127.0.0.1:{self._port}/"

    # -- what the tests read ------------------------------------------------------------

    def calls_to(self, kind: PathKind, *, ok_only: bool = False) -> list[Call]:
        """Calls to one kind of route in arrival order; ``ok_only`` keeps the answered ones."""
        return [c for c in self.calls if c.kind == kind and (c.ok or not ok_only)]

    def posted(self, conversation_id: str) -> list[dict[str, Any]]:
        """The activities the conversation holds now (sends and replies, as updated)."""
        return list(self.activities.get(conversation_id, {}).values())

    # -- failure injection --------------------------------------------------------------

    def fail_next(self, path_kind: PathKind, *, status: int = 500) -> None:
        """The next call to that kind of route gets HTTP ``status`` (queued: call twice for
        two failures)."""
        self._check(path_kind)
        error = {"error": {"code": "ServiceError", "message": f"injected {status}"}}
        self._injected[path_kind].append((status, error, {}))

    def rate_limit_next(self, path_kind: PathKind = "send", *, retry_after: int = 2) -> None:
        """The next call to that kind of route gets 429 with ``Retry-After: retry_after``."""
        self._check(path_kind)
        error = {"error": {"code": "TooManyRequests", "message": "Too many requests"}}
        self._injected[path_kind].append((429, error, {"Retry-After": str(retry_after)}))

    @staticmethod
    def _check(path_kind: str) -> None:
        if path_kind not in PATH_KINDS:
            raise ValueError(f"path_kind {path_kind!r} is not one of {', '.join(PATH_KINDS)}")

    # -- HTTP ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        def answer(body: dict[str, Any]) -> Answer:
            self.conversations.append(body)
            return 201, {"id": f"a:fake-{next(self._ids)}"}, {}

        return await self._handle(request, "create", answer)

    async def _send(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        return await self._handle(request, "send", lambda body: self._store(conversation, body))

    async def _reply(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        return await self._handle(request, "reply", lambda body: self._store(conversation, body))

    async def _update(self, request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        activity_id = request.match_info["activity"]

        def answer(body: dict[str, Any]) -> Answer:
            held = self.activities.get(conversation, {})
            if activity_id not in held:
                error = {"code": "NotFound", "message": f"no activity {activity_id}"}
                return 404, {"error": error}, {}
            held[activity_id] = {**body, "id": activity_id}
            return 200, {"id": activity_id}, {}

        return await self._handle(request, "update", answer)

    async def _delete(self, request: web.Request) -> web.Response:
        """DELETE …/activities/{id}: 200 with an empty body, or 404 when it is not there."""
        conversation = request.match_info["conversation"]
        activity_id = request.match_info["activity"]

        def answer(body: dict[str, Any]) -> Answer:
            if self.activities.get(conversation, {}).pop(activity_id, None) is None:
                error = {"code": "NotFound", "message": f"no activity {activity_id}"}
                return 404, {"error": error}, {}
            return 200, {}, {}

        return await self._handle(request, "delete", answer)

    def _store(self, conversation: str, body: dict[str, Any]) -> Answer:
        activity_id = f"{1_700_000_000_000 + next(self._ids)}"
        self.activities[conversation][activity_id] = {**body, "id": activity_id}
        return 201, {"id": activity_id}, {}

    async def _handle(self, request: web.Request, kind: PathKind, act: Any) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        status, answer, headers = self._answer(request, kind, body, act)
        self.calls.append(
            Call(
                request.method, request.path, kind, request.match_info.get("conversation"),
                request.match_info.get("activity"), dict(request.headers), body, status,
            )
        )  # fmt: skip
        return web.json_response(answer, status=status, headers=headers)

    def _answer(
        self, request: web.Request, kind: PathKind, body: dict[str, Any], act: Any
    ) -> Answer:
        if (
            self.token is not None
            and request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return 401, {"error": {"code": "Unauthorized", "message": "bad or no token"}}, {}
        if self._injected[kind]:
            return self._injected[kind].popleft()
        answer: Answer = act(body)
        return answer
