"""Whether Slack is on, from the settings alone: asked by the CLI and the composition root
without loading slack-bolt (``bot.slack.runtime`` wires it)."""

from __future__ import annotations

from config.settings import Settings


def slack_enabled(settings: Settings) -> bool:
    return settings.slack_bot_token is not None
