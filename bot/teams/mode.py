"""Whether and how Teams runs, from the settings alone: what the CLI and the composition root
ask without loading the Microsoft 365 Agents SDK (``bot.teams.runtime`` wires it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from config.settings import Settings

SETTINGS = "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__"
CLIENT_ID = SETTINGS + "CLIENTID"
CLIENT_SECRET = SETTINGS + "CLIENTSECRET"
TENANT_ID = SETTINGS + "TENANTID"
AUTH_TYPE = SETTINGS + "AUTHTYPE"
ANONYMOUS = SETTINGS + "ANONYMOUS_ALLOWED"

ROUTE = "/api/messages"
ANONYMOUS_WARNING = (
    f"Teams runs in anonymous mode ({ANONYMOUS}=true): {ROUTE} accepts activities without "
    "a token, so anyone who can reach this port can act as any Teams user. Use it only "
    "with the Agents Playground or on a private machine."
)


class TeamsConfigError(Exception):
    """Teams is half configured; the message names the variable."""


@dataclass(frozen=True, slots=True)
class TeamsMode:
    """``app_id``: the bot's Microsoft App (client) id, None in anonymous mode alone."""

    app_id: str | None
    anonymous: bool


def _flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in ("", "0", "false"):
        return False
    if text in ("1", "true"):
        return True
    raise TeamsConfigError(f"{ANONYMOUS} must be true or false, got {value!r}")


def teams_mode(settings: Settings) -> TeamsMode | None:
    """How Teams runs, or None when it is off. Raises TeamsConfigError naming what is
    missing when only part of the credentials is set."""
    env = settings.agents_sdk
    anonymous = _flag(env.get(ANONYMOUS))
    given = [name for name in (CLIENT_ID, CLIENT_SECRET, TENANT_ID) if env.get(name)]
    if not given:
        return TeamsMode(None, True) if anonymous else None
    needed = [CLIENT_ID, TENANT_ID]
    if env.get(AUTH_TYPE, "ClientSecret").lower() == "clientsecret":
        needed.append(CLIENT_SECRET)
    missing = [name for name in needed if not env.get(name)]
    if missing:
        raise TeamsConfigError(
            f"Teams is half configured: {', '.join(given)} set but {', '.join(missing)} not; "
            "set them from the Azure Bot's app registration (README: Install in Teams)"
        )
    return TeamsMode(env[CLIENT_ID], anonymous)


def teams_enabled(settings: Settings) -> bool:
    """On with credentials or explicit anonymous mode; half configured counts as on, so
    that ``build_app`` refuses to start rather than run without it silently."""
    try:
        return teams_mode(settings) is not None
    except TeamsConfigError:
        return True


def teams_status(settings: Settings) -> list[tuple[int, str]]:
    """``serve``'s start-up lines about Teams: (log level, text)."""
    mode = teams_mode(settings)
    if mode is None:
        return [(logging.INFO, f"Teams is off (set {CLIENT_ID}, {CLIENT_SECRET} and {TENANT_ID} "
                 "to turn it on; README: Install in Teams)")]  # fmt: skip
    lines = [
        (logging.INFO, f"Teams on at {ROUTE}" + (f", app {mode.app_id}" if mode.app_id else ""))
    ]
    if mode.anonymous:
        lines.append((logging.WARNING, ANONYMOUS_WARNING))
    return lines
