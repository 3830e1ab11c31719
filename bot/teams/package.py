"""The Teams app package: ``manifest.json`` and the two icons in one zip, for sideloading
(Teams → Apps → Manage your apps → Upload an app) or the Teams admin centre.

``leadbot teams package --app-id <Microsoft App ID> --out leadbot.zip``. The manifest is
schema 1.19: the bot in personal, team and group-chat scopes with a command list for each
(the ``lead`` subcommands of ``bot.chat.commands.SUBCOMMANDS``, so the list never drifts from
the grammar), and ``validDomains``.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.chat.commands import subcommands
from bot.web.about import ABOUT, PRIVACY, TERMS

MANIFEST_VERSION = "1.19"
SCHEMA = (
    "https://developer.microsoft.com/en-us/json-schemas/teams/"
    f"v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
)
SCOPES = ("personal", "team", "groupChat")
ICONS = ("color.png", "outline.png")
ACCENT = "#D9480F"
NAME_MAX, TITLE_MAX, DESCRIPTION_MAX = 30, 32, 128
# Teams requires the developer's website, privacy and terms URLs (https). The installer is
# the developer of a self-hosted app: their --website, else the pages the bot itself serves
# on its --domain (``bot.web.about``: /, /privacy, /terms).
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


class PackageError(ValueError):
    """A bad option; the message names it and the value."""


def check_app_id(value: str) -> str:
    if not _GUID.match(value):
        raise PackageError(
            f"--app-id: expected the bot's Microsoft App ID, a GUID like "
            f"00000000-0000-0000-0000-000000000000, got {value!r}"
        )
    return value.lower()


def check_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > NAME_MAX:
        raise PackageError(f"--name: expected 1 to {NAME_MAX} characters, got {value!r}")
    return name


def check_domain(value: str) -> str:
    """A host name as Teams lists it (``bot.example.com``, ``*.example.com``): no scheme,
    port or path."""
    if not _DOMAIN.match(value):
        raise PackageError(
            f"--domain: expected a host name like bot.example.com (no https://, port or "
            f"path), got {value!r}"
        )
    return value.lower()


def check_website(website: str | None, domains: tuple[str, ...]) -> str:
    """``--website`` (an https URL), else ``https://`` + the first plain ``--domain``."""
    if website is None:
        plain = [d for d in domains if not d.startswith("*")]
        if not plain:
            raise PackageError(
                "--website: Teams needs your https website (shown as the developer, privacy "
                "and terms pages): give --website https://… or the bot's --domain"
            )
        return f"https://{plain[0]}"
    parsed = urlsplit(website)
    if parsed.scheme != "https" or not parsed.netloc:
        raise PackageError(f"--website: expected an https:// URL, got {website!r}")
    return website


def developer_links(website: str | None, domains: tuple[str, ...]) -> dict[str, str]:
    """The manifest's developer links: ``--website`` for all three (the installer's own
    site), else the bot's about, privacy and terms pages on its first plain domain."""
    site = check_website(website, domains)
    if website is not None:
        return {"websiteUrl": site, "privacyUrl": site, "termsOfUseUrl": site}
    return {"websiteUrl": site + ABOUT, "privacyUrl": site + PRIVACY, "termsOfUseUrl": site + TERMS}


def check_version(value: str) -> str:
    if not _VERSION.match(value):
        raise PackageError(f"--version: expected a version like 1.0.0, got {value!r}")
    return value


def commands() -> list[dict[str, str]]:
    """The command list entries: title as typed after ``lead``, usage and what it does."""
    out = []
    for sub in subcommands(private_replies=False):  # a Teams channel has no private answers
        usage = f"lead {sub.name} {sub.args}".rstrip()
        text = f"{usage}: {sub.help}"
        if len(text) > DESCRIPTION_MAX:  # cut at a word, not in the middle of one
            text = text[: DESCRIPTION_MAX - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + "…"
        out.append({"title": sub.name[:TITLE_MAX], "description": text})
    return out


def manifest(
    *,
    app_id: str,
    links: Mapping[str, str],
    name: str = "leadbot",
    domains: tuple[str, ...] = (),
    version: str = "1.0.0",
) -> dict[str, Any]:
    """The app manifest (checked values in: see ``build_package``); ``links``:
    ``developer_links``."""
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {"name": name, **links},
        "name": {"short": name, "full": f"{name}: lead scores and alerts"},
        "description": {
            "short": "Hot-lead alerts that explain the score, and one-click feedback.",
            "full": (
                "Alerts for leads that turn hot, with the signals behind their score; Claim, "
                "Qualified, Disqualify and Snooze on each card; lead score, feedback, top and "
                "digest commands; feedback that teaches the scoring model. Self-hosted."
            ),
        },
        "icons": {"color": ICONS[0], "outline": ICONS[1]},
        "accentColor": ACCENT,
        "bots": [
            {
                "botId": app_id,
                "scopes": list(SCOPES),
                "supportsFiles": False,
                "isNotificationOnly": False,
                "commandLists": [{"scopes": [scope], "commands": commands()} for scope in SCOPES],
            }
        ],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": list(domains),
    }


def icon_bytes() -> Mapping[str, bytes]:
    folder = resources.files("bot.teams") / "icons"
    return {name: (folder / name).read_bytes() for name in ICONS}


def build_package(
    out: str | Path,
    *,
    app_id: str,
    name: str = "leadbot",
    domains: tuple[str, ...] = (),
    version: str = "1.0.0",
    website: str | None = None,
) -> dict[str, Any]:
    """Write the zip at ``out`` (manifest.json and the icons at its root, as Teams wants)
    and return the manifest. Raises PackageError naming the bad option."""
    hosts = tuple(dict.fromkeys(check_domain(d) for d in domains))
    checked = manifest(
        app_id=check_app_id(app_id), name=check_name(name), domains=hosts,
        version=check_version(version), links=developer_links(website, hosts),
    )  # fmt: skip
    path = Path(out)
    if path.suffix.lower() != ".zip":
        raise PackageError(f"--out: expected a file name ending in .zip, got {str(out)!r}")
    if not path.parent.is_dir():
        raise PackageError(f"--out: the folder {str(path.parent)!r} does not exist")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(checked, indent=2, ensure_ascii=False))
        for icon, data in icon_bytes().items():
            archive.writestr(icon, data)
    return checked
