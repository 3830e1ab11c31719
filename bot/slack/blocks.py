"""Block Kit primitives shared by the alert, the replies and the modal.

Lead data comes from outside (webhooks, CSV imports, config labels). It reaches Slack text
only through ``escape()``, and every mrkdwn object is ``verbatim``: Slack then neither
auto-links bare URLs or channel names nor parses bare mentions, so a lead named
``<!channel>`` or ``@here`` pings nobody. Our own formatting never wraps lead data
(no ``*{name}*``), so a ``*`` or ``_`` in a name cannot unbalance it.

Limits come from slack_sdk's model classes, which check them in ``to_dict()``: we shorten
text to fit before building a block, and ``render()`` lets the models validate the result.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.chat.plain import clean, when

MAX_BLOCKS = 50  # per message; slack_sdk has no message model that checks it
HEADER_MAX = HeaderBlock.text_max_length
SECTION_MAX = SectionBlock.text_max_length
FIELDS_MAX = SectionBlock.fields_max_length
FIELD_MAX = 2000  # a section field's text; slack_sdk does not check this one
FALLBACK_MAX = 3000  # notifications show a line or two; Slack cuts `text` at 40,000
ELLIPSIS = "…"

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL = re.compile("[&<>]")
_USER_ID = re.compile(r"[UWB][A-Z0-9]{2,30}")


class BlockLimitError(ValueError):
    """A message would exceed a Slack limit that slack_sdk does not check."""


def escape(value: object) -> str:
    """Lead data as one line of Slack text: control characters (newlines too) replaced, so
    a name cannot forge a line of its own, and ``& < >`` as Slack's documented entities,
    so it cannot open a mention, a link or a date."""
    return _SPECIAL.sub(lambda m: _ENTITIES[m.group()], clean(value))


def escape_lines(value: object) -> str:
    """Multi-line text (a command's answer): each line escaped, the line breaks kept."""
    return "\n".join(escape(line) for line in str(value).splitlines())


def clip(raw: object, limit: int) -> str:
    """``escape(raw)`` within ``limit`` characters, cut on the raw text (never inside an
    entity such as ``&amp;``) and ending with an ellipsis when cut."""
    source = clean(raw)
    text = escape(source)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = len(ELLIPSIS)
    for char in source:
        piece = _ENTITIES.get(char, char)
        if size + len(piece) > limit:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept).rstrip() + ELLIPSIS


def shorten(text: str, limit: int) -> str:
    """Already-escaped text within ``limit``: cut at a line break where possible."""
    if len(text) <= limit:
        return text
    head = text[: limit - len(ELLIPSIS)]
    newline = head.rfind("\n")
    if newline > limit // 2:
        head = head[:newline]
    else:  # never leave half an entity or half a <!date…> behind
        amp, lt = head.rfind("&"), head.rfind("<")
        if amp > head.rfind(";"):
            head = head[:amp]
        if lt > head.rfind(">"):
            head = head[:lt]
    return head.rstrip() + ELLIPSIS


def mrkdwn(text: str) -> MarkdownTextObject:
    """Escaped text with our own formatting; verbatim: no auto-linking, no bare mentions."""
    return MarkdownTextObject(text=text, verbatim=True)


def header(text: str) -> HeaderBlock:
    """A header from escaped text (``clip`` it first): plain text, no formatting at all."""
    return HeaderBlock(text=PlainTextObject(text=shorten(text, HEADER_MAX), emoji=True))


def section(text: str) -> SectionBlock:
    return SectionBlock(text=mrkdwn(shorten(text, SECTION_MAX)))


def timestamp(value: str | float | None) -> float | None:
    """Unix seconds from an ISO 8601 string (as payloads carry times) or a number."""
    if value is None or isinstance(value, int | float):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def slack_date(value: str | float | None) -> str:
    """A time every reader sees in their own time zone; the UTC fallback where Slack cannot
    format it (notifications, old clients)."""
    ts = timestamp(value)
    if ts is None:
        return "-"
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{when(ts)}>"


def user_mention(user_id: str, *, field: str) -> str:
    """``<@U123>`` for a Slack user id; anything else is refused, not escaped, because an
    id is never lead data and a malformed one means a bug upstream."""
    if not _USER_ID.fullmatch(user_id):
        raise ValueError(f"{field}: not a Slack user id: {user_id!r}")
    return f"<@{user_id}>"


def person(ref: str | None) -> str:
    """Who gave feedback: ``slack:U123`` as a mention, any other actor escaped."""
    if not ref:
        return "someone"
    platform, _, user_id = ref.partition(":")
    if platform == "slack" and _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(ref)


def line_sections(
    lines: Sequence[str],
    *,
    max_sections: int,
    more: Callable[[int], str],
    per_section: int | None = None,
) -> list[SectionBlock]:
    """Escaped lines packed into sections of at most ``SECTION_MAX`` characters (and
    ``per_section`` lines); what does not fit in ``max_sections`` becomes ``more(n)``."""
    chunks: list[list[str]] = [[]]
    for index, line in enumerate(lines):
        line = shorten(line, SECTION_MAX // 2)
        current = chunks[-1]
        full = _size(current) + len(line) > SECTION_MAX or (
            per_section is not None and len(current) >= per_section
        )
        if current and full:
            if len(chunks) == max_sections:
                _end_with_more(current, len(lines) - index, more)
                break
            chunks.append(current := [])
        current.append(line)
    return [section("\n".join(chunk)) for chunk in chunks if chunk]


def _size(chunk: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in chunk)


def _end_with_more(chunk: list[str], left: int, more: Callable[[int], str]) -> None:
    """Close a full chunk with ``more(n)``, giving up its last lines until the note fits."""
    while chunk and _size(chunk) + len(more(left)) > SECTION_MAX:
        chunk.pop()
        left += 1
    chunk.append(more(left))


def more_note(kind: str) -> Callable[[int], str]:
    return lambda n: f"_… and {n} more {kind}_"


def render(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    """Blocks as dicts for the Web API, each validated by slack_sdk on the way."""
    if len(blocks) > MAX_BLOCKS:
        raise BlockLimitError(f"blocks: {len(blocks)} in one message, Slack allows {MAX_BLOCKS}")
    return [block.to_dict() for block in blocks]


def fallback(text: str) -> str:
    """The notification text: escaped like the blocks, and short."""
    return shorten(escape_lines(text), FALLBACK_MAX)
