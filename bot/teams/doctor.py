"""``leadbot doctor``'s Teams checks: the SDK's variables, a token from Entra ID through the
SDK's MSAL connection manager, and the configured destinations with no stored conversation
yet. The composition root (``bot/cli.py``) hands ``CHECKS`` to the doctor."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from bot.admin.checks import Check, CheckFn, Context, fail, not_checked, ok, reason, warn
from config.settings import Settings

TEAMS_TOKEN_FIX = "check that the identity service (login.microsoftonline.com) is reachable"


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


CHECKS: tuple[tuple[str, CheckFn], ...] = (
    ("teams", check_teams),
    ("teams token", check_teams_token),
    ("teams reach", check_teams_destinations),
)
TIMEOUT_FIX = {"teams token": TEAMS_TOKEN_FIX}
