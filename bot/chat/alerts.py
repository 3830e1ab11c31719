"""The alert policy and the alert message (``bot.outbox.messages.AlertMessage``) every chat
platform renders.

An alert is decided inside the ingest transaction and written to the outbox there, so a
crash or a chat outage can delay it but never lose or double it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bot.outbox.messages import AlertMessage, AlertScore, LeadRef, PreviousAlert, Signal
from bot.outbox.messages import WhyNow as WhyNowFacts
from scoring import Band, Score

ACTIONS = ("claim", "qualify", "disqualify", "snooze")


@dataclass(frozen=True, slots=True)
class WhyNow:
    """The event that tipped the lead over: its kind, name, time and the rules it hit."""

    type: str
    name: str
    at: float
    rules: tuple[str, ...] = ()

    def describe(self) -> str:
        what = f"{self.type}: {self.name}" if self.name else self.type
        return f"{what} ({', '.join(self.rules)})" if self.rules else what


def should_alert(
    *,
    previous_band: str | None,
    band: Band,
    alerted_at: float | None,
    now: float,
    cooldown_seconds: float,
    anonymous: bool,
) -> bool:
    """One alert per crossing into hot, none for anonymous visitors, none within the
    cooldown of the last alert (a lead flapping around the edge must not spam a channel)."""
    if anonymous or band is not Band.HOT or previous_band == Band.HOT:
        return False
    return alerted_at is None or now - alerted_at >= cooldown_seconds


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def profile_facts(traits: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The profile facts a rep wants at a glance, in a fixed order, absent ones left out."""
    company = traits.get("company")
    company = company if isinstance(company, Mapping) else {}
    address = traits.get("address")
    address = address if isinstance(address, Mapping) else {}
    candidates = [
        ("Title", traits.get("title")),
        ("Company", company.get("name")),
        ("Employees", company.get("employee_count")),
        ("Industry", company.get("industry")),
        ("Country", address.get("country") or traits.get("country")),
        ("CRM", traits.get("crm")),
    ]
    return [(label, str(value)) for label, value in candidates if value not in (None, "")]


def previous_alert(
    alerted_at: float | None, claimed_by: str | None, claimed_at: float | None
) -> PreviousAlert | None:
    """The lead's last alert (and its claim) for a repeat alert; None for a first one."""
    if alerted_at is None:
        return None
    return PreviousAlert(
        iso(alerted_at), claimed_by, None if claimed_at is None else iso(claimed_at)
    )


def new_alert(
    *,
    lead: Mapping[str, Any],
    traits: Mapping[str, Any],
    score: Score,
    why: WhyNow,
    now: float,
    previous: PreviousAlert | None = None,
) -> AlertMessage:
    """The alert message: lead, score, why now, every contribution, facts and actions, and
    the lead's last alert when it is hot again."""
    return AlertMessage(
        lead=LeadRef.from_json(lead),
        score=AlertScore(
            total=round(score.total, 1), fit=round(score.fit, 1), intent=round(score.intent, 1),
            band=str(score.band), grade=score.grade, engagement=score.engagement,
            probability=round(score.probability, 4),
        ),
        why_now=WhyNowFacts(why.type, why.name, iso(why.at), tuple(why.rules)),
        contributions=tuple(Signal.from_json(c.to_dict()) for c in score.contributions),
        facts=tuple(profile_facts(traits)),
        actions=ACTIONS,
        at=iso(now),
        previous=previous,
    )  # fmt: skip


def alert_payload(
    *,
    lead: Mapping[str, Any],
    traits: Mapping[str, Any],
    score: Score,
    why: WhyNow,
    now: float,
    previous: PreviousAlert | None = None,
) -> dict[str, Any]:
    """``new_alert`` as the outbox row stores it."""
    message = new_alert(lead=lead, traits=traits, score=score, why=why, now=now, previous=previous)
    return message.to_payload()


CRM_NAMES = {"hubspot": "HubSpot", "salesforce": "Salesforce"}


@dataclass(frozen=True, slots=True)
class CrmButton:
    title: str
    url: str


def crm_button(alert: AlertMessage, template: str | None) -> CrmButton | None:
    """The alert's "Open in …" button: the lead's real CRM record once it is known
    ("Open in HubSpot"; HubSpot's before Salesforce's when both are), else the configured
    template ("Open in CRM", ``slack.crm_url``), else none."""
    for crm, url in alert.crm_records:
        return CrmButton(f"Open in {CRM_NAMES.get(crm, crm.title())}", url)
    link = crm_link(template, alert.lead.to_json())
    return None if link is None else CrmButton("Open in CRM", link)


def crm_link(template: str | None, lead: Mapping[str, Any]) -> str | None:
    """The template with ``{id}`` / ``{email}`` filled in (URL-quoted); None without a
    template, or when it needs an e-mail the lead does not have."""
    if not template:
        return None
    email = lead.get("email")
    if "{email}" in template and not email:
        return None
    return template.replace("{id}", quote(str(lead["id"]), safe="")).replace(
        "{email}", quote(str(email or ""), safe="@")
    )
