"""The ``leadbot`` commands whose parsers live beside their code, and their one-line help.

``bot.cli`` imports such a command's module only when that command runs: importing every
one of them took most of a second at each start, whatever the command. ``leadbot --help``
lists them from here without importing any.
"""

from __future__ import annotations

# command → (the module whose ``register`` adds it, its line in ``leadbot --help``), in the
# order of that listing
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": (
        "bot.admin.doctor",
        "check settings, config, database, webhooks, Slack, Teams and outbox",
    ),
    "forget": ("bot.admin.privacy", "delete one person everywhere (leads, events, chat alerts…)"),
    "export": ("bot.admin.privacy", "print everything stored about one person as JSON"),
    "outbox": ("bot.admin.outbox", "messages waiting or dead: list, retry"),
    "feedback": (
        "bot.admin.feedback",
        "record a lead's outcome (as the chat buttons do), or a CSV of them",
    ),
    "write-key": (
        "bot.admin.keys",
        "print a fresh write key for LEADBOT_WRITE_KEYS (Segment/RudderStack SDKs)",
    ),
    "crm": ("bot.crm.cli", "CRM (HubSpot, Salesforce): set up, pull outcomes"),
    "import": (
        "bot.crm.csvimport.command",
        "import a HubSpot or Salesforce CSV export, order history, or past events",
    ),
    "customer": ("bot.admin.customers", "one customer: RFM scores, segment, orders, history"),
    "rfm": ("bot.admin.customers", "RFM segments: customers, revenue and moves per segment"),
}


def help_of(command: str) -> str:
    """``command``'s line in ``leadbot --help``."""
    return COMMANDS[command][1]
