"""``leadbot serve``: start the bot, saying plainly how it is configured."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.app import StartupError, build_app, default_channel, model_drift
from bot.ingest.writekeys import WriteKeys
from bot.ingest.writer import WriterStartError
from bot.models.versions import active_model
from bot.teams.mode import teams_enabled, teams_status
from bot.web.keys import VERIFIER, WRITE_KEYS
from config.loader import LeadbotConfig
from config.settings import Settings
from storage.engine import create_engine
from storage.offloop import settle_heap

log = logging.getLogger("leadbot")

INSECURE_WARNING = (
    "running with --insecure and no LEADBOT_WEBHOOK_SECRET: webhook signatures are "
    "NOT checked and anyone who can reach this port can change lead scores."
)
OPEN_SDK_WARNING = (
    "running with --insecure and no LEADBOT_WRITE_KEYS: the SDK routes (/v1/*) take "
    "events from anyone who can reach this port."
)

REUSE_PORT_NEEDS_POSTGRES = (
    "LEADBOT_REUSE_PORT=1 runs several replicas on one port, which needs PostgreSQL "
    "(DATABASE_URL is SQLite: one process only)"
)


def serve(
    settings: Settings,
    config: LeadbotConfig,
    *,
    insecure: bool,
    host: str | None = None,
    port: int | None = None,
) -> int:
    if settings.reuse_port and make_url(settings.database_url).get_backend_name() == "sqlite":
        sys.stderr.write(f"leadbot: {REUSE_PORT_NEEDS_POSTGRES}\n")
        return 2
    try:
        app = build_app(settings=settings, config=config, insecure=insecure)
    except StartupError as exc:
        sys.stderr.write(f"leadbot: {exc}\n")
        return 2
    host, port = listen_address(settings, insecure=insecure, host=host), port or settings.port
    database = make_url(settings.database_url).render_as_string(hide_password=True)
    log.info("leadbot on http://%s:%d — database %s", host, port, database)
    log.info("scoring model '%s' from %s: %d rules, hot at %s",
             config.model.name, config.source, len(config.model.rules), _hot(config))  # fmt: skip
    drift = asyncio.run(_model_drift(settings, config))
    if drift is not None:
        log.warning(drift)
    channel = default_channel(settings, config)
    if channel is not None:
        log.info("alerts go to Slack: routing rules, else %s", channel)
    elif not teams_enabled(settings):
        log.info("alerts go to the console (no chat platform configured)")
    for level, line in teams_status(settings):
        log.log(level, line)
    webhooks, sdks = _webhook_auth(settings, app[VERIFIER] is None), _sdk_auth(app[WRITE_KEYS])
    log.info("events: POST /webhooks/events (%s); SDKs: POST /v1/batch (%s)", webhooks, sdks)
    crms = [name for name, on in (
        ("HubSpot", settings.hubspot_access_token is not None),
        ("Salesforce", bool(settings.salesforce_instance_url or settings.salesforce_username)),
    ) if on]  # fmt: skip
    if crms:
        log.info("scores are written to %s; its outcomes come back as labels", " and ".join(crms))
    if app[VERIFIER] is None:
        log.warning(INSECURE_WARNING)
    if app[WRITE_KEYS] is None:
        log.warning(OPEN_SDK_WARNING)
    settle_heap()
    try:
        web.run_app(
            app, host=host, port=port, access_log=None, print=None, reuse_port=settings.reuse_port
        )
    except WriterStartError as exc:
        sys.stderr.write(f"leadbot: cannot start the ingest writer process: {exc}\n")
        return 1
    log.info("leadbot stopped: every accepted event is committed")
    return 0


def _webhook_auth(settings: Settings, open_: bool) -> str:
    secrets = len(settings.webhook_secrets)
    kinds = [f"{secrets} signing secret{'s' if secrets > 1 else ''}"] if secrets else []
    if settings.segment_secret is not None:
        kinds.append("Segment X-Signature")
    if open_:
        return "unsigned, --insecure"
    return " or ".join(kinds) if kinds else "refused: no LEADBOT_WEBHOOK_SECRET"


def _sdk_auth(keys: WriteKeys | None) -> str:
    if keys is None:
        return "no write key, --insecure"
    count = len(keys)
    if not count:
        return "refused: no LEADBOT_WRITE_KEYS"
    return f"{count} write key{'s' if count > 1 else ''}"


def listen_address(settings: Settings, *, insecure: bool, host: str | None) -> str:
    """``--host``, else ``LEADBOT_HOST``, else every interface — but only this machine when
    running open (``--insecure``): unsigned webhooks must not be reachable by accident."""
    if host or settings.host:
        return str(host or settings.host)
    return "127.0.0.1" if insecure else "0.0.0.0"


async def _model_drift(settings: Settings, config: LeadbotConfig) -> str | None:
    """``model_drift`` for the summary: the file's model against the active version."""
    engine = create_engine(settings.database_url)
    try:
        active = await active_model(engine)
    except SQLAlchemyError:
        return None  # a database not migrated yet holds no version; start-up migrates it
    finally:
        await engine.dispose()
    return None if active is None else model_drift(config, *active)


def _hot(config: LeadbotConfig) -> str:
    hot = config.model.bands.hot
    if hot.percentile is not None:
        return f"the top {100 - hot.percentile:g} % (at least {hot.min_points:g} points)"
    return f"{hot.points:g} points"
