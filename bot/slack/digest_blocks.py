"""A digest as Slack Block Kit, built at send time from the digest's data
(``bot.outbox.messages.DigestMessage``), with the plain text as the notification fallback.

Lead names and companies come from outside: they reach Slack only through
``bot.slack.blocks.escape``/``clip`` (no forged mentions or links). People are Slack user
ids from our own rows, shown as mentions. Long lists are cut with "… and N more", so the
message stays within Slack's limits (50 blocks, 3,000 characters a section, 10 fields).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, SectionBlock

from bot.digest.customers import TITLE as CUSTOMERS_TITLE
from bot.digest.customers import lines as customer_lines
from bot.digest.data import Conversion, Digest, RepSpeed
from bot.digest.plain import (
    LIST_MAX,
    SOURCES_TITLE,
    conversion_line,
    duration,
    funnel_line,
    health_lines,
    lead_name,
    render_text,
    source_value,
    span,
    taken,
    title,
    waited,
)
from bot.outbox.messages import DigestMessage
from bot.slack.blocks import (
    FIELD_MAX,
    clip,
    escape,
    fallback,
    header,
    line_sections,
    more_note,
    mrkdwn,
    person,
    render,
    section,
    shorten,
    slack_date,
)
from storage.digests import HotEntry, LeadName, Move

NAME_MAX = 80  # characters of a lead's name and company in one line
SECTIONS_PER_LIST = 2


def digest_message(message: DigestMessage) -> tuple[list[dict[str, Any]], str]:
    """A scheduled ``digest``: rendered from its data; a row queued before digests stored
    their data posts the blocks and fallback rendered then."""
    if message.digest is not None:
        return digest_blocks(message.digest)
    assert message.legacy is not None
    return [dict(b) for b in message.legacy.blocks], message.legacy.text  # escaped then


def digest_blocks(digest: Digest) -> tuple[list[dict[str, Any]], str]:
    """Blocks for ``chat.postMessage`` or a ``response_url``, and the fallback text."""
    blocks: list[Block] = [
        header(clip(title(digest), 150)),
        ContextBlock(elements=[mrkdwn(f"{span(digest)} · SLA {digest.sla_hours:g} h")]),
    ]
    if digest.warnings:
        blocks.append(section("\n".join(f"*{escape(w)}*" for w in digest.warnings)))
    blocks += [section(escape(funnel_line(digest))), DividerBlock()]
    hot = [_hot(e, digest.names) for e in digest.new_hot]
    blocks += _list(f"New hot leads: {digest.hot_count}", hot, digest.hot_count)
    late = [
        f"{w.score:.1f} · {_who(w.lead)} · waiting {waited(w, digest.now)}" for w in digest.waiting
    ]
    heading = f"Waiting past the {digest.sla_hours:g} h SLA: {digest.waiting_count}"
    blocks += _list(heading, late, total=digest.waiting_count)
    blocks.append(_fields(("Conversion by band", digest.by_band),
                          ("Conversion by fit grade", digest.by_grade)))  # fmt: skip
    if digest.by_source:  # reps' labels and CRM outcomes checked apart
        checks = [f"*{escape(c.name)}*: {escape(source_value(c))}" for c in digest.by_source]
        blocks.append(section(f"*{escape(SOURCES_TITLE)}*\n" + "\n".join(checks)))
    if digest.customers is not None:  # RFM: only when there are customers
        shown = "\n".join(escape(line) for line in customer_lines(digest.customers))
        blocks.append(section(f"*{escape(CUSTOMERS_TITLE)}*\n{shown}"))
    reps = [_rep(r, digest.names) for r in digest.reps]
    blocks += _list("Alert → claim, median per rep", reps, empty="no claims")
    blocks.append(_movers(digest.heating, digest.cooling))
    health = [mrkdwn(escape(line)) for line in health_lines(digest)]
    blocks.append(ContextBlock(elements=health))
    return render(blocks), fallback(render_text(digest))


def _who(lead: LeadName) -> str:
    return clip(lead_name(lead), NAME_MAX)


def _named(ref: str, names: Mapping[str, str]) -> str:
    """A Slack user as a mention; a Teams rep by their stored display name."""
    return escape(names[ref]) if ref in names else person(ref)


def _hot(entry: HotEntry, names: Mapping[str, str]) -> str:
    claim = escape(taken(entry))
    if entry.claimed_by and entry.claimed_at is not None:
        after = duration((entry.claimed_at - entry.at).total_seconds())
        claim = f"claimed by {_named(entry.claimed_by, names)} {after} after turning hot"
    return f"{slack_date(entry.at.timestamp())} · {entry.score:.1f} · {_who(entry.lead)} — {claim}"


def _rep(rep: RepSpeed, names: Mapping[str, str]) -> str:
    median = "-" if rep.median_seconds is None else duration(rep.median_seconds)
    plural = "s" if rep.claims != 1 else ""
    return f"{_named(rep.rep, names)} · {median} ({rep.claims} claim{plural}, {rep.timed} timed)"


def _list(
    heading: str, lines: Sequence[str], total: int | None = None, *, empty: str = "none"
) -> list[SectionBlock]:
    """A bold heading and escaped lines, at most ``LIST_MAX`` of them, then a count of the
    rest of ``total`` (the lines given, unless a stored digest kept fewer)."""
    count = len(lines) if total is None else total
    shown = list(lines[:LIST_MAX]) or [empty]
    if count > LIST_MAX:
        shown.append(more_note("leads")(count - LIST_MAX))
    head = f"*{escape(heading)}*"
    return line_sections([head, *shown], max_sections=SECTIONS_PER_LIST, more=more_note("lines"))


def _column(heading: str, rows: Sequence[Conversion]) -> str:
    lines = [f"*{heading}*", *(escape(conversion_line(row)) for row in rows)]
    return shorten("\n".join(lines), FIELD_MAX)


def _fields(*columns: tuple[str, Sequence[Conversion]]) -> SectionBlock:
    return SectionBlock(fields=[mrkdwn(_column(h, rows)) for h, rows in columns])


def _move(move: Move) -> str:
    return f"{move.change:+.1f} · {_who(move.lead)}, now {move.score:.1f} {escape(move.band)}"


def _movers(heating: Sequence[Move], cooling: Sequence[Move]) -> SectionBlock:
    columns = []
    for heading, moves in (("Heating up", heating), ("Cooling down", cooling)):
        lines = [_move(m) for m in moves] or ["-"]
        columns.append(mrkdwn(shorten("\n".join([f"*{heading}*", *lines]), FIELD_MAX)))
    return SectionBlock(fields=columns)
