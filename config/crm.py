"""The ``crm`` section: which CRM records are won or lost deals, how CSV exports map onto
traits, and how much a CRM's outcome weighs against a rep's click when the model is refit.

```yaml
crm:
  label_weight: 2          # a closed deal counts as much as this many rep clicks in a refit
  reasons: 3               # contributions listed in leadbot_reasons / Leadbot_Reasons__c
  hubspot:
    won_lifecycle_stages: [customer]          # add opportunity to count it as won
    lost_lead_statuses: [unqualified, bad timing]
    won_deal_stages: [closedwon]
    lost_deal_stages: [closedlost]
    columns: {"Annual Revenue": company.annual_revenue, "Fax Number": null}
  salesforce:
    won_when_converted: true                  # Converted = 1 is a won label
    lost_lead_statuses: [closed - not converted]
    columns: {"Rating": rating}
```

Stage and status names match in any case, with spaces, underscores and hyphens alike:
``Bad Timing``, ``BAD_TIMING`` and ``bad timing`` are one status, as HubSpot's export shows
labels where its API gives internal values. ``columns`` adds to or overrides the standard
export columns (a dotted trait path, or null to skip the column).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from config.conditions import Strict

Outcome = Literal["won", "lost"]
_SEPARATORS = re.compile(r"[\s_\-]+")
_TRAIT_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
TraitPath = Annotated[str, Field(pattern=_TRAIT_PATH, max_length=200)]


def normalized(value: object) -> str:
    """A stage or status as compared: lower case, runs of spaces/_/- as one space."""
    return _SEPARATORS.sub(" ", str(value)).strip().lower()


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(normalized(v) for v in values)


class HubSpotSpec(Strict):
    won_lifecycle_stages: list[str] = Field(default_factory=lambda: ["customer"])
    lost_lead_statuses: list[str] = Field(default_factory=lambda: ["unqualified", "bad timing"])
    won_deal_stages: list[str] = Field(default_factory=lambda: ["closedwon"])
    lost_deal_stages: list[str] = Field(default_factory=lambda: ["closedlost"])
    columns: dict[str, TraitPath | None] = Field(default_factory=dict)


class SalesforceSpec(Strict):
    won_when_converted: bool = True
    lost_lead_statuses: list[str] = Field(default_factory=lambda: ["closed - not converted"])
    columns: dict[str, TraitPath | None] = Field(default_factory=dict)


class CrmSpec(Strict):
    label_weight: Annotated[float, Field(gt=0, le=100)] = 2.0
    reasons: Annotated[int, Field(ge=1, le=10)] = 3
    hubspot: HubSpotSpec = HubSpotSpec()
    salesforce: SalesforceSpec = SalesforceSpec()

    def to_crm(self) -> Crm:
        hub, sf = self.hubspot, self.salesforce
        return Crm(
            label_weight=self.label_weight,
            reasons=self.reasons,
            hubspot=HubSpotOutcomes(
                won_stages=_names(hub.won_lifecycle_stages),
                lost_statuses=_names(hub.lost_lead_statuses),
                won_deals=_names(hub.won_deal_stages),
                lost_deals=_names(hub.lost_deal_stages),
                columns=dict(hub.columns),
            ),
            salesforce=SalesforceOutcomes(
                won_when_converted=sf.won_when_converted,
                lost_statuses=_names(sf.lost_lead_statuses),
                columns=dict(sf.columns),
            ),
        )


@dataclass(frozen=True)
class HubSpotOutcomes:
    """Which HubSpot contacts and deals are outcomes (names already ``normalized``)."""

    won_stages: frozenset[str] = _names(["customer"])
    lost_statuses: frozenset[str] = _names(["unqualified", "bad timing"])
    won_deals: frozenset[str] = _names(["closedwon"])
    lost_deals: frozenset[str] = _names(["closedlost"])
    columns: Mapping[str, str | None] = field(default_factory=dict)

    def contact(self, lifecycle_stage: object, lead_status: object) -> Outcome | None:
        """A contact's outcome: won by its lifecycle stage, else lost by its lead status."""
        if lifecycle_stage and normalized(lifecycle_stage) in self.won_stages:
            return "won"
        if lead_status and normalized(lead_status) in self.lost_statuses:
            return "lost"
        return None

    def deal(self, stage: object) -> Outcome | None:
        if stage and normalized(stage) in self.won_deals:
            return "won"
        if stage and normalized(stage) in self.lost_deals:
            return "lost"
        return None


@dataclass(frozen=True)
class SalesforceOutcomes:
    """Which Salesforce Leads are outcomes."""

    won_when_converted: bool = True
    lost_statuses: frozenset[str] = _names(["closed - not converted"])
    columns: Mapping[str, str | None] = field(default_factory=dict)

    def lead(self, converted: object, status: object) -> Outcome | None:
        """won when converted (``1``, ``true``, ``yes``), else lost by its status."""
        if self.won_when_converted and normalized(converted) in {"1", "true", "yes"}:
            return "won"
        if status and normalized(status) in self.lost_statuses:
            return "lost"
        return None


@dataclass(frozen=True)
class Crm:
    """The compiled ``crm`` section."""

    label_weight: float = 2.0
    reasons: int = 3
    hubspot: HubSpotOutcomes = field(default_factory=HubSpotOutcomes)
    salesforce: SalesforceOutcomes = field(default_factory=SalesforceOutcomes)
    # The CRMs scores are written to: not from the file but from the credentials in the
    # environment, set when the bot starts (bot.app), so every ingest process marks changed
    # leads for exactly the CRMs the syncer writes to.
    targets: tuple[str, ...] = ()
