"""Follow-ups about a lead already alerted, and the scheduled digest, as Adaptive Cards:
the SLA reminder, the escalation to the managers, the "cooling down" notice of the decay
sweep (payloads of ``bot.jobs.sla`` and ``bot.jobs.decay``), and the digest
(``bot.digest.delivery``).

The digest is laid out from its stored plain text (``render_text``), so what Teams shows is
what the CLI prints. Its chart is an ``Image`` whose url is a ``data:image/png;base64,…``
URI when the whole card stays within ``MAX_CARD_BYTES``; a larger chart (the usual
1000 × 380 PNG often is) is left out and the card says where to see it (the Slack digest,
or ``leadbot digest --png``): Teams refuses cards over 40 KB, and the outbox payload holds
no hosted URL for the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.jobs.sla import waited
from bot.teams.card_parts import (
    MAX_CARD_BYTES,
    Card,
    Element,
    card,
    card_bytes,
    clip,
    container,
    fit_card,
    heading,
    more,
    plain,
    subtle,
    text,
)

REMINDER = "sla_reminder"  # bot.jobs.sla.REMINDER
ESCALATION = "sla_escalation"  # bot.jobs.sla.ESCALATION
COOLING = "cooling"  # bot.jobs.decay.COOLING
FOLLOWUPS = (REMINDER, ESCALATION, COOLING)
NAME_MAX = 80
DIGEST_LIMITS = (12, 6, 3, 1)  # lines per digest section, longest first
DIGEST_LINE_MAX = 200
CHART_MISSING = (
    "The chart did not fit in a Teams card (40 KB at most): see it in the Slack digest, "
    "or run leadbot digest \\-\\-png."
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def followup_card(kind: str, payload: Mapping[str, Any]) -> Card:
    """The card for an ``sla_reminder``, ``sla_escalation`` or ``cooling`` payload."""
    if kind == REMINDER:
        body = _reminder(payload)
    elif kind == ESCALATION:
        body = _escalation(payload)
    elif kind == COOLING:
        body = _cooling(payload)
    else:
        raise ValueError(f"follow-up kind {kind!r}: expected one of {', '.join(FOLLOWUPS)}")
    return fit_card(lambda _: card(body, summary=clip(payload["text"], 500)), (0,), kind)


def who(lead: Mapping[str, Any]) -> str:
    """``Dana Reyes (AcmeSoft)``, inert and clipped."""
    name = clip(lead.get("name") or lead.get("email") or lead["id"], NAME_MAX)
    return f"{name} ({clip(lead['company'], NAME_MAX)})" if lead.get("company") else name


def place(destination: str) -> str:
    """Where an alert went, for a Teams reader (ids there mean nothing to people)."""
    platform, _, target = destination.partition(":")
    if platform == "teams":
        kind = target.partition(":")[0]
        return {"user": "a rep's chat", "default": "the default Teams channel"}.get(
            kind, "a Teams conversation"
        )
    if platform == "slack":
        if target.startswith("#"):
            return f"Slack {clip(target, 80)}"
        return "a Slack DM" if target.startswith(("@", "D")) else "a Slack channel"
    return clip(destination, 80)


def _routed(payload: Mapping[str, Any]) -> str:
    count = len(payload.get("routed_to") or ())
    return f"routed to {count} rep{'s' if count != 1 else ''}" if count else ""


def _context(payload: Mapping[str, Any]) -> list[Element]:
    places = sorted({place(d) for d in payload.get("alerted_in") or ()})
    parts = [f"Alerted in {', '.join(places)}"] if places else []
    if _routed(payload):
        parts.append(_routed(payload))
    return [subtle(" · ".join(parts))] if parts else []


def _reminder(payload: Mapping[str, Any]) -> list[Element]:
    hours = float(payload["hours_waiting"])
    return [
        text(
            f"⏰ **Still waiting:** {who(payload['lead'])} is hot (score "
            f"{float(payload['score']):.1f}) and was alerted {waited(hours)} ago; nobody has "
            "claimed it or given feedback yet. Claim it with the alert's buttons."
        ),
        *_context(payload),
    ]


def _escalation(payload: Mapping[str, Any]) -> list[Element]:
    lead = payload["lead"]
    hours = float(payload["hours_waiting"])
    email = f" · {clip(lead['email'], 200)}" if lead.get("email") else ""
    name = clip(lead.get("name") or lead.get("email") or lead["id"], 120)
    return [
        heading(f"SLA missed: {name}"),
        text(f"{who(lead)}{email}"),
        text(
            f"A hot lead (score {float(payload['score']):.1f}) has waited "
            f"**{waited(hours)}** since its alert, with no claim and no feedback."
        ),
        *_context(payload),
    ]


def _cooling(payload: Mapping[str, Any]) -> list[Element]:
    before, after = plain(payload.get("from", "hot")), plain(payload.get("to", "warm"))
    return [
        text(
            f"❄️ {who(payload['lead'])} is cooling down: {before} → {after} "
            f"(score {float(payload['score']):.1f})."
        )
    ]


# --- digest -----------------------------------------------------------------------------


def digest_card(payload: Mapping[str, Any]) -> Card:
    """The card for a scheduled ``digest`` payload: its plain text laid out in sections,
    and its chart when the card stays within the limit (see the module docstring)."""
    source = payload.get("plain") or payload.get("text")
    if not isinstance(source, str) or not source:
        raise ValueError(f"digest payload: plain must be a non-empty string, got {source!r}")
    summary = clip(payload.get("title") or source.splitlines()[0], 300)
    image = chart_image(payload.get("chart"))

    def build(limit: int) -> Card:
        body = digest_body(source, limit)
        if image is not None:
            with_chart = card([*body, image], summary=summary)
            if card_bytes(with_chart) <= MAX_CARD_BYTES:
                return with_chart
            body.append(subtle(CHART_MISSING))
        return card(body, summary=summary)

    return fit_card(build, DIGEST_LIMITS, "digest")


def chart_image(chart: object) -> Element | None:
    """The chart as an ``Image`` with a data URI; None without a (well-formed) chart."""
    if not isinstance(chart, Mapping):
        return None
    data = chart.get("png_base64")
    if not isinstance(data, str) or not data or not _BASE64.fullmatch(data):
        return None
    alt = clean_alt(chart.get("alt") or chart.get("title") or "Digest chart")
    return {
        "type": "Image", "url": f"data:image/png;base64,{data}", "altText": alt,
        "size": "Stretch", "spacing": "Medium",
    }  # fmt: skip


def clean_alt(value: object) -> str:
    return clip(value, 200).replace("\\", "")  # alt text is plain, never markdown


def digest_body(source: str, limit: int) -> list[Element]:
    """Paragraphs of ``render_text`` output: the first is the title and period; in the
    others a paragraph of several lines is a heading and its list (``limit`` lines shown)."""
    paragraphs = [p.splitlines() for p in re.split(r"\n\s*\n", source.strip()) if p.strip()]
    head, *rest = paragraphs
    body: list[Element] = [heading(clip(head[0], 150))]
    body += [subtle(clip(line, DIGEST_LINE_MAX)) for line in head[1:]]
    for lines in rest:
        body.append(_paragraph(lines, limit))
    return body


def _paragraph(lines: Sequence[str], limit: int) -> Element:
    if len(lines) == 1:
        return container([text(clip(lines[0], DIGEST_LINE_MAX))], separator=True)
    items: list[Element] = [text(f"**{clip(lines[0], DIGEST_LINE_MAX)}**")]
    items += [
        text(clip(line.strip(), DIGEST_LINE_MAX), spacing="None", fontType="Monospace")
        for line in lines[1 : limit + 1]
    ]
    if len(lines) - 1 > limit:
        items.append(more(len(lines) - 1 - limit, "lines"))
    return container(items, separator=True)
