"""``leadbot crm setup salesforce``: the six ``Leadbot_*__c`` custom fields on Lead, created
through the Tooling API once (a second run reports them already there).

A user without "Customize Application" may not create fields: Salesforce answers
``INSUFFICIENT_ACCESS``, and the command prints exactly what an admin must create instead
(API names, types, lengths), and exits 1. Fields created through the API are visible to no
profile yet: the output says to give the API user Edit access (field-level security).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

from simple_salesforce import Salesforce

from bot.crm.salesforce import (
    REASONS_LENGTH,
    SalesforceConnector,
    SalesforceRefusal,
    salesforce_from_settings,
)
from config.crm import Crm
from config.errors import ConfigError
from config.settings import Settings


@dataclass(frozen=True, slots=True)
class CustomField:
    """One Lead field: its API name, the Tooling API ``Metadata``, and how an admin sees
    its type in Setup."""

    api_name: str
    label: str
    metadata: dict[str, Any]
    shown: str  # "Number(5, 1)"

    @property
    def developer_name(self) -> str:
        return self.api_name.removesuffix("__c")


def _field(api_name: str, label: str, shown: str, help_text: str, **kind: Any) -> CustomField:
    metadata = {"label": label, "description": f"Written by leadbot. {help_text}"}
    return CustomField(api_name, label, metadata | {"inlineHelpText": help_text} | kind, shown)


FIELDS = (
    _field("Leadbot_Score__c", "Leadbot Score", "Number(5, 1)", "The lead score, 0-100.",
           type="Number", precision=5, scale=1),
    _field("Leadbot_Band__c", "Leadbot Band", "Text(20)", "hot, warm or cold.",
           type="Text", length=20),
    _field("Leadbot_Grade__c", "Leadbot Grade", "Text(10)", "The fit grade, A to D.",
           type="Text", length=10),
    _field("Leadbot_Probability__c", "Leadbot Probability", "Percent(5, 1)",
           "The estimated chance this lead converts.", type="Percent", precision=5, scale=1),
    _field("Leadbot_Reasons__c", "Leadbot Reasons", f"Long Text Area({REASONS_LENGTH})",
           "What made the score, biggest first.", type="LongTextArea", length=REASONS_LENGTH,
           visibleLines=3),
    _field("Leadbot_Scored_At__c", "Leadbot Scored At", "Date/Time", "When leadbot scored it.",
           type="DateTime"),
)  # fmt: skip
_EXISTING = "SELECT DeveloperName FROM CustomField WHERE TableEnumOrId = 'Lead'"
_FLS = (
    "Give the user leadbot connects as Edit access to these fields (Setup > Object Manager > "
    "Lead > Fields & Relationships > each field > Set Field-Level Security), or leadbot's "
    "writes are refused.\n"
)


def setup_salesforce(
    settings: Settings,
    out: TextIO | None = None,
    err: TextIO | None = None,
    crm: Crm | None = None,
) -> int:
    """Create the missing fields; 0 when all six are there, 1 when Salesforce refused, 2
    when Salesforce is not (or half) configured. Writes to ``out``/``err``."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        connector = salesforce_from_settings(settings, crm or Crm())
    except ConfigError as exc:
        err.write(f"leadbot: {exc}\n")
        return 2
    if connector is None:
        err.write(
            "leadbot: Salesforce is not configured: set SALESFORCE_INSTANCE_URL and "
            "SALESFORCE_ACCESS_TOKEN, or SALESFORCE_USERNAME, SALESFORCE_PASSWORD and "
            "SALESFORCE_SECURITY_TOKEN\n"
        )
        return 2
    try:
        return asyncio.run(create_fields(connector, out, err))
    finally:
        connector.close()


async def create_fields(connector: SalesforceConnector, out: TextIO, err: TextIO) -> int:
    """What ``setup_salesforce`` does once it has a connector (tests call this)."""
    try:
        existing = await connector.call(_existing)
        missing = [f for f in FIELDS if f.developer_name not in existing]
        for spec in FIELDS:
            if spec not in missing:
                out.write(f"{spec.api_name}: already there\n")
        for spec in missing:
            created = await connector.call(partial(_create, spec=spec))
            out.write(f"{spec.api_name}: {'created' if created else 'already there'}\n")
    except SalesforceRefusal as exc:
        if not exc.code.startswith("INSUFFICIENT_ACCESS"):
            raise
        err.write(admin_instructions(str(exc)))
        return 1
    out.write("Salesforce is ready: leadbot writes scores to these Lead fields.\n" + _FLS)
    return 0


def admin_instructions(why: str) -> str:
    """Exactly what an admin creates by hand (Setup > Object Manager > Lead)."""
    lines = [
        f"leadbot: this Salesforce user may not create fields ({why}).",
        "Ask an admin to create these custom fields on Lead (Setup > Object Manager > Lead >",
        "Fields & Relationships > New), with exactly these API names:",
        "",
    ]
    width = max(len(f.api_name) for f in FIELDS)
    lines += [f"  {f.api_name:<{width}}  {f.shown:<24} label: {f.label}" for f in FIELDS]
    lines += ["", _FLS.rstrip("\n"), "Then run `leadbot crm setup salesforce` again to check."]
    return "\n".join(lines) + "\n"


def _existing(sf: Salesforce) -> set[str]:
    answer = sf.toolingexecute("query/", params={"q": _EXISTING})
    names = {str(r.get("DeveloperName")) for r in answer.get("records", [])}
    while not answer.get("done", True) and answer.get("nextRecordsUrl"):
        answer = sf.toolingexecute(str(answer["nextRecordsUrl"]).rsplit("/tooling/", 1)[-1])
        names |= {str(r.get("DeveloperName")) for r in answer.get("records", [])}
    return names


def _create(sf: Salesforce, spec: CustomField) -> bool:
    """True when created; False when it was there after all (made since the query)."""
    body = {"FullName": f"Lead.{spec.api_name}", "Metadata": spec.metadata}
    try:
        sf.toolingexecute("sobjects/CustomField/", method="POST", data=body)
    except Exception as exc:
        if "DUPLICATE_DEVELOPER_NAME" in str(getattr(exc, "content", "")):
            return False
        raise
    return True
