"""What ``POST /slack/events`` checks before Bolt sees a request.

Bolt's aiohttp adapter decodes and parses the body before its own signature check, and its
listeners index the payload as Slack documents it; so an unsigned, garbled or oddly typed
request was a 500. Here the signature is checked first, on the raw bytes (401, before
anything parses them); then the body must be UTF-8, parse as Bolt parses it, be a request
this app handles (its slash command, its buttons, the disqualify form) and have the fields
those listeners read, with the types they read them as (400 naming the field). Nothing
refused here reaches the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt.request.internals import (
    build_normalized_headers,
    extract_content_type,
    parse_body,
)
from slack_sdk.signature import SignatureVerifier

from bot.errors import Refusal, field_at, json_kind, shown
from bot.ingest.inbound import first_tree_problem
from bot.slack.alert_blocks import CRM_ACTION
from bot.slack.customer_blocks import CUSTOMER_BUTTONS
from bot.slack.proposal_blocks import APPROVE_ACTION, REJECT_ACTION
from bot.slack.views import DISQUALIFY_CALLBACK

BUTTONS = re.compile(r"^lead_(claim|qualify|disqualify|snooze)$")
"""The alert's buttons (``bot.slack.app`` listens to the same pattern)."""
MAX_SKEW_SECONDS = 300  # Slack's rule: a request more than 5 minutes off may be a replay
_TS_HEADER = "X-Slack-Request-Timestamp"
_SIG_HEADER = "X-Slack-Signature"
_CONTEXT_IDS = ("team", "enterprise", "user", "channel")
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread")


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class SlackGate:
    """``check(headers, body)`` → a Refusal, or the body as text for Bolt.

    ``command`` is the slash command this app answers (``/lead``)."""

    def __init__(
        self, signing_secret: str, *, command: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._key = signing_secret.encode()
        self._command = command
        self._clock = clock

    def check(self, headers: Mapping[str, str], body: bytes) -> Refusal | str:
        problem = self._signature_problem(headers, body)
        if problem is not None:
            return Refusal(401, "signature", problem, "signature")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Refusal(400, "invalid", f"body is not UTF-8 (byte {exc.start})", "")
        try:
            self._check_payload(_parsed(text, headers))
        except _Bad as bad:
            return Refusal(400, "invalid", bad.message, bad.field)
        return text

    def _signature_problem(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Why the request is not Slack's, or None. The raw bytes are signed: a body that is
        not UTF-8 can still be checked (and then refused as malformed, not as forged)."""
        stamp, signature = headers.get(_TS_HEADER), headers.get(_SIG_HEADER)
        if not stamp or not signature:
            return f"missing signature: send {_TS_HEADER} and {_SIG_HEADER}"
        if not (stamp.isascii() and stamp.isdigit()):
            return f"malformed {_TS_HEADER}: expected unix seconds"
        if abs(self._clock() - int(stamp)) > MAX_SKEW_SECONDS:
            return f"{_TS_HEADER} is more than 5 minutes off: a replay, or a wrong clock"
        if not signature.isascii():
            return f"malformed {_SIG_HEADER}: expected v0=<hex>"
        try:
            expected = self._verifier.generate_signature(timestamp=stamp, body=body.decode())
        except UnicodeDecodeError:  # the SDK signs text; Slack signs the bytes it sent
            digest = hmac.new(self._key, b"v0:%s:%s" % (stamp.encode(), body), hashlib.sha256)
            expected = "v0=" + digest.hexdigest()
        if expected is None or not hmac.compare_digest(expected, signature):
            return "no matching signature"
        return None

    def _check_payload(self, body: dict[str, Any]) -> None:
        _check_context(body, "")
        if "command" in body:
            self._check_command(body)
            return
        kind = body.get("type")
        if kind == "block_actions":
            _check_actions(body)
        elif kind == "view_submission":
            _check_view(body)
        elif kind == "url_verification":
            _text(body, "challenge")
        elif body.get("ssl_check") != "1":
            raise _Bad("type", f"not handled here: {shown(kind)} (leadbot takes {self._command}, "
                       "its alert and proposal buttons and the disqualify form)")  # fmt: skip

    def _check_command(self, body: dict[str, Any]) -> None:
        command = _text(body, "command")
        if command != self._command:
            raise _Bad("command", f"{shown(command)} is not handled here: leadbot answers "
                       f"{self._command}")  # fmt: skip
        _text(body, "user_id")
        _url(body, "response_url")
        for name in ("text", "user_name"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise _Bad(name, f"expected a string, got {json_kind(body[name])}")


def _parsed(text: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """The body as Bolt will see it (Bolt's own parser: JSON, a form, or a form whose
    ``payload`` is JSON, chosen by Bolt's reading of Content-Type), which must be an
    object."""
    media = extract_content_type(build_normalized_headers(headers))  # type: ignore[arg-type]
    field = "" if media == "application/json" or text.startswith("{") else "payload"
    try:
        body = parse_body(text, media)
    except json.JSONDecodeError as exc:
        raise _Bad(field, f"invalid JSON: {exc}") from None
    except RecursionError:  # the standard library's parser recurses per level
        raise _Bad(field, "invalid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise _Bad("", f"expected an object, got {json_kind(body)}")
    deep_or_nul = first_tree_problem(body)  # a feedback note with a NUL fails PostgreSQL
    if deep_or_nul is not None:
        raise _Bad(*deep_or_nul)
    if not body:
        raise _Bad("", "empty request: expected a slash command, an interaction or an event")
    return body


def _check_context(body: dict[str, Any], prefix: str, depth: int = 0) -> None:
    """The fields Bolt reads for every request to build its context: ids that are text or
    objects with a text ``id``, ``authorizations`` a list of objects, a ``response_url``."""
    for name in _CONTEXT_IDS:
        value = body.get(name)
        if isinstance(value, dict):
            if value.get("id") is not None and not isinstance(value["id"], str):
                raise _Bad(
                    field_at(prefix, f"{name}.id"),
                    f"expected a string, got {json_kind(value['id'])}",
                )
        elif value is not None and not isinstance(value, str):
            raise _Bad(
                field_at(prefix, name), f"expected an object or a string, got {json_kind(value)}"
            )
    authorizations = body.get("authorizations")
    if authorizations is not None:
        field = field_at(prefix, "authorizations")
        for i, item in enumerate(_list(authorizations, field)):
            _check_context(_object(item, f"{field}[{i}]"), f"{field}[{i}]", depth + 1)
    if depth < 3:
        for name in _NESTED:
            if isinstance(body.get(name), dict):
                _check_context(body[name], field_at(prefix, name), depth + 1)
    if prefix:
        return
    if "response_url" in body:
        _url(body, "response_url")
    if "response_urls" in body:
        for i, item in enumerate(_list(body["response_urls"], "response_urls")):
            _url(_object(item, f"response_urls[{i}]"), "response_url", f"response_urls[{i}]")


def _check_actions(body: dict[str, Any]) -> None:
    """A click: the alert's buttons read the user, channel, message and the action's value
    (the lead id; a model version for Approve and Reject); Disqualify opens a form."""
    _text(_object(body.get("user"), "user"), "id", "user")
    actions = _list(body.get("actions"), "actions")
    if not actions:
        raise _Bad("actions", "expected at least one action")
    for i, item in enumerate(actions):
        _text(_object(item, f"actions[{i}]"), "action_id", f"actions[{i}]")
    action = actions[0]
    action_id = action["action_id"]
    if action_id == CRM_ACTION:
        return
    known = BUTTONS.match(action_id) or CUSTOMER_BUTTONS.match(action_id)
    if not (known or action_id in (APPROVE_ACTION, REJECT_ACTION)):
        raise _Bad("actions[0].action_id", f"{shown(action_id)} is not a leadbot button")
    value = _text(action, "value", "actions[0]")
    if action_id in (APPROVE_ACTION, REJECT_ACTION) and not (value.isascii() and value.isdigit()):
        raise _Bad("actions[0].value", f"expected a model version number, got {shown(value)}")
    _text(_object(body.get("channel"), "channel"), "id", "channel")
    message = _object(body.get("message"), "message")
    _text(message, "ts", "message")
    blocks = message.get("blocks")
    if blocks is not None:
        for i, block in enumerate(_list(blocks, "message.blocks")):
            _object(block, f"message.blocks[{i}]")
    if action_id == "lead_disqualify":
        _text(body, "trigger_id")


def _check_view(body: dict[str, Any]) -> None:
    """The disqualify form: who sent it, the alert it came from (``private_metadata``, set
    when the form was opened) and the values picked."""
    _text(_object(body.get("user"), "user"), "id", "user")
    view = _object(body.get("view"), "view")
    _text(view, "type", "view")  # Bolt reads it to tell a workflow step from a modal
    callback = view.get("callback_id")
    if callback != DISQUALIFY_CALLBACK:
        raise _Bad("view.callback_id", f"{shown(callback)} is not a leadbot form")
    meta_text = _text(view, "private_metadata", "view")
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError as exc:
        raise _Bad("view.private_metadata", f"invalid JSON: {exc}") from None
    meta = _object(meta, "view.private_metadata")
    for name in ("lead", "channel", "ts"):
        _text(meta, name, "view.private_metadata")
    values = _object(_object(view.get("state"), "view.state").get("values"), "view.state.values")
    for block_id, block in values.items():
        for action_id, state in _object(block, f"view.state.values.{block_id}").items():
            field = f"view.state.values.{block_id}.{action_id}"
            state = _object(state, field)
            picked = state.get("selected_option")
            if picked is not None:
                _text(
                    _object(picked, f"{field}.selected_option"), "value", f"{field}.selected_option"
                )
            if state.get("value") is not None and not isinstance(state["value"], str):
                raise _Bad(f"{field}.value", f"expected a string, got {json_kind(state['value'])}")


def _text(mapping: dict[str, Any], name: str, prefix: str = "") -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value:
        raise _Bad(field_at(prefix, name), f"expected a non-empty string, got {shown(value)}")
    return value


def _url(mapping: dict[str, Any], name: str, prefix: str = "") -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise _Bad(field_at(prefix, name), f"expected an http(s) URL, got {shown(value)}")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(field, f"expected an object, got {json_kind(value)}")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(field, f"expected a list, got {json_kind(value)}")
    return value
