"""A proposed model version as Block Kit: points per rule old → new, the held-out metrics,
and Approve / Reject buttons for the managers; after a decision, the same message with the
decision in place of the buttons."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock

from bot.outbox.messages import ProposalMessage, RuleChange
from bot.slack.blocks import (
    MAX_BLOCKS,
    clip,
    escape,
    fallback,
    header,
    line_sections,
    more_note,
    mrkdwn,
    render,
    section,
)

APPROVE_ACTION = "model_approve"
REJECT_ACTION = "model_reject"
DECISION_BLOCK = "model_decision"


def proposal_message(
    proposal: ProposalMessage, *, decision: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Blocks and fallback text for a ``proposal`` or ``model_applied`` message.
    ``decision`` (Slack mrkdwn, already escaped): shown instead of the buttons."""
    decided = decision or proposal.decision
    title = f"Model v{proposal.version} {'applied' if proposal.decision else 'proposed'}"
    blocks: list[Block] = [
        header(title),
        section(
            f"A refit of v{proposal.base} on {proposal.labels_line}. Points per rule, old → new:"
        ),
    ]
    lines = [_change(c) for c in proposal.changes] or ["_no rule's points change_"]
    lines.append(
        f"intercept {proposal.intercept:g} · {proposal.points_per_logodds:g} points per log-odds"
    )
    blocks += line_sections(lines, max_sections=20, more=more_note("rules"))
    metrics = "\n".join(escape(m) for m in proposal.metrics)
    blocks.append(
        section(f"*Held-out labels* (the newest), current model → refit on the older:\n{metrics}")
    )
    if decided:
        blocks.append(ContextBlock(block_id=DECISION_BLOCK, elements=[mrkdwn(str(decided))]))
    else:
        blocks.append(_buttons(proposal.version, proposal.improved))
    assert len(blocks) <= MAX_BLOCKS
    text = f"{proposal.text} {_plain(decided)}" if decided else proposal.text
    return render(blocks), fallback(text)


def _change(change: RuleChange) -> str:
    arrow = "▲" if change.new > change.old else "▼"
    return f"{arrow} {clip(change.label, 120)}: {change.old:g} → *{change.new:g}*"


def _buttons(version: int, improved: bool) -> ActionsBlock:
    """Approve is the suggested click only when the held-out metrics improved."""
    approve, reject = ("Approve", "danger") if improved else ("Approve anyway", "primary")
    value = str(version)
    return ActionsBlock(
        block_id=f"model_v{version}",
        elements=[
            ButtonElement(
                text=approve, action_id=APPROVE_ACTION, value=value,
                style="primary" if improved else None,
            ),
            ButtonElement(text="Reject", action_id=REJECT_ACTION, value=value, style=reject),
        ],
    )  # fmt: skip


def _plain(mrkdwn_text: Any) -> str:
    return str(mrkdwn_text).replace("*", "")
