"""The aiohttp application: routes, and the background tasks that live with it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import Router
from bot.crm.base import Connector
from bot.crm.pull import crm_connectors
from bot.crm.sync import CrmSyncer, running_syncer
from bot.crm.webhooks import LEARNER, add_hubspot_webhooks
from bot.destinations import default_channel, running_router  # noqa: F401 (re-exported)
from bot.ingest.running import running_ingest
from bot.ingest.signatures import WebhookVerifier
from bot.ingest.tracking import add_tracking_routes
from bot.ingest.webhooks import receive_events
from bot.ingest.writekeys import WriteKeys
from bot.ingest.writer import IngestProcess
from bot.jobs.scheduler import JobContext, Scheduler
from bot.models.edges import BandEdges, following_band_edges
from bot.models.learning import Learner, manager_destinations, running_learner
from bot.models.live import ActiveModel
from bot.models.rescore import RescoreAlerts
from bot.models.versions import active_model
from bot.outbox.dispatcher import ByDestination, ConsoleTransport, Dispatcher, Transport
from bot.slack.runtime import (
    SLACK_APP,
    SlackConfigError,
    build_slack,
    check_slack_settings,
    mount_slack,
    slack_enabled,
    socket_mode,
)
from bot.teams.mode import TeamsConfigError, teams_enabled
from bot.web.about import add_about_routes
from bot.web.keys import (
    DISPATCHER,
    ENGINE,
    INGEST,
    LIMITS,
    SCHEDULER,
    VERIFIER,
    WRITE_KEYS,
    Limits,
)
from bot.web.ops import healthz, metrics, read_timeout, readyz
from config.errors import ConfigError
from config.loader import DEFAULT_PATH, LeadbotConfig
from config.settings import Settings
from config.writer import model_yaml
from scoring.model import Model
from storage.engine import create_engine
from storage.migrate import upgrade

log = logging.getLogger(__name__)


class StartupError(Exception):
    """leadbot cannot start as configured; the message says what to set."""


def make_verifier(settings: Settings, *, insecure: bool) -> WebhookVerifier | None:
    """The webhook signature check, or None when explicitly told to run open. With only
    SDK write keys set, a verifier without secrets: /webhooks/events refuses every call."""
    secrets = settings.webhook_secrets
    segment = settings.segment_secret.get_secret_value() if settings.segment_secret else None
    if secrets or segment:
        return WebhookVerifier(secrets=secrets, segment_secret=segment)
    if insecure:
        return None
    if settings.write_key_list:
        return WebhookVerifier()
    raise StartupError(
        "nothing authenticates events, so anyone could post them. Set LEADBOT_WEBHOOK_SECRET "
        "(`leadbot webhook-secret`) for signed webhooks, LEADBOT_SEGMENT_SECRET for a Segment "
        "webhook destination, or LEADBOT_WRITE_KEYS (`leadbot write-key`) for Segment and "
        "RudderStack SDKs; or start with --insecure to accept unsigned events on purpose."
    )


def make_write_keys(settings: Settings, *, insecure: bool) -> WriteKeys | None:
    """The tracking API's write keys; None (open) only when none is set and told to run
    open. With none set otherwise, every SDK request is refused, saying what to set."""
    keys = settings.write_key_list
    if not keys and insecure:
        return None
    return WriteKeys(keys)


def build_app(
    *,
    settings: Settings,
    config: LeadbotConfig,
    insecure: bool = False,
    clock: Callable[[], float] = time.time,
    transport: Transport | None = None,
) -> web.Application:
    """The whole bot on one aiohttp application; the database is opened at startup.
    ``transport`` replaces the console output (tests capture it)."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[read_timeout(settings.read_timeout)],
    )
    app[VERIFIER] = make_verifier(settings, insecure=insecure)
    app[WRITE_KEYS] = make_write_keys(settings, insecure=insecure)
    app[LIMITS] = Limits(settings.max_body_bytes, settings.max_event_bytes, clock)
    app.router.add_post("/webhooks/events", receive_events)
    add_tracking_routes(app.router)  # Segment's tracking API, for SDKs: /v1/batch, …
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    add_about_routes(app.router)  # the Teams manifest's website, privacy and terms
    try:
        crm = crm_connectors(settings, config)  # the CRMs whose credentials are set
    except ConfigError as exc:  # half a configuration: say which variable is missing
        raise StartupError(str(exc)) from exc
    add_hubspot_webhooks(app, settings, config, crm)  # POST /crm/hubspot/webhooks
    with_slack = slack_enabled(settings)
    if with_slack:
        try:
            check_slack_settings(settings)
        except SlackConfigError as exc:
            raise StartupError(str(exc)) from exc
        if settings.slack_signing_secret is not None:  # Socket Mode alone takes no HTTP
            mount_slack(app, settings, config)  # the signature gate, then Bolt
    teams_host = None
    if teams_enabled(settings):
        # The Microsoft 365 Agents SDK (~26 MB of memory) is loaded only when Teams is on.
        from bot.teams.runtime import mount_teams, prepare_teams

        try:
            teams_host = prepare_teams(settings)
        except TeamsConfigError as exc:
            raise StartupError(str(exc)) from exc
        mount_teams(app, teams_host)
    with_teams = teams_host is not None
    channel = default_channel(settings, config)
    router = Router(config.routing, slack_channel=channel, teams=with_teams)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await upgrade(engine)
        live = with_crm_targets(await with_active_model(engine, config), crm)
        transports: dict[str, Transport] = {"console": transport or ConsoleTransport()}
        # This process's band edges, for what commands and buttons show: followed with the
        # pipeline's here in thread mode, on their own when the writer is another process.
        edges = BandEdges(live.model.bands)
        alerts = RescoreAlerts(
            router=Router(config.routing, slack_channel=channel, teams=with_teams),
            policy=live.alerts,
        )
        managers = manager_destinations(live.learning, live.managers, channel, teams=with_teams)
        learner = Learner(
            engine=engine, config=live, clock=clock, alerts=alerts, destinations=managers,
        )  # fmt: skip
        slack = None
        if with_slack:
            slack = build_slack(
                settings=settings, config=live, engine=engine, clock=clock, edges=edges,
                active=ActiveModel(live.model), learner=learner,
            )  # fmt: skip
            app[SLACK_APP], transports["slack"] = slack.app, slack.transport
        if teams_host is not None:
            from bot.teams.runtime import TEAMS, build_teams, report_missing

            teams = build_teams(
                teams_host, config=live, engine=engine, clock=clock, edges=edges,
                active=ActiveModel(live.model), learner=learner,
            )  # fmt: skip
            app[TEAMS], transports["teams"] = teams, teams.transport
            await report_missing(engine, live, managers)
        dispatcher = Dispatcher(
            engine, ByDestination(transports), clock=clock,
            give_up_hours=settings.outbox_give_up_hours,
        )  # fmt: skip
        learner.on_queued = dispatcher.wake
        app[LEARNER] = learner  # woken by labels from CRM webhooks
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(engine.dispose)
            if settings.ingest == "process":
                writer = IngestProcess(
                    database_url=settings.database_url, config=live,
                    on_alert=dispatcher.wake, router=router,
                )  # fmt: skip
                await writer.start()
                stack.push_async_callback(writer.close)
                app[INGEST] = writer
                await stack.enter_async_context(following_band_edges(edges, engine))
            else:
                ingest = running_ingest(
                    engine, live, clock=clock, on_alert=dispatcher.wake, router=router,
                    edges=edges,
                )  # fmt: skip
                app[INGEST] = await stack.enter_async_context(ingest)
            if slack is not None:
                await stack.enter_async_context(socket_mode(slack))
            await stack.enter_async_context(running_learner(learner))
            syncer = None
            if crm:
                syncer = CrmSyncer(
                    engine, list(crm.values()), ActiveModel(live.model), reasons=live.crm.reasons,
                    thresholds=lambda: edges.current, clock=clock,
                )  # fmt: skip
            await stack.enter_async_context(running_syncer(syncer))
            app[ENGINE], app[DISPATCHER] = engine, dispatcher
            delivery = asyncio.create_task(dispatcher.run())
            scheduler = Scheduler(
                engine, live, clock=clock,
                context=JobContext(
                    active=ActiveModel(live.model), alerts=alerts, on_queued=dispatcher.wake,
                    managers=managers, crm=crm, on_labels=learner.wake,
                ),
            )  # fmt: skip
            scheduler.start()  # after the dispatcher, stopped before it
            app[SCHEDULER] = scheduler
            yield
            await scheduler.stop()
            delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivery

    app.cleanup_ctx.append(lifecycle)
    return app


def with_crm_targets(config: LeadbotConfig, crm: Mapping[str, Connector]) -> LeadbotConfig:
    """The configuration with the CRMs scores are written to (``Crm.targets``): the ingest,
    in this process or the writer's, marks changed leads for exactly these."""
    return dataclasses.replace(config, crm=dataclasses.replace(config.crm, targets=tuple(crm)))


async def with_active_model(engine: AsyncEngine, config: LeadbotConfig) -> LeadbotConfig:
    """The configuration with the active model version's points, when one was activated
    (``leadbot model activate``); else the configured model as it is."""
    active = await active_model(engine)
    if active is None:
        return config
    version, model = active
    drift = model_drift(config, version, model)
    if drift is None:
        log.info("scoring with model v%d (the active version)", version)
    else:
        log.warning(drift)
    return dataclasses.replace(config, model=model)


def model_drift(config: LeadbotConfig, version: int, active: Model) -> str | None:
    """What to tell a user whose config file holds a model other than the active version
    (which is what the bot scores with), and how to make the file's model live; None when
    they agree. The bundled default is only a starting point: a learned version replacing
    it is the normal course, not a surprise, so it is not reported."""
    if config.source == str(DEFAULT_PATH) or model_yaml(config.model) == model_yaml(active):
        return None
    return (
        f"the model in {config.source} is NOT the one scored with: the active version v{version} "
        f"is, and it differs. To score with the file: leadbot model import {config.source} "
        "--activate"
    )
