"""The hot-lead alert as an Adaptive Card: who, the score and why, the facts, the actions.

Built from ``bot.outbox.messages.AlertMessage`` at send time, like the Slack alert
(``bot/slack/alert_blocks.py``) and with the same information. After a click the handler
rebuilds the card with ``state`` (``bot.chat.actions.ActionResult.state``) and updates it in
place: everyone sees who claimed or decided and when, and actions that no longer apply
are gone.

Actions are ``Action.Execute`` (verbs ``lead_claim``, ``lead_qualify``, ``lead_disqualify``,
``lead_snooze``) with data ``{"leadbot": "lead_action", "action", "lead_id"}`` and an
``Action.Submit`` fallback carrying the same data. Disqualify opens an inline card asking
for the reason (input ``reason``: a ``DisqualifyReason`` value) and an optional ``note``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.chat.alerts import crm_button
from bot.chat.messages import Action, DisqualifyReason, Outcome, remaining_actions, validate_outcome
from bot.chat.plain import signal_detail
from bot.outbox.messages import AlertMessage, AlertScore, LeadRef, WhyNow
from bot.teams.card_parts import (
    Card,
    Element,
    card,
    clip,
    container,
    date,
    execute,
    facts,
    fit_card,
    heading,
    more,
    person,
    plain,
    points,
    subtle,
    text,
    timestamp,
)

LEAD_ACTION = "lead_action"
BREAKDOWN_LIMITS = (40, 20, 10, 5, 0)  # contributions shown, longest first
FACTS_MAX = 10
NAME_MAX = 120
LABEL_MAX = 200

_TITLES = {
    Action.CLAIM: ("Claim", "positive"),
    Action.QUALIFY: ("Qualified", None),
    Action.DISQUALIFY: ("Disqualify", "destructive"),
    Action.SNOOZE: ("Snooze", None),
}

_DONE = {
    Outcome.QUALIFIED: "✅ **Qualified**",
    Outcome.DISQUALIFIED: "🚫 **Disqualified**",
    Outcome.WON: "🏆 **Won**",
    Outcome.LOST: "✖️ **Lost**",
}


def verb(action: Action) -> str:
    """``lead_claim`` for ``Action.CLAIM``: the verbs the invoke handler listens to."""
    return f"lead_{action.value}"


def action_data(action: Action, lead_id: str) -> dict[str, str]:
    return {"leadbot": LEAD_ACTION, "action": action.value, "lead_id": lead_id}


@dataclass(frozen=True)
class AlertView:
    """``ActionResult.state`` read for display. Times are unix seconds (ISO accepted);
    ``names`` maps actor refs to display names (also read from ``claimed_by_name`` and
    ``outcome_by_name``)."""

    claimed_by: str | None = None
    claimed_at: float | None = None
    outcome: str | None = None
    outcome_by: str | None = None
    reason: str | None = None
    snoozed_until: float | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, state: Mapping[str, Any] | None) -> AlertView:
        state = state or {}
        outcome = state.get("outcome")
        validate_outcome(outcome, "state.outcome")
        names = {str(k): str(v) for k, v in (state.get("names") or {}).items() if v}
        for key in ("claimed_by", "outcome_by"):
            if state.get(key) and state.get(f"{key}_name"):
                names[str(state[key])] = str(state[f"{key}_name"])
        return cls(
            claimed_by=state.get("claimed_by"),
            claimed_at=timestamp(state.get("claimed_at")),
            outcome=outcome,
            outcome_by=state.get("outcome_by"),
            reason=state.get("reason"),
            snoozed_until=timestamp(state.get("snoozed_until")),
            names=names,
        )

    def lines(self) -> list[str]:
        """The state as card text, latest news first."""
        out = []
        if self.outcome is not None:
            by = f" by {person(self.outcome_by, self.names)}" if self.outcome_by else ""
            reason = f" — {clip(self.reason, 300)}" if self.reason else ""
            out.append(f"{_DONE[Outcome(self.outcome)]}{by}{reason}")
        if self.claimed_by is not None:
            at = f" at {date(self.claimed_at)}" if self.claimed_at is not None else ""
            out.append(f"🙋 Claimed by {person(self.claimed_by, self.names)}{at}")
        if self.snoozed_until is not None and self.outcome is None:
            out.append(f"💤 Snoozed until {date(self.snoozed_until)}")
        return out

    def actions(self) -> tuple[Action, ...]:
        """The actions still useful (``bot.chat.messages.remaining_actions``)."""
        return remaining_actions(outcome=self.outcome, claimed_by=self.claimed_by)

    def status(self) -> str | None:
        return self.outcome or ("claimed" if self.claimed_by else None)


def alert_card(
    alert: AlertMessage, *, state: Mapping[str, Any] | None = None, crm_url: str | None = None
) -> Card:
    """The alert card; its CRM button opens the lead's record when ``alert.crm_records``
    knows it, else ``crm_url``, a template with ``{id}`` or ``{email}``
    (``config.slack.crm_url``). Raises ``CardTooLargeError`` if it cannot fit 40 KB."""
    view = AlertView.of(state)
    return fit_card(lambda n: _card(alert, view, crm_url, n), BREAKDOWN_LIMITS, "alert")


def _card(alert: AlertMessage, view: AlertView, crm_url: str | None, limit: int) -> Card:
    lead, sc = alert.lead, alert.score
    body: list[Element] = [
        heading(f"🔥 {title(lead.shown, lead.company, sc.total)}"),
        *score_parts(sc),
        why_now(alert.why_now),
        *breakdown([c.to_json() for c in alert.contributions], limit),
    ]
    again = alert.hot_again(lambda ref: person(ref, view.names))
    if again is not None:
        body.insert(1, subtle(f"🔁 {again}"))
    fact_pairs = _facts(lead, alert.facts)
    if fact_pairs:
        body.append(facts(fact_pairs))
    body.append(subtle(f"Lead id {clip(lead.id, 200)} · alerted {date(alert.at)}"))
    if view.lines():
        body.append(container([text(line) for line in view.lines()], separator=True))
    actions = lead_actions(lead.id, view.actions())
    crm = crm_button(alert, crm_url)
    if crm is not None:
        actions.append({"type": "Action.OpenUrl", "title": crm.title, "url": crm.url})
    return card(body, actions, summary=_summary(alert, view))


def who(lead: Mapping[str, Any]) -> str:
    """The raw name to show for a lead: name, else e-mail, else id."""
    return str(lead.get("name") or lead.get("email") or lead["id"])


def title(name: str, company: object, total: float) -> str:
    """``Dana Reyes · AcmeSoft — 81``, inert, the name shortened so the score always shows."""
    head = clip(name, NAME_MAX)
    if company:
        head += f" · {clip(company, NAME_MAX)}"
    return f"{head} — {total:.0f}"


def score_parts(sc: AlertScore) -> list[Element]:
    """Band and score, then fit and intent with grade and engagement level."""
    return [
        text(
            f"**{plain(sc.band.capitalize())}** · score **{sc.total:.1f}** · "
            f"p = {sc.probability:.2f}",
            spacing="Small",
        ),
        facts([
            ("Fit", f"{sc.fit:.0f} · grade {plain(sc.grade)}"),
            ("Intent", f"{sc.intent:.0f} · engagement {plain(sc.engagement)}/4"),
        ]),
    ]  # fmt: skip


def why_now(why: WhyNow) -> Element:
    what = f"{clip(why.name, 200)} ({plain(why.type)})" if why.name else plain(why.type)
    items = [text(f"⚡ **Why now:** {what} — {date(why.at)}")]
    if why.rules:
        items.append(subtle(f"Matched: {clip(', '.join(why.rules), 300)}"))
    return container(items, separator=True)


def contribution(c: Mapping[str, Any]) -> tuple[str, str]:
    """``("+30.0", "Requested a demo · 1 event, last <date>")``."""
    value = clip(c["label"], LABEL_MAX)
    if detail := signal_detail(c, date):
        value += f" · {detail}"
    return points(float(c["points"])), value


def breakdown(contributions: Sequence[Mapping[str, Any]], limit: int) -> list[Element]:
    """Every contribution (negatives too) up to ``limit``, then how many more."""
    if not contributions:
        return [text("**Score breakdown:** no signals yet", separator=True)]
    parts = [text("**Score breakdown**", separator=True)]
    shown = contributions[:limit]
    if shown:
        parts.append(facts([contribution(c) for c in shown]))
    if len(contributions) > len(shown):
        parts.append(more(len(contributions) - len(shown), "signals"))
    return parts


def _facts(lead: LeadRef, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = [(clip(k, 60), clip(v, 300)) for k, v in pairs]
    if lead.email:
        out.append(("E-mail", clip(lead.email, 300)))
    return out[:FACTS_MAX]


def lead_actions(lead_id: str, actions: Sequence[Action]) -> list[Element]:
    """The Execute buttons, Disqualify as an inline card asking for the reason."""
    out = []
    for action in actions:
        name, style = _TITLES[action]
        data = action_data(action, lead_id)
        if action is Action.DISQUALIFY:
            out.append(disqualify_action(data))
        else:
            out.append(execute(name, verb(action), data, style=style))
    return out


def disqualify_action(data: Mapping[str, Any]) -> Element:
    reason: Element = {
        "type": "Input.ChoiceSet", "id": "reason", "label": "Reason", "style": "compact",
        "isRequired": True, "errorMessage": "Pick a reason.",
        "choices": [{"title": r.value.capitalize(), "value": r.value} for r in DisqualifyReason],
    }  # fmt: skip
    note: Element = {
        "type": "Input.Text", "id": "note", "label": "Note (optional)", "isMultiline": True,
        "maxLength": 500, "placeholder": "Anything the team should know",
    }  # fmt: skip
    submit = execute("Disqualify", verb(Action.DISQUALIFY), data, style="destructive")
    return {
        "type": "Action.ShowCard",
        "title": "Disqualify",
        "card": {"type": "AdaptiveCard", "body": [reason, note], "actions": [submit]},
    }


def _summary(alert: AlertMessage, view: AlertView) -> str:
    lead, why = alert.lead, alert.why_now
    company = f" ({clip(lead.company, NAME_MAX)})" if lead.company else ""
    what = clip(why.name or why.type, 200)
    summary = (
        f"Hot lead: {clip(lead.shown, NAME_MAX)}{company}, score {alert.score.total:.0f} — {what}"
    )
    status = view.status()
    return f"{summary} ({status})" if status else summary
