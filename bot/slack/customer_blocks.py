"""Customers in Slack, as Block Kit: ``/lead customer``'s card and the slipping-customer
alert with its buttons (``customer_reached_out``, ``customer_snooze``,
``customer_not_a_concern``; the value is the lead id). Lead data is escaped."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
)

from bot.chat.customer_alerts import LABELS, CustomerAction, done_line, remaining
from bot.chat.customer_reply import CustomerCard
from bot.outbox.messages import CustomerAtRisk
from bot.slack.blocks import (
    clip,
    escape,
    fallback,
    header,
    mrkdwn,
    person,
    render,
    section,
    slack_date,
)

PREFIX = "customer_"
CUSTOMER_BUTTONS = re.compile(r"^customer_(reached_out|snooze|not_a_concern)$")
"""The customer alert's buttons (``bot.slack.customer_app`` and the gate read it)."""
ACTIONS_BLOCK = "customer_actions"
_STYLES = {CustomerAction.REACHED_OUT: "primary", CustomerAction.NOT_A_CONCERN: None}


def _who(name: str | None, email: str | None, lead_id: str, company: str | None) -> str:
    who = clip(name or email or lead_id, 120)
    return who + (f" ({clip(company, 60)})" if company else "")


def customer_blocks(card: CustomerCard) -> list[Block]:
    """The card: R/F/M, cell, segment since, recency, window orders and revenue, the last
    orders and the segment history."""
    scores = f"R *{card.r}* · F *{card.f}* · M *{card.m}* · cell `{escape(card.cell)}`"
    since = f" since {slack_date(card.since)}" if card.since else ""
    recency = "-" if card.recency_days is None else f"{card.recency_days:g} days"
    usual = (
        "" if card.usual_interval_days is None
        else f" (usually every {card.usual_interval_days:g} days)"
    )  # fmt: skip
    money = f"*{card.orders}* orders · *{card.revenue:,.2f} {escape(card.currency)}*"
    apart = "".join(f" + {v:,.2f} {escape(c)} (no rate)" for c, v in card.unconverted)
    blocks: list[Block] = [
        header(clip(_who(card.name, card.email, card.id, card.company), 150)),
        section(f"*{escape(card.segment)}*{since}\n{scores}"),
        section(f"*Last order* {recency} ago{usual}\n{money}{apart} in {escape(card.window)}"),
    ]
    if card.last_orders:
        lines = [
            f"{slack_date(o.at)} · {escape(o.order_id)} · {o.amount:,.2f} "
            f"{escape(o.currency or '')} · {escape(o.status)}"
            + (f" (refunded {o.refunded:,.2f})" if o.refunded else "")
            for o in card.last_orders
        ]
        blocks.append(section("*Last orders*\n" + "\n".join(lines)))
    if card.history:
        lines = [
            f"{slack_date(h.at)} · {escape(h.source or 'new')} → *{escape(h.to)}* "
            f"({escape(h.cell)})"
            for h in card.history
        ]
        blocks.append(section("*Segment history*\n" + "\n".join(lines)))
    blocks.append(ContextBlock(elements=[mrkdwn(f"Lead id {clip(card.id, 200)}")]))
    return blocks


def customer_alert_message(
    alert: CustomerAtRisk, *, state: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Blocks for ``chat.postMessage`` / ``chat.update`` and the notification text."""
    lead = alert.lead
    title = f"Customer slipping: {_who(lead.name, lead.email, lead.id, lead.company)}"
    blocks: list[Block] = [
        header(clip(title, 150)),
        section(
            f"*{escape(alert.source)}* → *{escape(alert.to)}* (cell `{escape(alert.cell)}`)\n"
            f"{escape(alert.text.rpartition(': ')[2])}"
        ),
        ContextBlock(elements=[mrkdwn(f"Lead id {clip(lead.id, 200)}")]),
        DividerBlock(),
    ]
    done = done_line(state or {}, person((state or {}).get("by")))
    if done:
        blocks.append(section(done))
    buttons = [
        ButtonElement(
            text=LABELS[a], action_id=PREFIX + a.value, value=lead.id, style=_STYLES.get(a)
        )
        for a in remaining(state)
    ]
    if buttons:
        blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK, elements=buttons))
    return render(blocks), fallback(alert.text)
