"""Where alerts go, from the settings and the config alone: the router ``serve`` uses, for
commands that queue alerts outside it. Light on purpose: ``leadbot model …`` asks it
without loading the chat SDKs (that import alone was a second of every such command)."""

from __future__ import annotations

from bot.chat.routing import Router
from bot.slack.enabled import slack_enabled
from bot.teams.mode import teams_enabled
from config.loader import LeadbotConfig
from config.settings import Settings


def running_router(settings: Settings, config: LeadbotConfig) -> Router:
    """The router ``serve`` routes alerts with, for commands that queue alerts outside it
    (``leadbot model activate``): Slack's default channel when Slack is on, Teams when on."""
    return Router(
        config.routing,
        slack_channel=default_channel(settings, config),
        teams=teams_enabled(settings),
    )


def default_channel(settings: Settings, config: LeadbotConfig) -> str | None:
    """Slack's default alert channel (LEADBOT_SLACK_CHANNEL over the config), or None when
    Slack is off and alerts go to the console."""
    if not slack_enabled(settings):
        return None
    return settings.slack_channel or config.slack.default_channel
