"""The columns of each CRM's standard export, and the traits they become.

Trait names are those the scoring model reads (the Segment spec's: ``title``, ``email``,
``company.employee_count``…). Every other column becomes a custom trait named by its header
in snake case (``Annual Revenue`` → ``annual_revenue``). ``crm.<name>.columns`` in the YAML
config adds or overrides a header's trait (a dotted path, or null to skip the column).

The record id, the create date and the outcome columns are read whatever the mapping: they
key the lead's CRM link, time its identify call and make its label. The ``crm`` trait is
never set from an export: it names the lead's own stack, and every row of a HubSpot export
would otherwise look like a HubSpot customer to the ``crm_in_stack`` rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from config.crm import Crm

EMAIL_TRAIT = "email"
EMPLOYEES_TRAIT = "company.employee_count"


@dataclass(frozen=True)
class Layout:
    """One CRM's export: its key columns and standard header → trait path."""

    crm: str
    record: str  # the record id column
    created: str  # the create date: the identify call's timestamp
    modified: str  # the last-modified date, if exported: the time of the outcome
    outcome_columns: tuple[str, str]  # read by the CRM's outcome rule, in its order
    traits: Mapping[str, str | None]
    ignored: tuple[str, ...] = ()  # read for the outcome only (never a trait)

    def columns(self, crm: Crm) -> dict[str, str | None]:
        """Header (as ``header_key``) → trait path, or None to skip, with the overrides."""
        overrides = crm.hubspot.columns if self.crm == "hubspot" else crm.salesforce.columns
        mapping = {header_key(h): path for h, path in self.traits.items()}
        for header in (self.record, self.created, self.modified, *self.ignored):
            mapping[header_key(header)] = None
        mapping.update({header_key(h): path for h, path in overrides.items()})
        return mapping


HUBSPOT = Layout(
    crm="hubspot",
    record="Record ID",
    created="Create Date",
    modified="Last Modified Date",
    outcome_columns=("Lifecycle Stage", "Lead Status"),
    traits={
        "First Name": "firstName",
        "Last Name": "lastName",
        "Email": EMAIL_TRAIT,
        "Job Title": "title",
        "Company Name": "company.name",
        "Number of Employees": EMPLOYEES_TRAIT,
        "Industry": "company.industry",
        "Country/Region": "address.country",
        "Lifecycle Stage": "lifecycle_stage",
        "Lead Status": "lead_status",
    },
)

SALESFORCE = Layout(
    crm="salesforce",
    record="Lead ID",
    created="Created Date",
    modified="Last Modified Date",
    outcome_columns=("Converted", "Lead Status"),
    traits={
        "First Name": "firstName",
        "Last Name": "lastName",
        "Email": EMAIL_TRAIT,
        "Title": "title",
        "Company": "company.name",
        "No. of Employees": EMPLOYEES_TRAIT,
        "Industry": "company.industry",
        "Country": "address.country",
        "Lead Source": "lead_source",
        "Lead Status": "lead_status",
    },
    ignored=("Converted",),  # the outcome itself, not who the lead is
)

LAYOUTS = {layout.crm: layout for layout in (HUBSPOT, SALESFORCE)}


def header_key(header: str) -> str:
    """A header as compared: case and runs of spaces ignored."""
    return " ".join(header.split()).lower()


def custom_trait(header: str) -> str:
    """A header's custom trait name: snake case, starting with a letter."""
    name = re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"column_{name}".rstrip("_")
    return name
