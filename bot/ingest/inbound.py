"""Parse Segment-spec calls (identify, track, page, screen, group, alias, batch) into events.

Two contracts. Strict (``/webhooks/events``): a body is accepted whole or refused whole, and
every problem found (up to MAX_PROBLEMS) is reported at once with its field path, such as
`batch[3].timestamp`, so a client can fix all of them in one go. Lenient (Segment's tracking
API, ``/v1/*``, which SDKs post to): a call that cannot be used is dropped and reported by
index, and the others are kept, because an SDK that gets a 4xx drops the whole batch.
Either way a body that is not JSON, not a call or a batch, or too large is refused whole.

Times are put on the server's clock as Segment does: a client's clock is corrected by how
far its ``sentAt`` is from the time the call was received, and a time still far in the
future is clamped to the receipt. This runs on every request, so it is hand-written checks
over orjson's output rather than a validation library.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from bot.errors import InputError, field_at, json_kind, shown
from bot.ingest.order_fields import check_order

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
"""Call types accepted; screen is read as page and group as identify (company traits)."""
MAX_BATCH_ITEMS = 10_000
MAX_ID_CHARS = 255
MAX_PROBLEMS = 20
MAX_DEPTH = 64
"""Objects and lists nested deeper than this in a call are refused. No analytics call needs
more than a few levels; orjson cannot write past 254 (the call is stored and, with the writer
process, framed as JSON), and a depth limit keeps every walk over a payload short."""
_MIN_UNIX = -62_135_596_800.0  # 0001-01-01T00:00:00Z: the first second a datetime can hold
_MAX_UNIX = 253_402_300_799.0  # 9999-12-31T23:59:59Z: the last second datetime can show
_NUL_ESCAPED = b"\\u0000"  # how JSON writes U+0000 (raw control bytes are invalid JSON)
_NUL = "contains a NUL character (\\u0000): not accepted, as PostgreSQL cannot store it"
_MS_ABOVE = 1e11  # a number above this is milliseconds (1e11 s is the year 5138)
_EXPECTED_TYPES = ", ".join(CALL_TYPES)


class InboundEvent(NamedTuple):
    """One call, normalized; `raw` is the call as received (stored as the payload), as JSON
    text: serialized once, here, where its size is checked, not again by the writer.

    A named tuple rather than a frozen dataclass: thousands are built a second, and between
    processes (bot/ingest/writer.py) they travel as plain lists."""

    message_id: str
    type: str  # "identify" | "track" | "page" | "alias"
    user_id: str | None
    email: str | None
    anonymous_id: str | None
    previous_id: str | None
    name: str | None
    traits: dict[str, Any]
    properties: dict[str, Any]
    timestamp: float  # unix seconds, UTC
    raw: str  # JSON of the call object (keys sorted; without any write key)

    @property
    def identity(self) -> tuple[str, str]:
        """The strongest identity: user_id, else email, else anonymous_id, as (kind, value)."""
        if self.user_id is not None:
            return "user_id", self.user_id
        if self.email is not None:
            return "email", self.email
        assert self.anonymous_id is not None, "parse_body never returns an event without identity"
        return "anonymous_id", self.anonymous_id


class _Problems:
    """Collects (field, message) pairs; stops listing after MAX_PROBLEMS."""

    __slots__ = ("count", "items", "size")

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.count = 0  # found, listed or not: tells a call whether it added any
        self.size = False

    def add(self, field: str, message: str, *, size: bool = False) -> None:
        self.count += 1
        self.size = self.size or size
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((field, message))

    @property
    def full(self) -> bool:
        return len(self.items) >= MAX_PROBLEMS

    def error(self) -> InputError:
        items = self.items
        if self.full:
            items = [*items, ("", f"stopped after {MAX_PROBLEMS} problems: fix these and resend")]
        return InputError(413 if self.size else 400, items)


@dataclass(slots=True)
class _Defaults:
    """What a call falls back on (the batch's context and sentAt, the server's clock), and
    how many times were clamped."""

    context: dict[str, Any] | None
    context_path: str
    sent_at: float | None
    now: float
    max_event_bytes: int
    nul: bool  # the body has an escaped NUL somewhere: look for it in every string and key
    shallow: bool  # the body has at most MAX_DEPTH brackets: nothing in it can nest too deep
    call_type: str | None = None  # the route's type (``/v1/track``): it overrides the call's
    clamped: int = 0


@dataclass(frozen=True, slots=True)
class Rejected:
    """A call the lenient contract dropped: its index in the batch, the field, the problem."""

    index: int
    field: str
    error: str


@dataclass(slots=True)
class Parsed:
    """A body's usable calls, the calls dropped (lenient only), and the count of event
    times clamped to the receipt because they were far in the future."""

    events: list[InboundEvent]
    rejected: list[Rejected]
    clamped: int


def parse_body(
    body: bytes,
    *,
    max_body_bytes: int = 1_048_576,
    max_event_bytes: int = 32_768,
    now: float,
) -> list[InboundEvent]:
    """Parse a webhook body (one call, `{"batch": [...]}` or a list of calls) into events.

    `now` (unix seconds) is the receipt: it stamps calls that carry no time. Raises
    InputError (400, or 413 when a size limit is passed) listing every problem; nothing is
    returned unless all calls pass.
    """
    doc = load_json(body, max_body_bytes=max_body_bytes)
    return parse_doc(doc, body=body, now=now, max_event_bytes=max_event_bytes).events


def load_json(body: bytes, *, max_body_bytes: int) -> Any:
    """The body's JSON document; InputError when it is too large or not JSON."""
    if len(body) > max_body_bytes:
        raise InputError(
            413, [("", f"body is {len(body)} bytes, over the limit of {max_body_bytes}")]
        )
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(400, [("", json_problem(body, exc))]) from None


def parse_doc(
    doc: Any,
    *,
    body: bytes,
    now: float,
    max_event_bytes: int = 32_768,
    lenient: bool = False,
    call_type: str | None = None,
) -> Parsed:
    """The calls of a decoded body (`body` is its raw bytes, searched once for NULs).

    Strict: InputError unless every call passes. Lenient: calls with problems are dropped
    and listed in `Parsed.rejected`; only a body that is not a call or a batch at all is
    refused. `call_type` (a route such as ``/v1/track``) reads the body as one call of that
    type, whatever its own `type` says.
    """
    if isinstance(doc, list) and call_type is None:
        doc = {"batch": doc}  # Segment's batched webhook destination posts a bare array
    if not isinstance(doc, dict):
        expected = "one call" if call_type else 'one call, or {"batch": [...]}'
        raise InputError(400, [("", f"expected a JSON object ({expected}), got {json_kind(doc)}")])
    problems = _Problems()
    nul = _NUL_ESCAPED in body  # a byte search: the walk that names the field runs only then
    # Byte counts too: brackets in strings count, so a body under the bound surely is fine.
    shallow = body.count(b"{") + body.count(b"[") <= MAX_DEPTH
    defaults = _Defaults(None, "", None, float(now), max_event_bytes, nul, shallow, call_type)
    rejected: list[Rejected] = []
    if "batch" in doc and call_type is None:
        events = _parse_batch(doc, problems, defaults, rejected if lenient else None)
    else:
        event = _parse_call(doc, "", defaults, problems)
        events = [event] if event is not None else []
        if lenient and problems.count:
            rejected.append(Rejected(0, *problems.items[0]))
            problems = _Problems()
    if problems.count:
        raise problems.error()
    return Parsed(events, rejected, defaults.clamped)


def _parse_batch(
    doc: dict[str, Any],
    problems: _Problems,
    defaults: _Defaults,
    rejected: list[Rejected] | None,
) -> list[InboundEvent]:
    """The batch's calls. With `rejected` (lenient), a call with problems is dropped and
    listed there; without, its problems are the body's."""
    items = doc["batch"]
    if not isinstance(items, list):
        problems.add("batch", f"expected a list of calls, got {json_kind(items)}")
    elif not items:
        problems.add("batch", "batch is empty: send at least one call")
    elif len(items) > MAX_BATCH_ITEMS:
        message = f"batch has {len(items)} calls, over the limit of {MAX_BATCH_ITEMS}"
        problems.add("batch", message, size=True)
    context = _object(doc, "context", "", problems)
    if context is not None:  # the calls' e-mail may come from it
        _check_tree(context, "context", problems, defaults)
    sent_at = _time_field(doc, "sentAt", "", problems)
    if problems.count:
        return []
    defaults.context, defaults.context_path, defaults.sent_at = context, "context", sent_at
    events: list[InboundEvent] = []
    for i, item in enumerate(items):
        if rejected is None:
            if problems.full:
                break
            event = _parse_call(item, f"batch[{i}]", defaults, problems)
        else:
            own = _Problems()
            event = _parse_call(item, f"batch[{i}]", defaults, own)
            if own.count:
                rejected.append(Rejected(i, *own.items[0]))
        if event is not None:
            events.append(event)
    return events


def _parse_call(
    call: Any, prefix: str, defaults: _Defaults, problems: _Problems
) -> InboundEvent | None:
    """One call at `prefix` ("" or "batch[i]"); None when it added problems."""
    if not isinstance(call, dict):
        problems.add(prefix, f"expected a call object, got {json_kind(call)}")
        return None
    if "writeKey" in call or defaults.call_type is not None:
        call = _as_stored(call, defaults.call_type)
    if not _check_tree(call, prefix, problems, defaults):
        return None  # too deep to write back, or a NUL no database column should hold
    canonical = orjson.dumps(call, option=orjson.OPT_SORT_KEYS)
    if len(canonical) > defaults.max_event_bytes:
        message = f"call is {len(canonical)} bytes, over the limit of {defaults.max_event_bytes}"
        problems.add(prefix, message, size=True)
        return None
    before = problems.count
    kind = _call_type(call, prefix, problems)
    message_id = _message_id(call, prefix, canonical, problems)
    timestamp = _timestamp(call, prefix, defaults, problems)
    parts = _Parts(
        traits=_object(call, "traits", prefix, problems),
        properties=_object(call, "properties", prefix, problems),
        context=_object(call, "context", prefix, problems),
        context_path=field_at(prefix, "context"),
    )
    if parts.context is None:
        parts.context, parts.context_path = defaults.context, defaults.context_path
    user_id, email, anonymous_id, previous_id = _identity(call, kind, prefix, parts, problems)
    name, traits, properties = _content(call, kind, prefix, parts, problems)
    if kind is None or problems.count != before:
        return None
    return InboundEvent(
        message_id=message_id,
        type=_NORMALIZED[kind],
        user_id=user_id,
        email=email,
        anonymous_id=anonymous_id,
        previous_id=previous_id,
        name=name,
        traits=traits,
        properties=properties,
        timestamp=timestamp,
        raw=canonical.decode(),
    )


_NORMALIZED = {t: t for t in CALL_TYPES} | {"screen": "page", "group": "identify"}


def _as_stored(call: dict[str, Any], call_type: str | None) -> dict[str, Any]:
    """The call as it is kept: without a write key (a credential is never stored; SDKs may
    put one in each call) and with the route's type when it came to ``/v1/<type>``."""
    kept = {key: value for key, value in call.items() if key != "writeKey"}
    if call_type is not None:
        kept["type"] = call_type
    return kept


@dataclass(slots=True)
class _Parts:
    """The call's objects, checked once and shared by the identity and content readers."""

    traits: dict[str, Any] | None
    properties: dict[str, Any] | None
    context: dict[str, Any] | None
    context_path: str  # where `context` came from: the call's own, or the batch's


def _call_type(call: dict[str, Any], prefix: str, problems: _Problems) -> str | None:
    value = call.get("type")
    if isinstance(value, str) and value in _NORMALIZED:
        return value
    if value is None:
        message = f"missing call type: expected one of {_EXPECTED_TYPES}"
    else:
        message = f"unknown call type {shown(value)}: expected one of {_EXPECTED_TYPES}"
    problems.add(field_at(prefix, "type"), message)
    return None


def _message_id(call: dict[str, Any], prefix: str, canonical: bytes, problems: _Problems) -> str:
    """The sender's messageId, else a hash of the call, so an identical retry dedups."""
    value = call.get("messageId")
    if value is None:
        return "sha256:" + hashlib.sha256(canonical).hexdigest()
    if not isinstance(value, str) or not value:
        problems.add(
            field_at(prefix, "messageId"), f"expected a non-empty string, got {shown(value)}"
        )
    elif len(value) > MAX_ID_CHARS:
        message = f"is {len(value)} characters, over the limit of {MAX_ID_CHARS}"
        problems.add(field_at(prefix, "messageId"), message)
    return str(value)


def _identity(
    call: dict[str, Any], kind: str | None, prefix: str, parts: _Parts, problems: _Problems
) -> tuple[str | None, str | None, str | None, str | None]:
    """(user_id, email, anonymous_id, previous_id); at least one of the first three is needed."""
    before = problems.count
    user_id = _id(call, "userId", prefix, problems)
    anonymous_id = _id(call, "anonymousId", prefix, problems)
    email = _email(kind, prefix, parts, problems)
    previous_id = None
    if kind == "alias":
        previous_id = _id(call, "previousId", prefix, problems)
        for field, role in (("previousId", "the old id"), ("userId", "the new id")):
            if call.get(field) in (None, ""):
                problems.add(field_at(prefix, field), f"alias needs {field} ({role})")
    elif user_id is None and email is None and anonymous_id is None and problems.count == before:
        message = "missing identity: give userId, anonymousId or traits.email"
        problems.add(field_at(prefix, "userId"), message)
    return user_id, email, anonymous_id, previous_id


def _id(call: dict[str, Any], name: str, prefix: str, problems: _Problems) -> str | None:
    """An id field as a string (numbers are stringified); None when absent or empty."""
    value = call.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        problems.add(field_at(prefix, name), f"expected a string or number, got {json_kind(value)}")
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_ID_CHARS:
        message = f"is {len(text)} characters, over the limit of {MAX_ID_CHARS}"
        problems.add(field_at(prefix, name), message)
        return None
    return text


def _email(kind: str | None, prefix: str, parts: _Parts, problems: _Problems) -> str | None:
    """The first non-empty of traits.email, properties.email, context.traits.email.

    A group call's traits describe the company, so its traits.email is not the person's.
    """
    sources: list[tuple[str, Any]] = []
    if parts.traits and kind != "group":
        sources.append((field_at(prefix, "traits.email"), parts.traits.get("email")))
    if parts.properties:
        sources.append((field_at(prefix, "properties.email"), parts.properties.get("email")))
    context_traits = parts.context.get("traits") if parts.context else None
    if isinstance(context_traits, dict):
        sources.append((f"{parts.context_path}.traits.email", context_traits.get("email")))
    for field, value in sources:
        if value is None:
            continue
        if not isinstance(value, str):
            problems.add(field, f"expected an email address, got {json_kind(value)}")
            return None
        email = value.strip().lower()
        if not email:
            continue
        local, _, domain = email.rpartition("@")
        if not local or not domain:
            problems.add(field, f"not an email address: {shown(value)}")
            return None
        return email
    return None


def _content(
    call: dict[str, Any], kind: str | None, prefix: str, parts: _Parts, problems: _Problems
) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
    """(name, traits, properties) for the call's type; traits only on identify and group."""
    if kind == "identify":
        # RudderStack's SDKs send identify traits in context.traits only; the call's own
        # traits win where both name a trait.
        context_traits = parts.context.get("traits") if parts.context else None
        if isinstance(context_traits, dict):
            return None, {**context_traits, **(parts.traits or {})}, {}
        return None, dict(parts.traits or {}), {}
    if kind == "group":
        return None, {"company": _company(call, prefix, parts, problems)}, {}
    if kind == "track":
        name, properties = _event_name(call, prefix, problems), dict(parts.properties or {})
        if name is not None:  # an order event's fields (bot.ingest.order_fields)
            check_order(name, properties, field_at(prefix, "properties"), problems.add)
        return name, {}, properties
    if kind in ("page", "screen"):
        name = _string(call, "name", prefix, problems)
        return name, {}, _page_properties(prefix, parts, problems)
    return None, {}, {}


GROUP_TRAIT_NAMES = {"employees": "employee_count"}
"""The group spec's trait names that differ from those of an identify's ``company`` object
(which the model reads, as ``company.employee_count``); the others (name, industry,
website, plan) are the same in both."""


def _company(
    call: dict[str, Any], prefix: str, parts: _Parts, problems: _Problems
) -> dict[str, Any]:
    """A group call's traits as the lead's company traits, under the identify spec's names."""
    company: dict[str, Any] = {}
    for name, value in (parts.traits or {}).items():
        spec_name = GROUP_TRAIT_NAMES.get(name, name)
        if spec_name == name or spec_name not in (parts.traits or {}):
            company[spec_name] = value
    group_id = _id(call, "groupId", prefix, problems)
    if group_id is not None:
        company.setdefault("id", group_id)
    return company


def _event_name(call: dict[str, Any], prefix: str, problems: _Problems) -> str | None:
    value = call.get("event")
    if isinstance(value, str) and value.strip():
        return value
    if value is None or isinstance(value, str):
        problems.add(field_at(prefix, "event"), "track needs a non-empty event name")
    else:
        problems.add(field_at(prefix, "event"), f"expected a string, got {json_kind(value)}")
    return None


def _page_properties(prefix: str, parts: _Parts, problems: _Problems) -> dict[str, Any]:
    """The page's properties with `path` always set, and `url` when known.

    Both come from properties, else context.page (where server-side libraries put them);
    a missing path is derived from the url ("/" for a bare host, "" when there is no url).
    """
    props = dict(parts.properties or {})
    props_path = field_at(prefix, "properties")
    page = parts.context.get("page") if parts.context else None
    page = page if isinstance(page, dict) else {}
    page_path = f"{parts.context_path}.page"
    url, url_field = _string(props, "url", props_path, problems), f"{props_path}.url"
    if not url:
        url, url_field = _string(page, "url", page_path, problems), f"{page_path}.url"
    path = _string(props, "path", props_path, problems) or _string(
        page, "path", page_path, problems
    )
    if url:
        props["url"] = url
        if not path:
            try:
                path = urlsplit(url).path or "/"
            except ValueError:
                problems.add(url_field, f"not a URL: {shown(url)}")
    props["path"] = path or ""
    return props


SKEW_TOLERANCE = 30.0
"""Seconds a client's ``sentAt`` may differ from the receipt before its clock is corrected:
more than network latency, less than any clock worth correcting."""
FUTURE_TOLERANCE = 60.0
"""Seconds an event time may lie after the receipt (once corrected) before it is clamped to
the receipt: a signal cannot come from the future, and decay would count it as fresh."""


def _timestamp(
    call: dict[str, Any], prefix: str, defaults: _Defaults, problems: _Problems
) -> float:
    """When the call happened, on the server's clock (unix seconds).

    A call relayed by a CDP (Segment's or RudderStack's webhook) carries their
    ``receivedAt``: its ``timestamp`` is corrected already, and ``originalTimestamp`` is
    corrected by ``receivedAt - sentAt``, as Segment does. A call straight from a client
    uses ``timestamp``, else ``originalTimestamp``, else ``sentAt`` (the call's, then the
    batch's), else the receipt; when its ``sentAt`` is more than SKEW_TOLERANCE from the
    receipt, the client's clock is off by that much and the time is moved by it.
    """
    own = _time_field(call, "timestamp", prefix, problems)
    original = _time_field(call, "originalTimestamp", prefix, problems)
    sent = _time_field(call, "sentAt", prefix, problems)
    sent = defaults.sent_at if sent is None else sent
    received = _time_field(call, "receivedAt", prefix, problems)
    now = defaults.now
    if received is not None:
        if own is not None:
            when = own
        elif original is not None and sent is not None:
            when = original + (received - sent)
        else:
            when = received if original is None else original
    else:
        given = own if own is not None else original
        when = given if given is not None else (now if sent is None else sent)
        if sent is not None and abs(now - sent) > SKEW_TOLERANCE:
            when += now - sent
    if when > now + FUTURE_TOLERANCE:
        defaults.clamped += 1
        return now
    return max(when, _MIN_UNIX)


def _time_field(
    mapping: dict[str, Any], name: str, prefix: str, problems: _Problems
) -> float | None:
    value = mapping.get(name)
    if value is None:
        return None
    try:
        return to_unix(value)
    except ValueError as exc:
        problems.add(field_at(prefix, name), str(exc))
        return None


def to_unix(value: Any) -> float:
    """Unix seconds from ISO 8601 text (naive means UTC) or a number of seconds or ms.

    A number above 1e11 is read as milliseconds. Raises ValueError with a message fit for
    the client.
    """
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp()
        except (ValueError, OverflowError):
            raise ValueError(f"not an ISO 8601 time: {shown(value)}") from None
        # The offset may push a valid local time out of what a UTC datetime (and so either
        # database) can hold: 9999-12-31T23:00:00-05:00 is in the year 10000.
        if not _MIN_UNIX <= seconds <= _MAX_UNIX:
            raise ValueError(
                f"out of range: {shown(value)} is not between the years 1 and 9999 in UTC"
            )
        return seconds
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > _MS_ABOVE else float(value)
        if 0 <= seconds <= _MAX_UNIX:
            return seconds
        raise ValueError(f"not a unix time in seconds or milliseconds: {shown(value)}")
    raise ValueError(f"expected an ISO 8601 time or unix seconds, got {json_kind(value)}")


def _check_tree(value: Any, path: str, problems: _Problems, defaults: _Defaults) -> bool:
    """False, with the problem added, when `value` nests deeper than MAX_DEPTH or (when the
    body has a NUL) holds a NUL in a string or a key. Only the first such field is named;
    the walk that names it (building every field's path) runs only when there is one."""
    if not defaults.nul and (defaults.shallow or not _deeper_than(value, MAX_DEPTH)):
        return True
    found = first_tree_problem(value, path, nul=defaults.nul)
    if found is not None:
        problems.add(*found)
    return found is None


def first_tree_problem(value: Any, prefix: str = "", *, nul: bool = True) -> tuple[str, str] | None:
    """(field, message) for the first container in `value` nested deeper than MAX_DEPTH, or
    string or key holding a NUL; None when there is none. The chat adapters check what
    they are sent with it too, so every entry point refuses the same things."""
    return next(iter(_tree_problems(value, prefix, nul=nul)), None)


def _deeper_than(root: Any, limit: int) -> bool:
    """Whether containers in `root` nest deeper than `limit` (no paths, no strings read)."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
    return False


def _tree_problems(root: Any, prefix: str, *, nul: bool) -> Iterator[tuple[str, str]]:
    """(field, message) for each container nested too deep and, when `nul`, each string or
    key holding a NUL. Iterative: orjson reads up to 1,024 levels, past Python's stack."""
    stack: list[tuple[Any, str, int]] = [(root, prefix, 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                yield _cut(path), _NUL
            continue
        if depth > MAX_DEPTH:
            yield _cut(path), f"nested deeper than {MAX_DEPTH} levels"
            continue
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        children: list[tuple[Any, str, int]] = []
        for key, item in pairs:  # a path is built only for what is looked into or named
            if nul and isinstance(key, str) and "\x00" in key:
                yield _cut(field_at(path, key)), "key " + _NUL
            elif isinstance(item, dict | list) or (nul and isinstance(item, str)):
                at = field_at(path, key) if isinstance(key, str) else f"{path}[{key}]"
                children.append((item, at, depth + 1))
        stack.extend(reversed(children))  # popped in document order


def _cut(path: str) -> str:
    """A field path as it goes back to the client, cut short: keys are the sender's own."""
    return path if len(path) <= 200 else path[:197] + "..."


def _object(
    mapping: dict[str, Any], name: str, prefix: str, problems: _Problems
) -> dict[str, Any] | None:
    value = mapping.get(name)
    if value is None or isinstance(value, dict):
        return value
    problems.add(field_at(prefix, name), f"expected an object, got {json_kind(value)}")
    return None


def _string(mapping: dict[str, Any], name: str, prefix: str, problems: _Problems) -> str | None:
    value = mapping.get(name)
    if value is None or isinstance(value, str):
        return value
    problems.add(field_at(prefix, name), f"expected a string, got {json_kind(value)}")
    return None


def json_problem(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """What is wrong with a body that is not JSON, in words a sender can act on (the
    parser's own, "invalid literal, expected 'null'", means little to them)."""
    if not body.strip():
        return 'invalid JSON: the body is empty (expected one call, or {"batch": [...]})'
    at = f"line {exc.lineno}, column {exc.colno}"
    if exc.pos >= len(body.rstrip()):
        return f"invalid JSON: the body ends early, at {at} (cut off, or a bracket not closed)"
    near = body[exc.pos : exc.pos + 20].decode("utf-8", "replace")
    return f"invalid JSON at {at}: unexpected {near!r} (not a JSON value there)"
