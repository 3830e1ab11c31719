"""Lead look-up: the score read now (decay included), its explanation, history, feedback."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.alerts import iso, profile_facts
from bot.chat.plain import clean, contribution_lines, when
from scoring import LeadState, Model, score
from scoring.bands import Thresholds
from storage.leads import find_lead, lead_feedback, lead_history, search_leads
from storage.tables import Lead


def _iso(value: datetime | None) -> str | None:
    return None if value is None else iso(value.timestamp())


async def lead_report(
    session: AsyncSession,
    *,
    key: str,
    model: Model,
    now: float,
    thresholds: Thresholds | None = None,
) -> dict[str, Any] | None:
    """Everything known of one lead, scored at ``now``; None when no lead has that key."""
    lead = await find_lead(session, key=key)
    if lead is None:
        return None
    state = LeadState.from_dict(lead.state)
    result = score(state, model, now, thresholds)
    history = await lead_history(session, lead_id=lead.id)
    feedback = await lead_feedback(session, lead_id=lead.id)
    return {
        "id": lead.id,
        "email": lead.email,
        "name": lead.name,
        "company": lead.company,
        "anonymous": lead.anonymous,
        "score": round(result.total, 2),
        "fit": round(result.fit, 2),
        "intent": round(result.intent, 2),
        "band": str(result.band),
        "grade": result.grade,
        "engagement": result.engagement,
        "matrix": result.matrix,
        "probability": round(result.probability, 4),
        "scored_at": iso(now),
        "contributions": [c.to_dict() for c in result.contributions],
        "facts": profile_facts(state.traits),
        "first_seen_at": _iso(lead.first_seen_at),
        "last_event_at": _iso(lead.last_event_at),
        "alerted_at": _iso(lead.alerted_at),
        "history": [
            {
                "at": _iso(h.at),
                "score": round(h.score, 2),
                "band": h.band,
                "previous_score": None if h.previous_score is None else round(h.previous_score, 2),
                "previous_band": h.previous_band,
                "cause": h.cause,
            }
            for h in history
        ],
        "feedback": [
            {"outcome": f.outcome, "reason": f.reason, "by": f.by, "at": _iso(f.at)}
            for f in feedback
        ],
        "traits": state.traits,
    }


CLOSEST = 5
FRAGMENT_MATCHES = 20  # candidates read per fragment of a mistyped key, ranked by likeness


def fragments(key: str) -> list[str]:
    """Pieces of a key worth searching for alone: the words of a name, the local part and
    the domain's first label of an e-mail (not ``com``, which matches everyone)."""
    if "@" in key:
        local, _, domain = key.partition("@")
        pieces = [*re.split(r"[.+_\-]+", local), domain.split(".")[0]]
    else:
        pieces = re.split(r"[\s.+_\-]+", key)
    return [p for p in dict.fromkeys(pieces) if len(p) >= 3 and p != key]


def likeness(key: str, lead: Lead) -> float:
    """How close ``key`` is to the lead's e-mail, id or name, whichever is closest (0–1)."""
    key = key.strip().lower()
    names = (lead.email, lead.id, lead.name)
    return max(difflib.SequenceMatcher(None, key, n.lower()).ratio() for n in names if n)


async def suggestions(session: AsyncSession, *, key: str) -> list[Lead]:
    """Leads whose name, e-mail, company or id contains ``key``: what a name may mean."""
    return await search_leads(session, text=key, limit=CLOSEST)


async def closest(session: AsyncSession, *, key: str, limit: int = CLOSEST) -> list[Lead]:
    """Closest matches for a key that named no lead, for every kind of key: leads whose
    e-mail, name, company or id contains it (a cut-off id) come first; then leads found by
    its fragments (a mistyped e-mail's name or domain), most alike first (difflib)."""
    found = {lead.id: lead for lead in await search_leads(session, text=key, limit=limit)}
    near: dict[str, Lead] = {}
    for piece in fragments(key.strip()):
        for lead in await search_leads(session, text=piece, limit=FRAGMENT_MATCHES):
            near.setdefault(lead.id, lead)
    ranked = sorted(
        (lead for lead in near.values() if lead.id not in found),
        key=lambda lead: (-likeness(key, lead), lead.id),
    )
    return [*found.values(), *ranked][:limit]


async def named_lead(session: AsyncSession, *, key: str) -> Lead | None:
    """The one lead a name stands for: the single lead whose name contains ``key``, or the
    single one whose name is exactly ``key`` (any case); None when none or several do. A
    cut-off id or e-mail is never taken for a lead: it gets suggestions."""
    text = key.strip().lower()
    matches = await search_leads(session, text=key, limit=CLOSEST)
    named = [lead for lead in matches if text in (lead.name or "").lower()]
    if len(named) == 1:
        return named[0]
    exact = [lead for lead in named if (lead.name or "").lower() == text]
    return exact[0] if len(exact) == 1 else None


def render_report(report: Mapping[str, Any]) -> str:
    """The look-up as text for a terminal."""
    who = clean(report["name"] or report["email"] or report["id"])
    company = f" ({clean(report['company'])})" if report.get("company") else ""
    anonymous = "  [anonymous]" if report["anonymous"] else ""
    lines = [
        f"{who}{company}  id {clean(report['id'])}{anonymous}",
        f"  score {report['score']:.1f}  {report['band']}  grade {report['grade']} · "
        f"engagement {report['engagement']}/4  p={report['probability']:.2f}",
        f"  fit {report['fit']:.1f} + intent {report['intent']:.1f}   "
        f"(read {when(report['scored_at'])}; first seen {when(report['first_seen_at'])}, "
        f"last event {when(report['last_event_at'])})",
        "  contributions:",
        *(contribution_lines(report["contributions"], indent="    ") or ["    (none)"]),
    ]
    if report["facts"]:
        lines.append("  " + " · ".join(f"{clean(k)}: {clean(v)}" for k, v in report["facts"]))
    lines.append("  history:" if report["history"] else "  history: (no changes recorded)")
    for h in report["history"]:
        before = (
            "new"
            if h["previous_score"] is None
            else f"{h['previous_score']:.1f} {h['previous_band']}"
        )
        lines.append(
            f"    {when(h['at'])}  {before} → {h['score']:.1f} {h['band']}  ({clean(h['cause'])})"
        )
    lines.append("  feedback:" if report["feedback"] else "  feedback: (none yet)")
    for f in report["feedback"]:
        reason = f" — {clean(f['reason'])}" if f["reason"] else ""
        lines.append(f"    {when(f['at'])}  {f['outcome']}{reason} (by {clean(f['by'])})")
    return "\n".join(lines)
