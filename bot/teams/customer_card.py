"""Customers in Teams, as Adaptive Cards: ``lead customer``'s card and the slipping-customer
alert, whose buttons are ``Action.Execute`` (verbs ``customer_reached_out``,
``customer_snooze``, ``customer_not_a_concern``) with data ``{"leadbot": "customer_action",
"action", "lead_id"}`` and an ``Action.Submit`` fallback. Lead data is made inert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.chat.customer_alerts import LABELS, CustomerAction, done_line, remaining
from bot.chat.customer_reply import CustomerCard
from bot.outbox.messages import CustomerAtRisk
from bot.teams.card_parts import (
    Card,
    Element,
    card,
    clip,
    date,
    execute,
    facts,
    guard,
    heading,
    person,
    plain,
    subtle,
    text,
)

CUSTOMER_ACTION = "customer_action"
VERB_PREFIX = "customer_"


def _who(name: str | None, email: str | None, lead_id: str, company: str | None) -> str:
    return clip(name or email or lead_id, 120) + (f" ({clip(company, 60)})" if company else "")


def customer_body(c: CustomerCard) -> list[Element]:
    """R/F/M, cell, segment since, recency, window orders and revenue, last orders, history."""
    usual = "" if c.usual_interval_days is None else f" (every {c.usual_interval_days:g} days)"
    last = "-" if c.recency_days is None else f"{c.recency_days:g} days ago{usual}"
    revenue = f"{c.revenue:,.2f} {plain(c.currency)}" + "".join(
        f" + {v:,.2f} {plain(k)} (no rate)" for k, v in c.unconverted
    )
    body: list[Element] = [
        heading(_who(c.name, c.email, c.id, c.company)),
        facts([
            ("Segment", f"{plain(c.segment)}" + (f" since {date(c.since)}" if c.since else "")),
            ("R / F / M", f"{c.r} / {c.f} / {c.m} (cell {plain(c.cell)})"),
            ("Last order", last),
            (f"In {plain(c.window)}", f"{c.orders} orders, {revenue}"),
        ]),
    ]  # fmt: skip
    if c.last_orders:
        body.append(text("**Last orders**"))
        body += [
            text(
                f"{date(o.at)} · {clip(o.order_id, 80)} · {o.amount:,.2f} "
                f"{plain(o.currency or '')} · {plain(o.status)}"
                + (f" (refunded {o.refunded:,.2f})" if o.refunded else ""),
                spacing="None",
            )
            for o in c.last_orders
        ]
    if c.history:
        body.append(text("**Segment history**"))
        body += [
            text(
                f"{date(h.at)} · {plain(h.source or 'new')} → **{plain(h.to)}** ({plain(h.cell)})",
                spacing="None",
            )
            for h in c.history
        ]
    body.append(subtle(f"Lead id {clip(c.id, 200)}"))
    return body


def customer_alert_card(
    alert: CustomerAtRisk,
    *,
    state: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> Card:
    """The alert, with who did what after a click (``state``: the stored action)."""
    lead = alert.lead
    body: list[Element] = [
        heading(f"Customer slipping: {_who(lead.name, lead.email, lead.id, lead.company)}"),
        text(f"**{plain(alert.source)}** → **{plain(alert.to)}** (cell {plain(alert.cell)})"),
        text(plain(alert.text.rpartition(": ")[2])),
        subtle(f"Lead id {clip(lead.id, 200)}"),
    ]
    done = done_line(state or {}, person((state or {}).get("by"), names))
    if done:
        body.append(text(done, weight="Bolder"))
    data = {"leadbot": CUSTOMER_ACTION, "lead_id": lead.id}
    actions = [
        execute(LABELS[a], VERB_PREFIX + a.value, {**data, "action": a.value})
        for a in remaining(state)
    ]
    return guard(card(body, actions, summary=clip(alert.text, 300)), "customer alert")


def customer_click(data: Mapping[str, Any]) -> tuple[CustomerAction, str]:
    """(action, lead id) of a click on a customer alert (the verb wins over ``action``).
    ValueError naming the field that is missing or wrong."""
    verb = str(data.get("verb") or "")
    word = verb.removeprefix(VERB_PREFIX) if verb.startswith(VERB_PREFIX) else data.get("action")
    try:
        action = CustomerAction(str(word))
    except ValueError:
        allowed = ", ".join(a.value for a in CustomerAction)
        raise ValueError(f"card data action: expected one of {allowed}, got {word!r}") from None
    lead_id = data.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise ValueError(f"card data lead_id: expected a lead id, got {lead_id!r}")
    return action, lead_id
