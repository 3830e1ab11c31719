"""Adaptive Card primitives for Teams: inert text, local dates, people, actions, size guard.

Lead data comes from outside (webhooks, CSV imports, config labels). Teams renders a
markdown subset in ``TextBlock`` text and ``FactSet`` values and expands ``{{DATE(…)}}`` /
``{{TIME(…)}}``, so lead data reaches a card only through ``plain()``: control characters
replaced (``bot.chat.plain.clean``, so a name cannot forge a line or a list item), every markdown
character backslash-escaped (CommonMark escapes, which Teams honours), a ``{`` that follows
another ``{`` escaped so no date function can start, and a leading ``12.`` escaped so a
name cannot open a numbered list. Our own formatting (``**bold**``) never wraps raw data.

Teams refuses cards over about 40 KB: every card goes through ``guard`` (or ``fit_card``,
which retries with shorter lists first) and a card that cannot fit raises
``CardTooLargeError`` instead of failing at delivery.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.chat.plain import clean

MAX_CARD_BYTES = 40_000  # measured as len(json.dumps(card).encode()): a safe upper bound
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
ELLIPSIS = "…"

Card = dict[str, Any]
Element = dict[str, Any]

_MARKUP = re.compile(r"[\\*_\[\]()#>\-+!`]")
_SECOND_BRACE = re.compile(r"(?<=\{)\{")
_LIST_NUMBER = re.compile(r"^(\s*\d+)([.)])")
_TEAMS = "teams:"
_SLACK = "slack:"


class CardTooLargeError(ValueError):
    """A card stays over ``MAX_CARD_BYTES`` even with its lists shortened."""


# --- text -------------------------------------------------------------------------------


def plain(value: object) -> str:
    """Any value as one line of inert card text (see the module docstring)."""
    text = _MARKUP.sub(lambda m: "\\" + m.group(), clean(value))
    text = _SECOND_BRACE.sub(r"\\{", text)
    return _LIST_NUMBER.sub(r"\1\\\2", text)


def clip(value: object, limit: int) -> str:
    """``plain(value)`` within ``limit`` characters, cut on the raw text (never inside an
    escape) and ending with an ellipsis when cut."""
    raw = clean(value)
    text = plain(raw)
    if len(text) <= limit:
        return text
    keep = min(len(raw), limit)
    while keep > 0:
        text = plain(raw[:keep].rstrip()) + ELLIPSIS
        if len(text) <= limit:
            return text
        keep -= max(1, (len(text) - limit) // 2)
    return ELLIPSIS


def timestamp(value: str | float | None) -> float | None:
    """Unix seconds from an ISO 8601 string (as payloads carry times) or a number."""
    if value is None or isinstance(value, int | float):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def date(value: str | float | None) -> str:
    """A time each reader sees in their own time zone (Teams' DATE and TIME functions,
    which need strict RFC 3339 in UTC); ``-`` when unknown."""
    ts = timestamp(value)
    if ts is None:
        return "-"
    moment = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{{{{DATE({moment}, SHORT)}}}} {{{{TIME({moment})}}}}"


def person(ref: str | None, names: Mapping[str, str] | None = None) -> str:
    """Who acted, as inert text: a Teams user by the name we were given (``names``: actor
    ref → display name, e.g. from the activity's ``from.name``), else "a rep"; a Slack user
    as "a Slack user" (their ids mean nothing in Teams); any other actor as it is."""
    if not ref:
        return "someone"
    name = (names or {}).get(ref)
    if name and name.strip():
        return clip(name.strip(), 80)
    if ref.startswith(_TEAMS):
        return "a rep"
    if ref.startswith(_SLACK):
        return "a Slack user"
    return clip(ref, 80)


def points(value: float) -> str:
    """``+30.0`` / ``−12.0`` (a real minus sign: a leading ``-`` would start a list)."""
    return f"{value:+.1f}".replace("-", "−")


# --- elements ---------------------------------------------------------------------------


def text(value: str, **options: Any) -> Element:
    """A wrapping TextBlock of already-safe text (``plain``/``clip`` any data in it)."""
    return {"type": "TextBlock", "text": value, "wrap": True, **options}


def heading(value: str) -> Element:
    return text(value, size="Large", weight="Bolder", style="heading")


def subtle(value: str) -> Element:
    return text(value, isSubtle=True, size="Small", spacing="Small")


def facts(pairs: Sequence[tuple[str, str]]) -> Element:
    """A FactSet of already-safe titles and values."""
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in pairs]}


def container(items: Sequence[Element], **options: Any) -> Element:
    return {"type": "Container", "items": list(items), **options}


def more(count: int, what: str) -> Element:
    return text(f"_… and {count} more {what}_", isSubtle=True, spacing="None")


def execute(title: str, verb: str, data: Mapping[str, Any], *, style: str | None = None) -> Element:
    """An ``Action.Execute`` (Universal Actions: the bot answers with the updated card) with
    an ``Action.Submit`` fallback carrying the same data, for clients without it."""
    action: Element = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": dict(data),
        "fallback": {"type": "Action.Submit", "title": title, "data": dict(data)},
    }
    if style:
        action["style"] = style
    return action


def card(body: Sequence[Element], actions: Sequence[Element] = (), *, summary: str) -> Card:
    """The whole card. ``summary`` (already plain) is the ``fallbackText`` for clients that
    cannot render cards, and what a transport can use as the notification text."""
    return {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": list(body),
        "actions": list(actions),
        "fallbackText": summary,
        "msteams": {"width": "Full"},
    }


# --- size -------------------------------------------------------------------------------


def card_bytes(value: Card) -> int:
    return len(json.dumps(value).encode())


def guard(value: Card, what: str) -> Card:
    """``value`` if it is within ``MAX_CARD_BYTES``; else a clear error."""
    size = card_bytes(value)
    if size > MAX_CARD_BYTES:
        raise CardTooLargeError(
            f"{what} card: {size} bytes of JSON, over Teams' limit of {MAX_CARD_BYTES}"
        )
    return value


def fit_card(build: Callable[[int], Card], limits: Sequence[int], what: str) -> Card:
    """The first ``build(limit)`` within ``MAX_CARD_BYTES``, trying the longest lists first;
    ``CardTooLargeError`` when even the last (shortest) does not fit."""
    for limit in limits[:-1]:
        value = build(limit)
        if card_bytes(value) <= MAX_CARD_BYTES:
            return value
    return guard(build(limits[-1]), what)
