"""A proposed model version as an Adaptive Card: points per rule old → new, the held-out
metrics, and Approve / Reject for the managers; after a decision, the same card with the
decision in place of the buttons (as ``bot/slack/proposal_blocks.py`` does in Slack).

The buttons are ``Action.Execute`` with verbs ``model_approve`` / ``model_reject`` and data
``{"leadbot": "model", "version": N, "action": "approve" | "reject"}`` (the ``action`` lets
the ``Action.Submit`` fallback, which has no verb, say which button it was).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.outbox.messages import ProposalMessage, RuleChange
from bot.teams.card_parts import (
    Card,
    Element,
    card,
    clip,
    container,
    execute,
    facts,
    fit_card,
    heading,
    more,
    plain,
    subtle,
    text,
)

MODEL = "model"
APPROVE = "model_approve"
REJECT = "model_reject"
CHANGE_LIMITS = (60, 30, 10, 0)


def proposal_card(proposal: ProposalMessage, *, decision: str | None = None) -> Card:
    """The card for a ``proposal`` or ``model_applied`` message (``bot.models.learning``).
    ``decision``: plain text (``bot.models.learning.describe``) shown instead of the buttons;
    a ``model_applied`` message carries its own."""
    decided = decision or proposal.decision
    return fit_card(lambda n: _card(proposal, decided, n), CHANGE_LIMITS, "proposal")


def _card(proposal: ProposalMessage, decided: str | None, limit: int) -> Card:
    state = "applied" if proposal.decision else "proposed"
    body: list[Element] = [
        heading(f"Model v{proposal.version} {state}"),
        text(
            f"A refit of v{proposal.base} on {proposal.labels_line}. "
            "Points per rule, old → new:"
        ),
        *_changes(proposal.changes, limit),
        subtle(
            f"intercept {proposal.intercept:g} · "
            f"{proposal.points_per_logodds:g} points per log-odds"
        ),
        text("**Held-out labels** (the newest), current model → refit on the older:",
             separator=True),
        *(text(plain(m), spacing="None") for m in proposal.metrics),
    ]  # fmt: skip
    actions: list[Element] = []
    if decided:
        body.append(container([text(plain(decided))], style="emphasis", separator=True))
    else:
        actions = buttons(proposal.version, proposal.improved)
    summary = f"{plain(proposal.text)} {plain(decided)}" if decided else plain(proposal.text)
    return card(body, actions, summary=summary)


def _changes(changes: Sequence[RuleChange], limit: int) -> list[Element]:
    if not changes:
        return [text("_no rule's points change_", spacing="Small")]
    parts: list[Element] = [facts([_change(c) for c in changes[:limit]])] if limit else []
    if len(changes) > limit:
        parts.append(more(len(changes) - limit, "rules"))
    return parts


def _change(change: RuleChange) -> tuple[str, str]:
    arrow = "▲" if change.new > change.old else "▼"
    return f"{arrow} {clip(change.label, 120)}", f"{change.old:g} → **{change.new:g}**"


def buttons(version: int, improved: bool) -> list[Element]:
    """Approve is the suggested click only when the held-out metrics improved."""
    data = {"leadbot": MODEL, "version": version}
    approve = execute(
        "Approve" if improved else "Approve anyway", APPROVE, {**data, "action": "approve"},
        style="positive" if improved else None,
    )  # fmt: skip
    reject = execute(
        "Reject", REJECT, {**data, "action": "reject"},
        style="destructive" if improved else "positive",
    )  # fmt: skip
    return [approve, reject]
