"""A command's ``Reply`` as Block Kit: plain text, a lead card, a ranked list, or a digest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock

from bot.chat.messages import Reply
from bot.slack.alert_blocks import contribution_line, title, who
from bot.slack.blocks import (
    MAX_BLOCKS,
    clip,
    escape,
    escape_lines,
    fallback,
    header,
    line_sections,
    more_note,
    mrkdwn,
    person,
    render,
    section,
    slack_date,
)
from bot.slack.customer_blocks import customer_blocks
from bot.slack.digest_blocks import digest_blocks

TOP_CONTRIBUTIONS = 5
ROWS_PER_SECTION = 10
WARNING = "⚠️"


def reply_message(reply: Reply) -> tuple[list[dict[str, Any]], str]:
    """Blocks for ``chat.postMessage`` / ``chat.postEphemeral`` / a ``response_url``, and
    the notification text (the reply's own ``text``). A digest brings its own blocks."""
    if reply.digest is not None:
        return digest_blocks(reply.digest)
    blocks: list[Block] = []
    if reply.title:
        blocks.append(header(clip(reply.title, 150)))
    if reply.lead is not None:
        blocks.extend(lead_card(reply.lead, with_header=not reply.title))
    if reply.leads:
        blocks.extend(_ranked(reply.leads, room=MAX_BLOCKS - len(blocks)))
    if reply.customer is not None:
        blocks.extend(customer_blocks(reply.customer))
    elif reply.lead is None and not reply.leads:
        blocks.extend(_text(reply.text, error=reply.error, room=MAX_BLOCKS - len(blocks)))
    text = f"{WARNING} {reply.text}" if reply.error else reply.text
    return render(blocks), fallback(text)


def _text(text: str, *, error: bool, room: int) -> list[Block]:
    lines = escape_lines(text).splitlines() or ["-"]
    if error:
        lines[0] = f"{WARNING} {lines[0]}"
    return list(line_sections(lines, max_sections=room, more=more_note("lines")))


def lead_card(report: Mapping[str, Any], *, with_header: bool = True) -> list[Block]:
    """A compact card of a ``bot.chat.lookup.lead_report``: score, top signals, activity, trend,
    feedback."""
    blocks: list[Block] = []
    if with_header:
        blocks.append(header(title(who(report), report.get("company"), report["score"])))
    blocks.append(section(_score(report)))
    blocks.append(section(_top(report["contributions"])))
    blocks.append(section("\n".join([_activity(report), _trend(report), _feedback(report)])))
    blocks.append(ContextBlock(elements=[mrkdwn(f"Lead id {clip(report['id'], 200)}")]))
    return blocks


def _score(r: Mapping[str, Any]) -> str:
    anonymous = " · anonymous visitor" if r.get("anonymous") else ""
    return (
        f"*{escape(r['band']).capitalize()}* · score *{r['score']:.1f}* · "
        f"{escape(r['grade'])}{r['engagement']}{anonymous}\n"
        f"Fit {r['fit']:.0f} · grade {escape(r['grade'])}   "
        f"Intent {r['intent']:.0f} · engagement {r['engagement']}/4   "
        f"p = {r['probability']:.2f}"
    )


def _top(contributions: Sequence[Mapping[str, Any]]) -> str:
    if not contributions:
        return "*Top signals:* none yet"
    lines = [contribution_line(c) for c in contributions[:TOP_CONTRIBUTIONS]]
    left = len(contributions) - TOP_CONTRIBUTIONS
    if left > 0:
        lines.append(more_note("signals")(left))
    return "\n".join(["*Top signals*", *lines])


def _activity(r: Mapping[str, Any]) -> str:
    return (
        f"*Last activity* {slack_date(r.get('last_event_at'))} · "
        f"first seen {slack_date(r.get('first_seen_at'))}"
    )


def _trend(r: Mapping[str, Any]) -> str:
    """The latest recorded change (history is newest first) and its cause."""
    history = r.get("history") or []
    if not history:
        return "*Trend* no changes recorded"
    h = history[0]
    previous = h.get("previous_score")
    before = "new" if previous is None else f"{previous:.1f} {escape(h.get('previous_band'))}"
    arrow = "↗" if previous is None or h["score"] >= previous else "↘"
    return (
        f"*Trend* {arrow} {before} → {h['score']:.1f} {escape(h['band'])} "
        f"{slack_date(h.get('at'))} ({escape(h.get('cause') or '-')})"
    )


def _feedback(r: Mapping[str, Any]) -> str:
    """How many judgements so far and the latest (feedback is oldest first)."""
    feedback = r.get("feedback") or []
    if not feedback:
        return "*Feedback* none yet"
    f = feedback[-1]
    reason = f" — {escape(f['reason'])}" if f.get("reason") else ""
    return (
        f"*Feedback* {len(feedback)} so far; latest: {escape(f['outcome'])}{reason} "
        f"by {person(f.get('by'))}, {slack_date(f.get('at'))}"
    )


def _ranked(leads: Sequence[Mapping[str, Any]], *, room: int) -> list[Block]:
    """Rank, score, band, fit × engagement cell, who, company; ten rows a section."""
    lines = [_row(rank, lead) for rank, lead in enumerate(leads, 1)]
    return list(
        line_sections(
            lines,
            max_sections=max(1, room),
            more=more_note("leads"),
            per_section=ROWS_PER_SECTION,
        )
    )


def _row(rank: int, lead: Mapping[str, Any]) -> str:
    company = f" · {clip(lead['company'], 100)}" if lead.get("company") else ""
    return (
        f"{rank}. *{lead['score']:.1f}* {escape(lead['band'])} · "
        f"{escape(lead['grade'])}{lead['engagement']} · {clip(who(lead), 100)}{company}"
    )
