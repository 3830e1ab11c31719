"""The Slack adapter: a Bolt ``AsyncApp`` over the chat-agnostic command and action core.

It only translates: a slash command's text goes to ``bot.chat.commands.run_command``, a button to
``bot.chat.actions.apply_action``; their neutral answers come back as Block Kit
(``bot.slack.reply_blocks``, ``bot.slack.alert_blocks``). Every request is acknowledged
first and worked on after (Slack wants an answer within 3 seconds), and a request Slack
resends is recognised by its key and not acted on twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import ActionResult, apply_action, not_refreshed
from bot.chat.commands import run_command
from bot.chat.failures import failure, sorry
from bot.chat.messages import Action, Actor
from bot.models.edges import BandEdges
from bot.models.learning import Learner
from bot.models.live import ActiveModel
from bot.outbox.messages import AlertMessage
from bot.slack.alert_blocks import CRM_ACTION, AlertState, alert_message
from bot.slack.approvals import Managers, register_approvals
from bot.slack.blocks import escape
from bot.slack.customer_app import register_customer_actions
from bot.slack.gate import BUTTONS
from bot.slack.reply_blocks import reply_message
from bot.slack.views import (
    DISQUALIFY_CALLBACK,
    NOTE_ACTION,
    NOTE_BLOCK,
    REASON_ACTION,
    REASON_BLOCK,
    disqualify_modal,
)
from config.loader import LeadbotConfig
from storage.engine import session_factory
from storage.health import is_outage
from storage.posts import find_post
from storage.requests import first_time

log = logging.getLogger(__name__)


def build_slack_app(
    *,
    config: LeadbotConfig,
    engine: AsyncEngine,
    client: AsyncWebClient,
    signing_secret: str,
    clock: Callable[[], float],
    edges: BandEdges | None = None,
    active: ActiveModel | None = None,
    learner: Learner | None = None,
) -> AsyncApp:
    """The Bolt app; mount it with ``bot.slack.http.slack_route`` or run it in Socket Mode.
    ``edges``: the live band edges answers are scored with, kept fresh by the caller (the
    model's fixed or floor edges when None). ``active``: the model answers are scored
    with (the configured one when None). ``learner`` is woken after every command or
    button (it counts the labels) and decides on proposals; when None, one that only
    decides."""
    edges = edges or BandEdges(config.model.bands)
    active = active or ActiveModel(config.model)
    learner = learner or Learner(engine=engine, config=config, destinations=(), clock=clock)
    managers = Managers(config.managers)
    # Bolt also reads SLACK_BOT_TOKEN itself and warns that the client we give wins; it is
    # the same token (from our settings), so the warning only confuses whoever reads the log.
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_SameTokenTwice())
    app = AsyncApp(client=client, signing_secret=signing_secret)
    sessions = session_factory(engine)

    @app.middleware
    async def once(
        req: AsyncBoltRequest, resp: BoltResponse, next_: Callable[[], Awaitable[BoltResponse]]
    ) -> Any:
        """Slack resends what it did not see acknowledged in time: act on it once. While the
        database is down nothing can be acted on: the rep is told so, Slack gets its 200."""
        key = request_key(req)
        try:
            async with sessions() as session:
                new = await first_time(session, key=key, at=datetime.fromtimestamp(clock(), UTC))
                await session.commit()
        except Exception as exc:
            if not is_outage(exc):
                raise
            await tell_failure(req.body, exc)
            return BoltResponse(status=200, body="")
        if not new:
            log.info("ignoring a resent Slack request (%s)", key)
            return BoltResponse(status=200, body="")
        return await next_()

    @app.command(config.slack.command)
    async def lead_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        async with reported(command):
            await _command(command, respond)

    async def _command(command: dict[str, Any], respond: Any) -> None:
        actor = Actor("slack", command["user_id"], command.get("user_name", ""))
        reply = await run_command(
            unwrap_links(command.get("text", "")), actor=actor, engine=engine,
            model=await active.current(engine), config=config,
            groups_of=lambda user, groups: managers.groups_of(user, groups, client),
            now=clock(), command=config.slack.command, routing=config.routing,
            thresholds=edges.current,
        )  # fmt: skip
        learner.wake()
        blocks, text = reply_message(reply)
        kind = "ephemeral" if reply.private else "in_channel"
        await respond(response_type=kind, blocks=blocks, text=text)

    @app.action(BUTTONS)
    async def lead_button(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any,
        client: AsyncWebClient, context: AsyncBoltContext,
    ) -> None:  # fmt: skip
        await ack()
        async with reported(body):
            await _button(body, action, respond, client)

    async def _button(
        body: dict[str, Any], action: dict[str, Any], respond: Any, client: AsyncWebClient
    ) -> None:
        which = Action(action["action_id"].removeprefix("lead_"))
        lead_id, user = action["value"], body["user"]["id"]
        channel, ts = body["channel"]["id"], body["message"]["ts"]
        if which is Action.DISQUALIFY:
            meta = json.dumps({"lead": lead_id, "channel": channel, "ts": ts})
            name = _lead_name(body)
            view = disqualify_modal(lead_id=lead_id, lead_name=name, private_metadata=meta)
            await client.views_open(trigger_id=body["trigger_id"], view=view)
            return
        result = await _act(which, lead_id, user, body["user"].get("name", ""), None)
        where = _Where(channel=channel, ts=ts, user=user)
        await _show_stored(which, result, where, client=client, respond=respond)

    @app.error
    async def failed(error: Exception, body: dict[str, Any]) -> None:
        await tell_failure(body, error)

    @app.action(CRM_ACTION)
    async def crm_link(ack: Any) -> None:
        await ack()  # a URL button still tells the app it was clicked

    @app.view(DISQUALIFY_CALLBACK)
    async def disqualify_reason(
        ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        async with reported(body):
            await _reason(body, view, client)

    async def _reason(body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        meta = json.loads(view["private_metadata"])
        reason, note = _selected_reason(view)
        user = body["user"]
        result = await _act(
            Action.DISQUALIFY, meta["lead"], user["id"], user.get("name", ""), reason, note
        )
        where = _Where(channel=meta["channel"], ts=meta["ts"], user=user["id"])
        await _show_stored(Action.DISQUALIFY, result, where, client=client, respond=None)

    async def _act(
        which: Action,
        lead_id: str,
        user_id: str,
        name: str,
        reason: str | None,
        note: str | None = None,
    ) -> ActionResult:
        result = await apply_action(
            engine=engine, model=await active.current(engine), action=which, lead_id=lead_id,
            actor=Actor("slack", user_id, name), now=clock(), reason=reason, note=note,
            thresholds=edges.current,
        )  # fmt: skip
        learner.wake()
        return result

    async def _show_stored(
        which: Action, result: ActionResult, where: _Where, *, client: AsyncWebClient,
        respond: Any,
    ) -> None:  # fmt: skip
        """After the commit: redraw the alert, or tell the clicker what was stored. An
        exception from here would reach ``tell_failure``, which says nothing was changed."""
        try:
            shown = await _show(
                result, channel=where.channel, ts=where.ts, client=client, respond=respond
            )
        except Exception as exc:
            log.warning("%s on %s/%s stored, but the alert was not refreshed: %r",
                        which.value, where.channel, where.ts, exc)  # fmt: skip
            shown = False
        if not shown:
            await _tell(not_refreshed(which), where, client=client, respond=respond)

    async def _show(
        result: ActionResult, *, channel: str, ts: str, client: AsyncWebClient, respond: Any
    ) -> bool:
        """Update the alert in place for everyone; tell only the clicker what concerns them.
        False when the alert could not be found to update."""
        if result.notice and respond is not None:
            await respond(response_type="ephemeral", replace_original=False, text=result.notice)
        if not result.changed:
            return True
        async with sessions() as session:
            posted = await find_post(session, platform="slack", channel=channel, ts=ts)
        if posted is None:
            log.warning("no alert recorded at %s/%s: the message is not updated", channel, ts)
            return False
        blocks, text = alert_message(
            AlertMessage.from_payload(posted.payload),
            state=slack_state(result.state),
            crm_url=config.slack.crm_url,
        )
        await client.chat_update(channel=channel, ts=ts, blocks=blocks, text=text)
        return True

    register_approvals(app, learner=learner, managers=managers)
    register_customer_actions(app, engine=engine, rfm=config.rfm, clock=clock)
    return app


@dataclass(frozen=True, slots=True)
class _Where:
    """The alert a click came from, and who clicked."""

    channel: str
    ts: str
    user: str


async def _tell(text: str, where: _Where, *, client: AsyncWebClient, respond: Any) -> None:
    """Tell only the clicker: through the click's response_url, else (a form, which has
    none) as an ephemeral message in the alert's channel. A failure is logged: the rep
    already has the stored result, only not this sentence."""
    try:
        if respond is not None:
            await respond(response_type="ephemeral", replace_original=False, text=text)
        else:
            await client.chat_postEphemeral(channel=where.channel, user=where.user, text=text)
    except Exception as exc:
        log.warning("could not tell %s %r: %r", where.user, text, exc)


class _SameTokenTwice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def slack_state(state: dict[str, Any]) -> AlertState:
    """The neutral action state with people as Slack user ids (``slack:U123`` → ``U123``);
    someone acting from another platform is not mentioned."""
    people = {}
    for field in ("claimed_by", "outcome_by"):
        ref = state.get(field)
        people[field] = ref.removeprefix("slack:") if ref and ref.startswith("slack:") else None
    return AlertState(**{**state, **people})


_LINK = re.compile(r"<(?:mailto:)?([^<>|]+)(?:\|[^<>]*)?>")


def unwrap_links(text: str) -> str:
    """Slack may send what a rep typed as links (``<mailto:a@b.com|a@b.com>``,
    ``<https://x|x>``): the command wants the address itself."""
    return _LINK.sub(lambda m: m.group(1), text)


def request_key(req: AsyncBoltRequest) -> str:
    """A resent request carries the same body: its hash names it (and the trigger id, when
    there is one, makes two identical clicks two requests). Socket Mode hands Bolt the
    payload as a dict with an empty raw body: hash its canonical JSON, or every envelope after
    the first would pass for a resend."""
    raw = req.raw_body or json.dumps(req.body, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return f"slack:{digest}"


async def tell_failure(body: dict[str, Any], error: Exception) -> None:
    """Tell the rep, privately, instead of leaving them without an answer."""
    failed = failure(error)
    log.log(failed.level, "Slack request failed: %s", error,
            exc_info=error if failed.traceback else None)  # fmt: skip
    url = _response_url(body)
    if url is None:
        return
    try:
        await AsyncWebhookClient(url).send(
            response_type="ephemeral", replace_original=False, text=sorry(escape(failed.notice))
        )
    except Exception as exc:  # the rep is not told; the failure above is in the log
        log.warning("could not tell the rep at their response_url: %s", exc)


@contextlib.asynccontextmanager
async def reported(body: dict[str, Any]) -> AsyncIterator[None]:
    """Work after the ack reports its own failures: an exception escaping a listener
    right after ``ack()`` makes Bolt answer Slack 404 after a 3-second wait."""
    try:
        yield
    except Exception as exc:
        await tell_failure(body, exc)


def _response_url(body: dict[str, Any]) -> str | None:
    url = body.get("response_url")
    if not url and isinstance(body.get("response_urls"), list) and body["response_urls"]:
        url = body["response_urls"][0].get("response_url")
    return str(url) if url else None


def _lead_name(body: dict[str, Any]) -> str:
    """The alert's header, for the form's title; the gate checked only that blocks are
    objects, so anything else falls back to a plain name."""
    for block in body.get("message", {}).get("blocks") or []:
        text = block.get("text")
        if block.get("type") == "header" and isinstance(text, dict) and text.get("text"):
            return str(text["text"])[:60]
    return "this lead"


def _selected_reason(view: dict[str, Any]) -> tuple[str, str | None]:
    """The reason picked in the disqualify form, and the note if one was written."""
    values = view["state"]["values"]
    picked = (values.get(REASON_BLOCK, {}).get(REASON_ACTION) or {}).get("selected_option")
    if not picked:
        raise ValueError("the disqualify form came back without a reason")
    note = (values.get(NOTE_BLOCK, {}).get(NOTE_ACTION) or {}).get("value")
    return str(picked["value"]), (note or None)
