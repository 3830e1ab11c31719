"""A fake Slack Web API at the wire, for tests.

An aiohttp app on 127.0.0.1 (ephemeral port) that answers the Web API methods leadbot
calls, the way ``slack_sdk``'s ``AsyncWebClient(base_url=fake.url)`` sends them (POST or GET
to ``{base_url}{method}``, JSON or form bodies, ``Authorization: Bearer xoxb-…``). Every
request is recorded, and failures (500, 429 with ``Retry-After``, ``ok: false`` errors) can be
injected on demand or for a stretch of time measured on a clock the test controls.

    async with FakeSlack(token="xoxb-test") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.url)
        ...
        assert fake.calls_to("chat.postMessage")[0].body["channel"] == "C0ALERTS"

File uploads follow Slack's external upload protocol, as ``files_upload_v2`` drives it:
``files.getUploadURLExternal`` (filename, length) answers an ``upload_url`` on this server
and a file id; the bytes are POSTed there; ``files.completeUploadExternal`` (``files`` as
JSON, ``channel_id``, ``initial_comment``, ``thread_ts``) shares them. ``fake.uploads``
records each file through the three steps.

``chat.postMessage`` keeps the message ``metadata`` it was given; ``conversations.history``
and ``conversations.replies`` answer as Slack does: channel ids only (a ``#name`` is
``channel_not_found``), newest first for history (thread replies left out) and parent then
replies oldest first for a thread, ``oldest``/``latest``/``inclusive``, ``limit`` with
``has_more`` and ``response_metadata.next_cursor``, and each message's ``metadata`` only
with ``include_all_metadata``.

Outages: ``stop()`` closes the server (connections are refused) and ``start()`` opens it
again on the same port. ``hold_next(method)`` stores the next call's effect, then keeps its
answer back until ``release()``: the request reached Slack, its answer never reaches the
caller (a crash or a cut connection at the worst moment). ``received`` is set at each call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

Clock = Callable[[], float]
Answer = tuple[int, dict[str, Any], dict[str, str]]  # HTTP status, JSON body, extra headers
Handler = Callable[[dict[str, Any]], dict[str, Any]]

BOT_USER_ID = "U0LEADBOT"
BOT_ID = "B0LEADBOT"
TEAM_ID = "T0LEADBOT"
# Fields slack_sdk JSON-encodes inside form bodies.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata", "files")
UPLOAD = "upload"  # the method name calls to an upload URL are recorded under


@dataclass(frozen=True, slots=True)
class Call:
    """One request the fake received, and how it answered."""

    method: str  # "chat.postMessage", or "response_url" for respond() posts
    headers: Mapping[str, str]
    body: dict[str, Any]  # query, form and JSON fields merged
    at: float  # the fake's clock when it arrived
    status: int = 200
    ok: bool = True
    path: str = ""


@dataclass(slots=True)
class Upload:
    """A file through ``files_upload_v2``'s three steps: asked for (``getUploadURLExternal``),
    ``content`` received at the upload URL, then shared (``completed``) by
    ``completeUploadExternal`` with its title, channel, thread and comment."""

    file_id: str
    filename: str
    length: int
    alt_txt: str | None = None
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass(slots=True)
class _Window:
    """``fail_for``: answer ``statuses`` in turn until ``until`` on the clock."""

    until: float
    statuses: tuple[int, ...]
    retry_after: int
    methods: frozenset[str] | None
    turn: itertools.count = field(default_factory=itertools.count)


class FakeSlack:
    """The fake server; start it with ``async with``."""

    def __init__(self, *, token: str = "xoxb-test", clock: Clock = time.monotonic) -> None:
        self.token = token
        self.clock = clock
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}  # user-group id → member user ids
        self.uploads: list[Upload] = []
        self._injected: dict[str, deque[Answer]] = defaultdict(deque)
        self._after_effect: dict[str, deque[int]] = defaultdict(deque)
        self._windows: list[_Window] = []
        self._ts = itertools.count(1)
        self._ids: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._held: set[str] = set()
        self._release = asyncio.Event()
        self.received = asyncio.Event()  # set at every call; clear it to wait for the next

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        await self.stop()

    async def start(self) -> None:
        """Listen (again, on the same port after ``stop``)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response_url/{id}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the server: until ``start``, every connection is refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def hold_next(self, method: str) -> None:
        """The next call to ``method`` takes effect, but is answered only after ``release``."""
        self._held.add(method)
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    @property
    def url(self) -> str:
        """The Web API base URL, ending with "/" as ``AsyncWebClient`` wants it."""
        return f"http://127.0.0.1:{self._port}/api/"

    def upload_url(self, file_id: str) -> str:
        """Where ``files.getUploadURLExternal`` tells the client to POST a file's bytes."""
        return f"http://127.0.0.1:{self._port}/upload/{file_id}"

    def response_url(self, id: str) -> str:
        """A ``response_url`` for a slash command or a click; posts to it are recorded."""
        return f"http://127.0.0.1:{self._port}/response_url/{id}"

    # -- what the tests read ------------------------------------------------------------

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[Call]:
        """Calls to ``method`` in arrival order; ``ok_only`` keeps the successful ones."""
        return [c for c in self.calls if c.method == method and (c.ok or not ok_only)]

    def channel_id(self, channel: str) -> str:
        """The id a channel name (``#alerts``) or a user's DM (``@U123``) stands for; ids
        stand for themselves."""
        if channel.startswith("@"):
            return self._ids.setdefault(channel, f"D{len(self._ids) + 1:08d}")
        if not channel.startswith("#"):
            return channel
        return self._ids.setdefault(channel, f"C{len(self._ids) + 1:08d}")

    # -- failure injection --------------------------------------------------------------

    def fail_next(self, method: str, *, status: int = 500) -> None:
        """The next call to ``method`` gets HTTP ``status`` (queued: call twice for two)."""
        self._injected[method].append((status, {"ok": False, "error": "internal_error"}, {}))

    def fail_after_storing_next(self, method: str, *, status: int = 500) -> None:
        """The next call to ``method`` takes effect (a post is stored), then answers HTTP
        ``status`` ``internal_error``: Slack's "some of the operation may have succeeded"."""
        self._after_effect[method].append(status)

    def rate_limit_next(self, method: str, *, retry_after: int = 2) -> None:
        """The next call to ``method`` gets 429 with ``Retry-After: retry_after``."""
        self._injected[method].append(_ratelimited(retry_after))

    def error_next(self, method: str, error: str, **extra: Any) -> None:
        """The next call to ``method`` gets HTTP 200 ``{"ok": false, "error": error}``."""
        self._injected[method].append((200, {"ok": False, "error": error, **extra}, {}))

    def fail_for(
        self,
        seconds: float,
        *,
        status: int | Sequence[int] = 500,
        retry_after: int = 5,
        methods: Sequence[str] | None = None,
    ) -> None:
        """Slack is down for ``seconds`` on the clock from now: every call (to ``methods``,
        or all but ``response_url``) answers the statuses in turn, 429s with Retry-After."""
        statuses = (status,) if isinstance(status, int) else tuple(status)
        chosen = frozenset(methods) if methods is not None else None
        self._windows.append(_Window(self.clock() + seconds, statuses, retry_after, chosen))

    def _failure(self, method: str) -> Answer | None:
        if self._injected[method]:
            return self._injected[method].popleft()
        now = self.clock()
        for window in self._windows:
            if now < window.until and (window.methods is None or method in window.methods):
                status = window.statuses[next(window.turn) % len(window.statuses)]
                if status == 429:
                    return _ratelimited(window.retry_after)
                return status, {"ok": False, "error": "internal_error"}, {}
        return None

    # -- HTTP ---------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await _body(request)
        status, answer, headers = self._answer(method, request, body)
        self.calls.append(
            Call(method, dict(request.headers), body, self.clock(), status,
                 status == 200 and bool(answer.get("ok")), request.path)
        )  # fmt: skip
        self.received.set()
        if method in self._held:
            self._held.discard(method)
            await self._release.wait()
        return web.json_response(answer, status=status, headers=headers)

    def _answer(self, method: str, request: web.Request, body: dict[str, Any]) -> Answer:
        failure = self._failure(method)
        if failure is not None:
            return failure
        if not self._authorised(request, body):
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = self._handlers().get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        answer = handler(body)
        if self._after_effect[method]:
            status = self._after_effect[method].popleft()
            return status, {"ok": False, "error": "internal_error"}, {}
        return 200, answer, {}

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self.calls.append(
            Call("response_url", dict(request.headers), body, self.clock(), path=request.path)
        )
        return web.Response(text="ok", content_type="text/plain")

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: records the raw bytes of an announced file (no token needed, as
        on Slack: the URL itself is the credential)."""
        content = await request.read()
        file_id = request.match_info["file_id"]
        upload = self._upload_of(file_id)
        failure = self._failure(UPLOAD)
        status = 404 if upload is None else failure[0] if failure is not None else 200
        self.calls.append(
            Call(UPLOAD, dict(request.headers), {"file_id": file_id, "bytes": len(content)},
                 self.clock(), status, status == 200, request.path)
        )  # fmt: skip
        if upload is not None and status == 200:
            upload.content = content
        text = f"OK - {len(content)}" if status == 200 else "upload failed"
        return web.Response(text=text, status=status, content_type="text/plain")

    def _upload_of(self, file_id: str) -> Upload | None:
        return next((u for u in self.uploads if u.file_id == file_id), None)

    def _authorised(self, request: web.Request, body: Mapping[str, Any]) -> bool:
        bearer = request.headers.get("Authorization", "")
        return bearer == f"Bearer {self.token}" or body.get("token") == self.token

    def _handlers(self) -> dict[str, Handler]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._open,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "views.open": self._views_open,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    # -- methods ------------------------------------------------------------------------

    def _next_ts(self) -> str:
        """Slack's ts: the unix second of the post, and a sequence that keeps it unique.
        From the fake's clock when that tells unix time (a monotonic one does not)."""
        n, now = next(self._ts), self.clock()
        return f"{int(now if now > 1e9 else time.time())}.{n:06d}"

    def _auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True, "url": "https://leadbot-test.example/", "team": "Leadbot Test",
            "user": "leadbot", "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }  # fmt: skip

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not body.get("text") and not body.get("blocks"):
            return {"ok": False, "error": "no_text"}
        channel, ts = self.channel_id(str(body["channel"])), self._next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                   "text": body.get("text", ""), "blocks": body.get("blocks", [])}  # fmt: skip
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        if isinstance(body.get("metadata"), dict):
            message["metadata"] = body["metadata"]
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        """A channel's messages, newest first; replies in threads are not in it."""
        channel = str(body.get("channel") or "")
        if not channel or channel.startswith("#") or not self._known(channel):
            return {"ok": False, "error": "channel_not_found"}
        held = [m for (c, _), m in self.messages.items()
                if c == channel and m.get("thread_ts", m["ts"]) == m["ts"]]  # fmt: skip
        held.sort(key=lambda m: float(m["ts"]), reverse=True)
        page = _page(held, body)
        return {"ok": True, **page, "pin_count": 0, "channel_actions_ts": None,
                "channel_actions_count": 0}  # fmt: skip

    def _replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then its replies, oldest first."""
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        if not channel or channel.startswith("#") or not self._known(channel):
            return {"ok": False, "error": "channel_not_found"}
        if (channel, ts) not in self.messages:
            return {"ok": False, "error": "thread_not_found"}
        held = [m for (c, _), m in self.messages.items()
                if c == channel and (m["ts"] == ts or m.get("thread_ts") == ts)]  # fmt: skip
        held.sort(key=lambda m: float(m["ts"]))
        return {"ok": True, **_page(held, body)}

    def _known(self, channel: str) -> bool:
        return channel in self._ids.values() or any(c == channel for c, _ in self.messages)

    def _update(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.channel_id(str(body.get("channel", "")))
        ts = str(body.get("ts", ""))
        message = self.messages.get((channel, ts))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.update({k: body[k] for k in ("text", "blocks") if k in body})
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"],
                "message": message}  # fmt: skip

    def _delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """``chat.delete``: the bot's own message goes (Slack answers its channel and ts)."""
        channel = self.channel_id(str(body.get("channel", "")))
        ts = str(body.get("ts", ""))
        if self.messages.pop((channel, ts), None) is None:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts}

    def _post_ephemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("channel") or not body.get("user"):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _open(self, body: dict[str, Any]) -> dict[str, Any]:
        users = str(body.get("users", ""))
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        dm = self._ids.setdefault(f"@{users}", f"D{len(self._ids) + 1:08d}")
        return {"ok": True, "channel": {"id": dm, "is_im": True, "user": users}}

    def _views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view")
        if not body.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {**view, "id": f"V{next(self._ts):08d}", "team_id": TEAM_ID}}

    def _users_info(self, body: dict[str, Any]) -> dict[str, Any]:
        user = str(body.get("user", ""))
        if not user:
            return {"ok": False, "error": "user_not_found"}
        name = user.lower()
        return {"ok": True, "user": {"id": user, "team_id": TEAM_ID, "name": name,
                "real_name": f"User {user}", "tz": "UTC", "is_bot": False,
                "profile": {"real_name": f"User {user}", "display_name": name,
                            "email": f"{name}@example.com"}}}  # fmt: skip

    def _usergroup_users(self, body: dict[str, Any]) -> dict[str, Any]:
        group = str(body.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        filename, length = str(body.get("filename") or ""), str(body.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        self.uploads.append(Upload(file_id, filename, int(length), body.get("alt_txt")))
        return {"ok": True, "upload_url": self.upload_url(file_id), "file_id": file_id}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        files = body.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        uploads = [self._upload_of(str(f.get("id"))) for f in files if isinstance(f, dict)]
        if len(uploads) != len(files) or any(u is None or u.content is None for u in uploads):
            return {"ok": False, "error": "file_not_found"}
        shared = []
        for upload, item in zip(uploads, files, strict=True):
            assert upload is not None
            assert upload.content is not None
            if len(upload.content) != upload.length:
                return {"ok": False, "error": "file_upload_size_mismatch"}
            upload.title = item.get("title") or upload.filename
            upload.channel_id = body.get("channel_id")
            upload.thread_ts = body.get("thread_ts")
            upload.initial_comment = body.get("initial_comment")
            upload.completed = True
            shared.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": shared}


def _page(messages: list[dict[str, Any]], body: Mapping[str, Any]) -> dict[str, Any]:
    """One page of ``messages`` (already in answer order) as Slack pages them."""
    inclusive = str(body.get("inclusive", "")).lower() in ("1", "true")
    oldest, latest = float(body.get("oldest") or 0), float(body.get("latest") or "inf")
    chosen = [
        m for m in messages
        if (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
        and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
    ]  # fmt: skip
    start = int(str(body.get("cursor") or "0").removeprefix("page:") or 0)
    limit = max(1, min(999, int(body.get("limit") or 100)))
    shown = chosen[start : start + limit]
    if str(body.get("include_all_metadata", "")).lower() not in ("1", "true"):
        shown = [{k: v for k, v in m.items() if k != "metadata"} for m in shown]
    more = start + limit < len(chosen)
    cursor = f"page:{start + limit}" if more else ""
    return {"messages": shown, "has_more": more, "response_metadata": {"next_cursor": cursor}}


def _ratelimited(retry_after: int) -> Answer:
    return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}


async def _body(request: web.Request) -> dict[str, Any]:
    """Query string, form and JSON fields merged; JSON-in-form fields decoded."""
    body: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        data = await request.json() if request.can_read_body else {}
        body.update(data if isinstance(data, dict) else {"_json": data})
    elif request.can_read_body:
        body.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in _JSON_FIELDS:
        if isinstance(body.get(key), str) and body[key].startswith(("[", "{")):
            body[key] = json.loads(body[key])
    return body


__all__ = ["BOT_USER_ID", "TEAM_ID", "UPLOAD", "Call", "FakeSlack", "Upload"]
