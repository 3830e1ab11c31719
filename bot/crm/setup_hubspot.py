"""``leadbot crm setup hubspot``: the ``leadbot`` property group and the six contact
properties leadbot writes, created once (a second run reports them already there).

A token without ``crm.schemas.contacts.write`` may not create them: HubSpot answers 403, and
the command prints exactly what an admin must create instead, and exits 1.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyGroupCreate

from bot.crm.hubspot import (
    GROUP,
    PROPERTIES,
    hubspot_client,
    mapped_error,
    property_definition,
    required_scopes,
)
from config.settings import Settings

OBJECT = "contacts"
SCOPE = "crm.schemas.contacts.write"
GROUP_LABEL = "leadbot"


def setup_hubspot(
    settings: Settings,
    out: TextIO | None = None,
    err: TextIO | None = None,
    timeout: float = 15.0,
) -> int:
    """Create what is missing; 0 when everything is there, 1 when HubSpot refused, 2 when
    no token is set. Writes to ``out``/``err`` (default: the process's, at call time)."""
    out, err = out or sys.stdout, err or sys.stderr
    if settings.hubspot_access_token is None:
        err.write("leadbot: HUBSPOT_ACCESS_TOKEN is not set: create a private app token first\n")
        return 2
    client = hubspot_client(
        settings.hubspot_access_token.get_secret_value(), settings.hubspot_api_url
    )
    groups, core = client.crm.properties.groups_api, client.crm.properties.core_api
    try:
        _ensure_group(groups, out, timeout)
        _ensure_properties(core, out, timeout)
    except Exception as exc:  # the client raises one ApiException class per API
        if getattr(exc, "status", None) == 403:
            err.write(admin_instructions(_scope(exc)))
            return 1
        mapped = mapped_error(exc)
        if mapped is None:
            raise
        err.write(f"leadbot: {mapped}\n")
        return 1
    out.write("HubSpot is ready: leadbot writes scores to these contact properties.\n")
    return 0


def _ensure_group(api: Any, out: TextIO, timeout: float) -> None:
    names = {g.name for g in api.get_all(OBJECT, _request_timeout=timeout).results}
    if GROUP in names:
        out.write(f"group {GROUP}: already there\n")
        return
    body = PropertyGroupCreate(name=GROUP, label=GROUP_LABEL, display_order=-1)
    api.create(OBJECT, body, _request_timeout=timeout)
    out.write(f"group {GROUP}: created\n")


def _ensure_properties(api: Any, out: TextIO, timeout: float) -> None:
    existing = {p.name: p for p in api.get_all(OBJECT, _request_timeout=timeout).results}
    for name in PROPERTIES:
        wanted = property_definition(name)
        have = existing.get(name)
        if have is None:
            api.create(OBJECT, _property_create(wanted), _request_timeout=timeout)
            out.write(f"property {name}: created ({wanted['type']})\n")
        elif have.type != wanted["type"]:
            out.write(
                f"property {name}: already there, but of type {have.type}, not "
                f"{wanted['type']}: HubSpot may refuse leadbot's values; recreate it\n"
            )
        else:
            out.write(f"property {name}: already there\n")


def _property_create(wanted: dict[str, Any]) -> PropertyCreate:
    options = [
        OptionInput(
            label=o["label"], value=o["value"], display_order=o["displayOrder"], hidden=False
        )
        for o in wanted.get("options", [])
    ]
    return PropertyCreate(
        name=wanted["name"],
        label=wanted["label"],
        type=wanted["type"],
        field_type=wanted["fieldType"],
        group_name=wanted["groupName"],
        description=wanted["description"],
        options=options or None,
    )


def admin_instructions(scope: str = SCOPE) -> str:
    """What a HubSpot admin must create by hand when the token may not."""
    lines = [
        f"leadbot: HubSpot refused (403): this token lacks the scope {scope}.",
        "Either add that scope to the private app (Settings > Integrations > Private Apps >",
        "Scopes) and run `leadbot crm setup hubspot` again, or have an admin create, in",
        "Settings > Properties > Contact properties:",
        f"  property group  {GROUP}  (label: {GROUP_LABEL})",
    ]
    for name in PROPERTIES:
        d = property_definition(name)
        line = (
            f"  property  {name:<20} label: {d['label']:<20} type: {d['type']} ({d['fieldType']})"
        )
        if d.get("options"):
            line += ", options: " + ", ".join(o["value"] for o in d["options"])
        lines.append(line + f", group: {GROUP}")
    lines.append("Internal names must match exactly; labels may differ.")
    return "\n".join(lines) + "\n"


def _scope(exc: Exception) -> str:
    return ", ".join(required_scopes(exc)) or SCOPE
