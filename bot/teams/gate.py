"""What ``POST /api/messages`` checks before the Agents SDK sees an activity.

The SDK validates an activity with pydantic outside any handler (a ValidationError is a
500), checks only ``type`` and ``conversation.id`` after that, and a turn that trips over
a malformed field fails inside the adapter. Here the body must be a JSON object with the
fields the SDK and ``bot.teams.agent`` read, with their types: ``type``, ``channelId``,
``conversation.id``, ``from.id``, ``recipient.id``, an http(s) ``serviceUrl`` (where any
answer goes), times a UTC datetime can hold, no NUL and no deep nesting (as for webhooks),
an invoke the agent answers; then the SDK's own model must accept it. Anything else is a
400 naming the field, before any turn runs, so nothing is stored.

With credentials this runs after the SDK's JWT check (401 before the body is read).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from microsoft_agents.activity import Activity, AdaptiveCardInvokeValue
from pydantic import ValidationError

from bot.errors import Refusal, field_at, json_kind, shown
from bot.ingest.inbound import first_tree_problem, to_unix
from bot.teams.agent import VERBS

INVOKE_NAME = "adaptiveCard/action"
EXECUTE = "Action.Execute"

_TEXT = (
    "id", "name", "action", "channelId", "locale", "valueType", "textFormat", "inputHint",
    "summary", "topicName", "deliveryMode", "importance", "callerId", "text",
)  # fmt: skip
_ACCOUNTS = ("from", "recipient")
_ACCOUNT_TEXT = ("id", "name", "aadObjectId", "role")
_MEMBERS = ("membersAdded", "membersRemoved")
_OBJECT_LISTS = ("entities", "attachments")
_TIMES = ("timestamp", "localTimestamp")


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def check_activity(body: bytes) -> Refusal | tuple[dict[str, Any], Activity]:
    """The activity as JSON and as the SDK's model, or why it is refused (400)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _refusal("", f"invalid JSON: {exc}")
    if not isinstance(doc, dict):
        return _refusal("", f"expected an activity object, got {json_kind(doc)}")
    found = first_tree_problem(doc)
    if found is not None:
        return _refusal(*found)
    try:
        _check_fields(doc)
        activity = Activity.model_validate(doc)
    except ValidationError as exc:
        bad = _from_pydantic(exc)
        return _refusal(bad.field, bad.message)
    except _Bad as bad:
        return _refusal(bad.field, bad.message)
    return doc, activity


def _check_fields(doc: dict[str, Any]) -> None:
    kind = _text(doc, "type")
    conversation = _object(doc.get("conversation"), "conversation")
    _text(conversation, "id", "conversation")
    _service_url(doc.get("serviceUrl"))
    _text(doc, "channelId")  # with from.id, the key of the SDK's user and conversation state
    _text(_object(doc.get("from"), "from"), "id", "from")
    _text(_object(doc.get("recipient"), "recipient"), "id", "recipient")  # the bot: replies
    if kind == "invoke":
        _check_invoke(doc)
    if doc.get("replyToId") is not None:
        _text(doc, "replyToId")
    for name in _TEXT:
        _optional_text(doc, name, "")
    for name in _ACCOUNTS:
        if doc.get(name) is not None:
            account = _object(doc[name], name)
            for key in _ACCOUNT_TEXT:
                _optional_text(account, key, name)
    for name in _MEMBERS:
        for i, member in enumerate(_list(doc.get(name), name)):
            _text(_object(member, f"{name}[{i}]"), "id", f"{name}[{i}]")
    for name in _OBJECT_LISTS:
        for i, item in enumerate(_list(doc.get(name), name)):
            _object(item, f"{name}[{i}]")
    if doc.get("channelData") is not None:
        _object(doc["channelData"], "channelData")
    for name in _TIMES:
        if doc.get(name) is not None:
            if not isinstance(doc[name], str):
                raise _Bad(name, f"expected an ISO 8601 time, got {json_kind(doc[name])}")
            try:
                to_unix(doc[name])
            except ValueError as exc:
                raise _Bad(name, str(exc)) from None


def _check_invoke(doc: dict[str, Any]) -> None:
    """An invoke waits for its answer; the only one the agent answers is a card button's
    ``adaptiveCard/action``, an ``Action.Execute`` with one of its verbs, its value as the
    SDK's own model reads it (anything else would be a 501 or a turn error)."""
    name = doc.get("name")
    if name != INVOKE_NAME:
        raise _Bad("name", f"expected {INVOKE_NAME!r} (a card button), got {shown(name)}")
    try:
        value = AdaptiveCardInvokeValue.model_validate(_object(doc.get("value"), "value"))
    except ValidationError as exc:
        raise _from_pydantic(exc, "value") from None
    if value.action is None:
        raise _Bad("value.action", "expected an object, got null")
    if value.action.type != EXECUTE:
        raise _Bad("value.action.type", f"expected {EXECUTE!r}, got {shown(value.action.type)}")
    if not VERBS.match(value.action.verb or ""):
        raise _Bad("value.action.verb", f"{shown(value.action.verb)} is not a leadbot action")


def _from_pydantic(exc: ValidationError, prefix: str = "") -> _Bad:
    """The first error of the SDK's model, at its field."""
    error = exc.errors()[0]
    field = field_at(prefix, ".".join(str(part) for part in error["loc"]))
    return _Bad(field, f"{error['msg']} (the Bot Framework activity schema)")


def _service_url(value: Any) -> None:
    """Where the SDK sends any answer: an http(s) URL with a host."""
    if not isinstance(value, str) or not value:
        raise _Bad("serviceUrl", f"expected the Bot Connector's URL, got {json_kind(value)}")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Bad("serviceUrl", f"expected an http(s) URL with a host, got {shown(value)}")


def _text(mapping: dict[str, Any], name: str, prefix: str = "") -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value.strip():  # the SDK strips ids, then checks
        raise _Bad(field_at(prefix, name), f"expected a non-empty string, got {shown(value)}")
    return value


def _optional_text(mapping: dict[str, Any], name: str, prefix: str) -> None:
    value = mapping.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad(field_at(prefix, name), f"expected a string, got {json_kind(value)}")


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(field, f"expected an object, got {json_kind(value)}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    """A list, or none at all (absent or null)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(field, f"expected a list, got {json_kind(value)}")
    return value


def _refusal(field: str, message: str) -> Refusal:
    return Refusal(400, "invalid", message, field)
