"""``leadbot doctor``'s Slack checks: ``auth.test`` with the bot token, HTTP or Socket Mode,
and the default channel. The composition root (``bot/cli.py``) hands ``CHECKS`` to the
doctor, which knows no chat platform."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admin.checks import Check, CheckFn, Context, fail, not_checked, ok, reason, warn

SLACK_FIX = "check this host's network and proxy (and SLACK_API_URL if set)"


SLACK_TOKEN_ERRORS = (
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
)


async def check_slack(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None:
        return not_checked("slack", "the settings could not be read")
    if settings.slack_bot_token is None:
        return ok("slack", "off (SLACK_BOT_TOKEN not set)")
    base_url = _api_url(settings.slack_api_url) or AsyncWebClient.BASE_URL
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        timeout=max(1, int(ctx.timeout)),
    )
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        fix = (
            "SLACK_BOT_TOKEN is wrong or revoked: copy the Bot User OAuth Token (xoxb-…) "
            "from the Slack app's OAuth & Permissions page"
            if error in SLACK_TOKEN_ERRORS
            else "see Slack's documentation of this error"
        )
        return fail("slack", f"auth.test at {base_url} answered {error}", fix)
    except (aiohttp.ClientError, OSError) as exc:
        return fail("slack", f"Slack Web API at {base_url} unreachable: {reason(exc)}", SLACK_FIX)
    who = f"bot {answer.get('user')} ({answer.get('user_id')})"
    team = f"{answer.get('team')} ({answer.get('team_id')})"
    return ok("slack", f"auth.test: {who} in {team}")


def _api_url(url: str | None) -> str | None:
    if not url:
        return None
    return url if url.endswith("/") else url + "/"


async def check_slack_mode(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or settings.slack_bot_token is None:
        return []
    from bot.slack.runtime import SlackConfigError, check_slack_settings

    try:
        check_slack_settings(settings)
    except SlackConfigError as exc:
        return fail("slack mode", str(exc), "serve refuses to start until one is set")
    modes = []
    if settings.slack_signing_secret is not None:
        modes.append("HTTP at /slack/events (SLACK_SIGNING_SECRET set)")
    if settings.slack_app_token is not None:
        modes.append("Socket Mode (SLACK_APP_TOKEN set)")
        if not settings.slack_app_token.get_secret_value().startswith("xapp-"):
            return warn(
                "slack mode",
                "SLACK_APP_TOKEN does not start with xapp-, as an app-level token does",
                "create one under Basic Information → App-Level Tokens (scope connections:write)",
            )
    return ok("slack mode", " and ".join(modes))


async def check_slack_channel(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or settings.slack_bot_token is None:
        return []
    if settings.slack_channel:
        return ok("slack channel", f"{settings.slack_channel} (LEADBOT_SLACK_CHANNEL)")
    if ctx.config is None:
        return not_checked(
            "slack channel", "LEADBOT_SLACK_CHANNEL is not set and the config could not be read"
        )
    channel = ctx.config.slack.default_channel
    if "default_channel" in ctx.config.slack.model_fields_set:
        return ok("slack channel", f"{channel} (slack.default_channel in the config)")
    return warn(
        "slack channel",
        f"not set: alerts no route claims go to {channel}, leadbot's built-in default",
        f"set LEADBOT_SLACK_CHANNEL (or slack.default_channel in the config) to the channel "
        f"for them, or create {channel}; invite the bot to it",
    )


CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("slack", check_slack),
    ("slack mode", check_slack_mode),
    ("slack channel", check_slack_channel),
)
TIMEOUT_FIX = {"slack": SLACK_FIX}
