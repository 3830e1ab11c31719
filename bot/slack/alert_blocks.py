"""The hot-lead alert as Block Kit: who, the score and why, the facts, and the buttons.

Built from ``bot.outbox.messages.AlertMessage`` at send time. After a click the message
is rebuilt with an ``AlertState`` and updated in place, so the channel sees who acted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    SectionBlock,
)

from bot.chat.alerts import CrmButton, crm_button
from bot.chat.messages import Action, Outcome, remaining_actions, validate_outcome
from bot.chat.plain import signal_detail
from bot.outbox.messages import AlertMessage, AlertScore, LeadRef, Signal, WhyNow
from bot.slack.blocks import (
    FIELD_MAX,
    FIELDS_MAX,
    HEADER_MAX,
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
    slack_date,
    user_mention,
)

BREAKDOWN_SECTIONS = 3  # the whole breakdown is one `/lead score` away
ACTIONS_BLOCK = "lead_actions"
CRM_ACTION = "lead_crm"


def action_id(action: Action) -> str:
    """``lead_claim`` for ``Action.CLAIM``: the ids the interactivity handler listens to."""
    return f"lead_{action.value}"


_BUTTONS: dict[Action, tuple[str, str | None]] = {
    Action.CLAIM: ("Claim", "primary"),
    Action.QUALIFY: ("Qualified", None),
    Action.DISQUALIFY: ("Disqualify", "danger"),
    Action.SNOOZE: ("Snooze", None),
}

_DONE = {
    Outcome.QUALIFIED: ":white_check_mark: Qualified",
    Outcome.DISQUALIFIED: ":no_entry_sign: Disqualified",
    Outcome.WON: ":trophy: Won",
    Outcome.LOST: ":heavy_multiplication_x: Lost",
}


@dataclass(frozen=True)
class AlertState:
    """What has happened to an alert since it was posted. User ids are Slack's (``U123``);
    times are unix seconds; ``outcome`` is an ``Outcome`` value."""

    claimed_by: str | None = None
    claimed_at: float | None = None
    outcome: str | None = None
    outcome_by: str | None = None
    reason: str | None = None
    snoozed_until: float | None = None

    def __post_init__(self) -> None:
        validate_outcome(self.outcome, "outcome")
        for name in ("claimed_by", "outcome_by"):
            value = getattr(self, name)
            if value is not None:
                user_mention(value, field=name)  # refuse now, not when rendering

    def lines(self) -> list[str]:
        """The state as mrkdwn lines, latest news first."""
        out = []
        if self.outcome is not None:
            by = (
                f" by {user_mention(self.outcome_by, field='outcome_by')}"
                if self.outcome_by
                else ""
            )
            reason = f" — {escape(self.reason)}" if self.reason else ""
            out.append(f"{_DONE[Outcome(self.outcome)]}{by}{reason}")
        if self.claimed_by is not None:
            at = f" at {slack_date(self.claimed_at)}" if self.claimed_at is not None else ""
            out.append(
                f":raising_hand: Claimed by {user_mention(self.claimed_by, field='claimed_by')}{at}"
            )
        if self.snoozed_until is not None and self.outcome is None:
            out.append(f":zzz: Snoozed until {slack_date(self.snoozed_until)}")
        return out

    def actions(self) -> tuple[Action, ...]:
        """The buttons still useful (``bot.chat.messages.remaining_actions``)."""
        return remaining_actions(outcome=self.outcome, claimed_by=self.claimed_by)


def alert_message(
    alert: AlertMessage, *, state: AlertState | None = None, crm_url: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Blocks for ``chat.postMessage`` / ``chat.update`` and the notification text."""
    state = state or AlertState()
    lead = alert.lead
    blocks: list[Block] = [
        header(_title(lead, alert.score)),
        section(_score_line(alert.score)),
        section(_why_now(alert.why_now)),
        *_breakdown(alert.contributions),
    ]
    again = alert.hot_again(person)  # escaped, the claimer a mention
    if again is not None:
        blocks.insert(1, ContextBlock(elements=[mrkdwn(f":repeat: {again}")]))
    facts = _facts(lead, alert.facts)
    if facts is not None:
        blocks.append(facts)
    alerted = f"Lead id {clip(lead.id, 200)} · alerted {slack_date(alert.at)}"
    blocks.append(ContextBlock(elements=[mrkdwn(alerted)]))
    blocks.append(DividerBlock())
    if state.lines():
        blocks.append(section("\n".join(state.lines())))
    buttons = _buttons(lead.id, state.actions(), crm_button(alert, crm_url))
    if buttons:
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK, elements=buttons))
    return render(blocks), fallback(_notification(alert, state))


def who(lead: Mapping[str, Any]) -> str:
    """The raw name to show for a lead (a report, a summary): name, else e-mail, else id."""
    return str(lead.get("name") or lead.get("email") or lead["id"])


def title(name: str, company: object, points: float) -> str:
    """``Dana Reyes · AcmeSoft — 81``, the name shortened first so the score always shows."""
    suffix = f" — {points:.0f}"
    text = f"{name} · {company}" if company else name
    room = HEADER_MAX - len(suffix) - 2
    return clip(text, room) + suffix


def _title(lead: LeadRef, sc: AlertScore) -> str:
    return f"🔥 {title(lead.shown, lead.company, sc.total)}"


def _score_line(sc: AlertScore) -> str:
    return (
        f"*{str(sc.band).capitalize()}* · score *{sc.total:.1f}*\n"
        f"Fit {sc.fit:.0f} · grade {escape(sc.grade)}   "
        f"Intent {sc.intent:.0f} · engagement {sc.engagement}/4   "
        f"p = {sc.probability:.2f}"
    )


def _why_now(why: WhyNow) -> str:
    what = f"{escape(why.name)} ({escape(why.type)})" if why.name else escape(why.type)
    hit = f"\nMatched: {escape(', '.join(why.rules))}" if why.rules else ""
    return f":zap: *Why now:* {what} — {slack_date(why.at)}{hit}"


def contribution_line(c: Mapping[str, Any]) -> str:
    """``+30.0  Requested a demo · 1 event, last <date>``; a real minus sign for negatives.
    ``c``: a contribution as JSON (``scoring.Contribution.to_dict``, ``Signal.to_json``)."""
    points = f"{c['points']:+.1f}".replace("-", "−")
    line = f"`{points}`  {escape(c['label'])}"
    if detail := signal_detail(c, slack_date):
        line += f" · {detail}"
    return line


def _breakdown(contributions: Sequence[Signal]) -> list[SectionBlock]:
    if not contributions:
        return [section("*Score breakdown:* no signals yet")]
    lines = ["*Score breakdown*", *(contribution_line(c.to_json()) for c in contributions)]
    return line_sections(lines, max_sections=BREAKDOWN_SECTIONS, more=more_note("signals"))


def _facts(lead: LeadRef, facts: Sequence[tuple[str, str]]) -> SectionBlock | None:
    pairs: list[tuple[str, Any]] = list(facts)
    if lead.email:
        pairs.append(("E-mail", lead.email))
    if not pairs:
        return None
    fields = [mrkdwn(f"*{clip(k, 100)}*\n{clip(v, FIELD_MAX - 110)}") for k, v in pairs]
    return SectionBlock(fields=fields[:FIELDS_MAX])


def _buttons(lead_id: str, actions: Sequence[Action], crm: CrmButton | None) -> list[ButtonElement]:
    buttons = [
        ButtonElement(
            text=_BUTTONS[a][0], action_id=action_id(a), value=lead_id, style=_BUTTONS[a][1]
        )
        for a in actions
    ]
    if crm is not None:
        buttons.append(
            ButtonElement(text=crm.title, action_id=CRM_ACTION, url=crm.url, value=lead_id)
        )
    return buttons


def _notification(alert: AlertMessage, state: AlertState) -> str:
    lead, why = alert.lead, alert.why_now
    company = f" ({lead.company})" if lead.company else ""
    what = why.name or why.type
    text = f"Hot lead: {lead.shown}{company}, score {alert.score.total:.0f} — {what}"
    done = state.outcome or ("claimed" if state.claimed_by else None)
    return f"{text} [{done}]" if done else text
