"""``leadbot doctor``'s Slack and Teams checks: Slack's ``auth.test``, mode and default
channel; Teams' variables, a token from Entra ID through the SDK's MSAL connection manager,
and the configured destinations with no stored conversation yet. Each platform's modules
are imported only when it is configured."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admin.checks import Check, Context, fail, not_checked, ok, reason, warn
from config.settings import Settings

SLACK_FIX = "check this host's network and proxy (and SLACK_API_URL if set)"
TEAMS_TOKEN_FIX = "check that the identity service (login.microsoftonline.com) is reachable"

# -- Slack ---------------------------------------------------------------------------------

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


# -- Teams ---------------------------------------------------------------------------------


async def check_teams(ctx: Context) -> list[Check]:
    if ctx.settings is None:
        return not_checked("teams", "the settings could not be read")
    from bot.teams import runtime

    try:
        mode = runtime.teams_mode(ctx.settings)
    except runtime.TeamsConfigError as exc:
        return fail("teams", str(exc), "serve refuses to start until it is complete")
    if mode is None:
        return ok("teams", f"off ({runtime.CLIENT_ID} not set)")
    checks = []
    if mode.app_id is not None:
        env = ctx.settings.agents_sdk
        auth = env.get(runtime.AUTH_TYPE, "ClientSecret")
        tenant = env.get(runtime.TENANT_ID)
        checks += ok("teams", f"on, app {mode.app_id}, tenant {tenant}, auth {auth}")
    if mode.anonymous:
        fix = f"unset {runtime.ANONYMOUS} outside the Agents Playground; set the app's credentials"
        checks += warn("teams", runtime.ANONYMOUS_WARNING, fix)
    return checks


async def check_teams_token(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or not _teams_credentials(settings):
        return []
    from bot.teams import runtime

    mode = runtime.teams_mode(settings)
    assert mode is not None
    try:
        # Inside the check's own timeout, so that the line says what timed out.
        async with asyncio.timeout(ctx.timeout * 0.9):
            await _off_loop(lambda: _bot_framework_token(settings))
    except TimeoutError:
        return fail(
            "teams token",
            f"no token from Entra ID for app {mode.app_id}: no answer within {ctx.timeout:g} s",
            TEAMS_TOKEN_FIX,
        )
    except Exception as exc:
        return fail(
            "teams token",
            f"no token from Entra ID for app {mode.app_id}: {reason(exc)}",
            f"check {runtime.CLIENT_ID}, {runtime.CLIENT_SECRET} "
            f"and {runtime.TENANT_ID} against the Azure Bot's app registration, and "
            "that the identity service is reachable from here",
        )
    return ok("teams token", f"a Bot Framework token for app {mode.app_id} obtained")


def _teams_credentials(settings: Settings) -> bool:
    from bot.teams import runtime

    try:
        mode = runtime.teams_mode(settings)
    except runtime.TeamsConfigError:
        return False  # the teams check says what is missing
    return mode is not None and mode.app_id is not None


async def _bot_framework_token(settings: Settings) -> str:
    """A token as the outbox's Teams transport gets one: MSAL's client-credentials flow
    through the SDK's connection manager, for the Bot Framework scope."""
    from microsoft_agents.hosting.core.authorization import AuthenticationConstants

    from bot.teams.runtime import prepare_teams

    provider = prepare_teams(settings).connections.get_default_connection()
    scope = AuthenticationConstants.AGENTS_SDK_SCOPE
    return await provider.get_access_token(scope, [f"{scope}/.default"])


async def check_teams_destinations(ctx: Context) -> list[Check]:
    settings = ctx.settings
    if settings is None or not _teams_on(settings):
        return []
    if ctx.engine is None or ctx.config is None or not ctx.schema_current:
        return not_checked("teams reach", "needs the config and a current database (see above)")
    from bot.teams.runtime import configured_destinations
    from bot.teams.transport import missing_reference_advice
    from storage.teams import missing_destinations

    wanted = configured_destinations(ctx.config)
    async with ctx.engine.connect() as conn:
        missing = await missing_destinations(conn, wanted, default=ctx.config.teams.default_channel)
    if not missing:
        return ok(
            "teams reach", f"every configured destination ({len(wanted)}) has a stored conversation"
        )
    lines = "\n".join(f"{d}: {missing_reference_advice(d)}" for d in missing)
    return warn(
        "teams reach",
        f"{len(missing)} destination(s) the bot cannot post to yet:\n{lines}",
        "messages for them wait in the outbox until then",
    )


def _teams_on(settings: Settings) -> bool:
    from bot.teams.runtime import TeamsConfigError, teams_mode

    try:
        return teams_mode(settings) is not None
    except TeamsConfigError:
        return False


# -- off the event loop --------------------------------------------------------------------

P = ParamSpec("P")
T = TypeVar("T")


class _DaemonThreads(ThreadPoolExecutor):
    """A default executor whose threads never hold up the process's exit: the Agents SDK
    hands MSAL's blocking HTTP to ``asyncio.to_thread``, and a check given up at its
    timeout must not keep doctor waiting for it."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)

        threading.Thread(target=work, daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


async def _off_loop(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` on its own event loop in a daemon thread: MSAL also blocks the loop
    it is called on (it builds its client synchronously), which no timeout could cut."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def settle(apply: Callable[[], None]) -> None:
        # RuntimeError: doctor finished and closed its loop meanwhile.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(lambda: None if result.done() else apply())

    def run() -> None:
        own = asyncio.new_event_loop()
        own.set_default_executor(_DaemonThreads())
        try:
            value = own.run_until_complete(make())
        except Exception as exc:
            error = exc
            settle(lambda: result.set_exception(error))
        else:
            settle(lambda: result.set_result(value))
        finally:
            own.close()

    threading.Thread(target=run, daemon=True, name="leadbot-doctor").start()
    return await result
