"""A command's ``Reply`` as an Adaptive Card: plain text, a lead card, a ranked list, or a
digest — the same answers as the Slack ``/lead`` command (``bot/slack/reply_blocks.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.chat.messages import Reply
from bot.teams.alert_card import contribution, title, who
from bot.teams.card_parts import (
    Card,
    Element,
    card,
    clip,
    date,
    facts,
    fit_card,
    heading,
    more,
    person,
    plain,
    subtle,
    text,
)
from bot.teams.customer_card import customer_body
from bot.teams.digest_card import digest_card

TOP_CONTRIBUTIONS = 5
LIST_LIMITS = (50, 25, 10, 3)
LINE_MAX = 500
WARNING = "⚠️"


def reply_card(reply: Reply) -> Card:
    """The card for a reply; ``fallbackText`` is the reply's own text."""
    if reply.digest is not None:
        return digest_card(reply.digest)
    return fit_card(lambda n: card(_body(reply, n), summary=_summary(reply)), LIST_LIMITS, "reply")


def _summary(reply: Reply) -> str:
    first = (reply.text.splitlines() or ["-"])[0]
    return clip(f"{WARNING} {first}" if reply.error else first, 300)


def _body(reply: Reply, limit: int) -> list[Element]:
    body: list[Element] = []
    if reply.title:
        body.append(heading(clip(reply.title, 150)))
    if reply.lead is not None:
        body.extend(lead_card(reply.lead, with_header=not reply.title))
    if reply.leads:
        body.extend(ranked(reply.leads, limit))
    if reply.customer is not None:
        body.extend(customer_body(reply.customer))
    elif reply.lead is None and not reply.leads:
        body.extend(text_body(reply.text, error=reply.error, limit=limit))
    return body


def text_body(value: str, *, error: bool = False, limit: int = 50) -> list[Element]:
    """Each line its own inert TextBlock (Teams treats line breaks inside one unevenly);
    an error's first line marked and coloured."""
    lines = value.splitlines() or ["-"]
    blocks = [text(clip(line, LINE_MAX) or " ", spacing="None") for line in lines[:limit]]
    if error:
        blocks[0] = text(f"{WARNING} {clip(lines[0], LINE_MAX)}", color="Attention")
    if len(lines) > limit:
        blocks.append(more(len(lines) - limit, "lines"))
    return blocks


def lead_card(report: Mapping[str, Any], *, with_header: bool = True) -> list[Element]:
    """A compact card of a ``bot.chat.lookup.lead_report``: score, top signals, activity, trend,
    feedback."""
    body: list[Element] = []
    if with_header:
        body.append(heading(title(who(report), report.get("company"), report["score"])))
    anonymous = " · anonymous visitor" if report.get("anonymous") else ""
    body += [
        text(
            f"**{plain(str(report['band']).capitalize())}** · score **{report['score']:.1f}** · "
            f"{plain(report['grade'])}{plain(report['engagement'])}{anonymous} · "
            f"p = {report['probability']:.2f}"
        ),
        facts([
            ("Fit", f"{report['fit']:.0f} · grade {plain(report['grade'])}"),
            ("Intent", f"{report['intent']:.0f} · engagement {plain(report['engagement'])}/4"),
        ]),
        *_top(report.get("contributions") or []),
        facts([("Last activity", _activity(report)), ("Trend", _trend(report)),
               ("Feedback", _feedback(report))]),
        subtle(f"Lead id {clip(report['id'], 200)}"),
    ]  # fmt: skip
    return body


def _top(contributions: Sequence[Mapping[str, Any]]) -> list[Element]:
    if not contributions:
        return [text("**Top signals:** none yet", separator=True)]
    parts = [
        text("**Top signals**", separator=True),
        facts([contribution(c) for c in contributions[:TOP_CONTRIBUTIONS]]),
    ]
    if len(contributions) > TOP_CONTRIBUTIONS:
        parts.append(more(len(contributions) - TOP_CONTRIBUTIONS, "signals"))
    return parts


def _activity(r: Mapping[str, Any]) -> str:
    return f"{date(r.get('last_event_at'))} · first seen {date(r.get('first_seen_at'))}"


def _trend(r: Mapping[str, Any]) -> str:
    """The latest recorded change (history is newest first) and its cause."""
    history = r.get("history") or []
    if not history:
        return "no changes recorded"
    h = history[0]
    previous = h.get("previous_score")
    before = "new" if previous is None else f"{previous:.1f} {plain(h.get('previous_band'))}"
    arrow = "↗" if previous is None or h["score"] >= previous else "↘"
    return (
        f"{arrow} {before} → {h['score']:.1f} {plain(h['band'])} {date(h.get('at'))} "
        f"({clip(h.get('cause') or '-', 100)})"
    )


def _feedback(r: Mapping[str, Any]) -> str:
    """How many judgements so far and the latest (feedback is oldest first)."""
    feedback = r.get("feedback") or []
    if not feedback:
        return "none yet"
    f = feedback[-1]
    reason = f" — {clip(f['reason'], 200)}" if f.get("reason") else ""
    return (
        f"{len(feedback)} so far; latest: {plain(f['outcome'])}{reason} "
        f"by {person(f.get('by'))}, {date(f.get('at'))}"
    )


def ranked(leads: Sequence[Mapping[str, Any]], limit: int) -> list[Element]:
    """Rank, score, band, fit × engagement cell, who, company (a FactSet: a ``1.`` opening
    a TextBlock would become a numbered list)."""
    rows = [(f"{rank}.", _row(lead)) for rank, lead in enumerate(leads[:limit], 1)]
    parts = [facts(rows)]
    if len(leads) > limit:
        parts.append(more(len(leads) - limit, "leads"))
    return parts


def _row(lead: Mapping[str, Any]) -> str:
    company = f" · {clip(lead['company'], 100)}" if lead.get("company") else ""
    return (
        f"**{lead['score']:.1f}** {plain(lead['band'])} · "
        f"{plain(lead['grade'])}{plain(lead['engagement'])} · {clip(who(lead), 100)}{company}"
    )
