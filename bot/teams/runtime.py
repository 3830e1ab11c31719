"""Teams switched on from the environment: the Agents SDK's configuration, connection
manager and ``CloudAdapter``, the agent at ``/api/messages`` behind the SDK's JWT check,
and the outbox transport.

Teams is on when the SDK's credentials are set
(``CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID``, ``…__CLIENTSECRET``,
``…__TENANTID``), or when anonymous mode is asked for explicitly (``…__ANONYMOUS_ALLOWED=
true``: the Agents Playground and local tests; ``serve`` then warns at every start). The
variables are read by the SDK's own loader (``load_configuration_from_env``), as its
samples do (``test_samples/app_style/empty_agent.py``); ``config.settings`` only carries
them from the environment.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from microsoft_agents.activity import load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_decorator
from microsoft_agents.hosting.core import (
    AgentApplication,
    AgentAuthConfiguration,
    TurnContext,
    TurnState,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import TEAMS_DEFAULT
from bot.errors import Refusal
from bot.metrics import REQUESTS_REJECTED
from bot.models.edges import BandEdges
from bot.models.learning import Learner
from bot.models.live import ActiveModel
from bot.outbox.messages import Message
from bot.teams.agent import build_agent
from bot.teams.card_parts import Card
from bot.teams.cards import card_for
from bot.teams.gate import check_activity
from bot.teams.mode import (  # noqa: F401 (re-exported: the adapter's names)
    ANONYMOUS,
    ANONYMOUS_WARNING,
    AUTH_TYPE,
    CLIENT_ID,
    CLIENT_SECRET,
    ROUTE,
    SETTINGS,
    TENANT_ID,
    TeamsConfigError,
    TeamsMode,
    teams_enabled,
    teams_mode,
    teams_status,
)
from bot.teams.transport import TeamsTransport, missing_reference_advice, post_recorder
from bot.web.answers import read_body, refused
from config.loader import LeadbotConfig
from config.settings import Settings
from storage.teams import missing_destinations

log = logging.getLogger(__name__)

# The SDK's JWT check stores the caller's claims under a plain string request key, which
# aiohttp warns about on every request; the warning is the SDK's, not the operator's.
warnings.filterwarnings(
    "ignore", category=web.NotAppKeyWarning,
    module=r"microsoft_agents\.hosting\.aiohttp\.jwt_authorization_middleware",
)  # fmt: skip

TEAMS: web.AppKey[Teams] = web.AppKey("teams")
TEAMS_HOST: web.AppKey[TeamsHost] = web.AppKey("teams_host")


@dataclass
class TeamsHost:
    """What the HTTP route needs before the database is open."""

    mode: TeamsMode
    connections: MsalConnectionManager
    adapter: CloudAdapter
    auth: AgentAuthConfiguration


@dataclass
class Teams:
    agent: AgentApplication[TurnState]
    adapter: CloudAdapter
    transport: TeamsTransport


def prepare_teams(settings: Settings) -> TeamsHost:
    """The SDK's configuration, connection manager and adapter, from the SDK's variables.
    Raises TeamsConfigError when Teams is off or half configured."""
    mode = teams_mode(settings)
    if mode is None:
        raise TeamsConfigError(f"Teams is off: set {CLIENT_ID} or {ANONYMOUS}=true")
    sdk = load_configuration_from_env(settings.agents_sdk)
    connections = MsalConnectionManager(**sdk)
    adapter = CloudAdapter(connection_manager=connections)
    adapter.on_turn_error = _turn_failed  # the SDK's default posts the exception to users
    auth = connections.get_default_connection_configuration()
    return TeamsHost(mode, connections, adapter, auth)


async def _turn_failed(context: TurnContext, error: Exception) -> None:
    log.error("Teams turn failed in the adapter: %s", error, exc_info=error)


def mount_teams(app: web.Application, host: TeamsHost) -> None:
    """``POST /api/messages`` with the SDK's JWT check on that route only (the decorator,
    not the app-wide middleware: Slack and webhook routes keep their own checks). The
    check reads ``request.app["agent_configuration"]``, a plain string key."""
    app[TEAMS_HOST] = host
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["agent_configuration"] = host.auth
    app.router.add_post(ROUTE, teams_messages)


async def teams_messages(request: web.Request) -> web.StreamResponse:
    """Activities from Teams (or the Agents Playground), after the JWT check (401 without
    a valid token unless anonymous mode is on), then the gate (``bot.teams.gate``: 400
    naming the field for an activity the SDK or the agent could not read)."""
    response = await _authorized_activity(request)
    if response.status == 401:  # the SDK's check answered, before the body was read
        REQUESTS_REJECTED.labels("teams", "signature").inc()
    return response


@jwt_authorization_decorator
async def _authorized_activity(request: web.Request) -> web.StreamResponse:
    body = await read_body(request)
    if isinstance(body, web.Response):
        return body
    checked = check_activity(body)
    if isinstance(checked, Refusal):
        return refused("teams", checked.status, checked.reason, checked.to_json())
    teams = request.app[TEAMS]
    answer = await teams.adapter.process_request(_Checked(request, checked[0]), teams.agent)
    if answer.body is not None:
        return web.json_response(answer.body, status=answer.status_code, headers=answer.headers)
    return web.Response(
        status=answer.status_code, headers=answer.headers, content_type=answer.content_type
    )


class _Checked:
    """The request as the SDK's ``process_request`` reads it, with the body the gate
    checked: parsed once, so the SDK cannot read it differently (another charset)."""

    def __init__(self, request: web.Request, body: dict[str, Any]) -> None:
        self._request, self._body = request, body

    @property
    def method(self) -> str:
        return self._request.method

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    async def json(self) -> dict[str, Any]:
        return self._body

    def get_claims_identity(self) -> Any:
        return self._request.get("claims_identity")

    def get_path_param(self, name: str) -> str:
        return self._request.match_info[name]


def build_teams(
    host: TeamsHost,
    *,
    config: LeadbotConfig,
    engine: AsyncEngine,
    clock: Callable[[], float],
    edges: BandEdges | None = None,
    active: ActiveModel | None = None,
    learner: Learner | None = None,
) -> Teams:
    transport = TeamsTransport(
        engine=engine, connections=host.connections, app_id=host.mode.app_id,
        render=renderer(config), on_posted=post_recorder(engine, clock=clock),
        default_conversation=config.teams.default_channel,
    )  # fmt: skip
    agent = build_agent(
        connections=host.connections, config=config, engine=engine, clock=clock,
        transport=transport, edges=edges, active=active, learner=learner,
    )  # fmt: skip
    return Teams(agent=agent, adapter=host.adapter, transport=transport)


def renderer(config: LeadbotConfig) -> Callable[[Message], Card]:
    """``card_for`` with the config's CRM link template."""
    return lambda message: card_for(message, crm_url=config.slack.crm_url)


def configured_destinations(config: LeadbotConfig) -> list[str]:
    """Every Teams destination the config can send to: the default, each route's
    conversation and user, each Teams manager."""
    out = [TEAMS_DEFAULT]
    for route in config.routing.rules:
        if route.teams_channel:
            out.append(f"teams:conversation:{route.teams_channel}")
        if route.teams_user:
            out.append(f"teams:user:{route.teams_user}")
    out.extend(f"teams:user:{m.removeprefix('teams:')}" for m in config.managers
               if m.startswith("teams:"))  # fmt: skip
    return out


async def report_missing(
    engine: AsyncEngine, config: LeadbotConfig, extra: Iterable[str] = ()
) -> list[str]:
    """Log, at start-up, each Teams destination with no conversation reference yet and what
    to do about it (alerts for it wait in the outbox meanwhile). Returns them."""
    async with engine.connect() as conn:
        missing = await missing_destinations(
            conn, [*configured_destinations(config), *extra],
            default=config.teams.default_channel,
        )  # fmt: skip
    for destination in missing:
        log.warning("Teams destination %s: %s", destination, missing_reference_advice(destination))
    return missing
