"""The Teams adapter: an Agents SDK ``AgentApplication`` over the chat-agnostic core.

It only translates, as ``bot/slack/app.py`` does for Slack:

- a message (``@leadbot lead score dana@acmesoft.com`` in a channel, ``score dana@…`` in a
  1:1 chat) → ``bot.chat.commands.run_command`` → ``reply_card`` as the answer;
- a card click, ``Action.Execute`` (an ``adaptiveCard/action`` invoke) or its
  ``Action.Submit`` fallback (a message whose ``value`` has ``leadbot``) →
  ``bot.chat.actions.apply_action`` or the Learner's ``decide`` → the refreshed card, as the
  invoke's answer and as an update of the posted message, so everyone sees who did what;
- every activity (installation, a member added, a message, a click) → its conversation
  reference stored, so the outbox may post there later (``bot.teams.references``).
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from microsoft_agents.activity import (
    Activity,
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    Attachment,
    ContentTypes,
)
from microsoft_agents.hosting.core import (
    AgentApplication,
    Connections,
    MemoryStorage,
    RouteRank,
    TurnContext,
    TurnState,
)
from microsoft_agents.hosting.core.app.adaptive_card import factory
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.commands import SUBCOMMANDS, run_command
from bot.chat.failures import failure, sorry
from bot.chat.messages import Actor
from bot.models.edges import BandEdges
from bot.models.learning import Learner
from bot.models.live import ActiveModel
from bot.teams.card_parts import plain
from bot.teams.cards import reply_card, summary_text
from bot.teams.clicks import LEAD_ACTION, MODEL, Clicked, Clicks
from bot.teams.customer_card import CUSTOMER_ACTION
from bot.teams.references import THREAD_MARK, NotAReference, remember
from bot.teams.transport import CARD_TYPE, TeamsTransport
from config.loader import LeadbotConfig
from storage.health import is_outage
from storage.people import remember_name

log = logging.getLogger(__name__)

COMMAND = "lead"
VERBS = re.compile(
    r"^(lead_(claim|qualify|disqualify|snooze)|model_(approve|reject)"
    r"|customer_(reached_out|snooze|not_a_concern))$"
)
SUBMITS = re.compile(rf"^({LEAD_ACTION}|{MODEL}|{CUSTOMER_ACTION})$")
_MENTION = re.compile(r"<at[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_NAMES = {sub.name for sub in SUBCOMMANDS}


def command_text(text: str | None) -> str:
    """What follows ``lead`` in a message, the bot's mention and markup removed; ``help``
    for anything outside the grammar (``hi``, an empty mention)."""
    plain = html.unescape(_TAG.sub(" ", _MENTION.sub(" ", text or "")))
    words = plain.split()
    if words and words[0].lower().lstrip("/") == COMMAND:
        words = words[1:]
    if not words or words[0].lower() not in _NAMES:
        return "help"
    return " ".join(words)


def actor_of(activity: Activity) -> Actor:
    """The Teams user who acted: their AAD object id (lower case, as the config writes it),
    else the channel account id (the Agents Playground sends no AAD id)."""
    user = activity.from_property
    if user is None:
        return Actor("teams", "unknown", "")
    key = (user.aad_object_id or user.id or "unknown").lower()
    return Actor("teams", key, user.name or "")


def conversation_of(activity: Activity) -> str:
    """The conversation a post lives in: a channel thread's channel."""
    conversation = activity.conversation.id if activity.conversation else ""
    return conversation.split(THREAD_MARK, 1)[0]


def card_activity(card: Mapping[str, Any]) -> Activity:
    activity = Activity(
        type=ActivityTypes.message,
        attachments=[Attachment(content_type=CARD_TYPE, content=dict(card))],
    )
    summary = summary_text(card)
    if summary:
        activity.summary = summary
    return activity


def build_agent(
    *,
    connections: Connections,
    config: LeadbotConfig,
    engine: AsyncEngine,
    clock: Callable[[], float],
    transport: TeamsTransport,
    edges: BandEdges | None = None,
    active: ActiveModel | None = None,
    learner: Learner | None = None,
) -> AgentApplication[TurnState]:
    """The agent; ``bot.teams.runtime`` serves it at ``/api/messages``. ``edges``,
    ``active`` and ``learner`` as for ``bot.slack.app.build_slack_app``; ``transport``
    updates a clicked card for everyone."""
    edges = edges or BandEdges(config.model.bands)
    active = active or ActiveModel(config.model)
    learner = learner or Learner(engine=engine, config=config, destinations=(), clock=clock)
    clicks = Clicks(
        config=config, engine=engine, clock=clock, edges=edges, active=active, learner=learner
    )
    # No typing indicator: it would be one more call to the connector per message. The SDK
    # removes the bot's own mention; ``command_text`` removes any left over.
    app = AgentApplication[TurnState](
        storage=MemoryStorage(), connection_manager=connections,
        start_typing_timer=False, remove_recipient_mention=True,
    )  # fmt: skip

    @app.before_turn
    async def remember_conversation(context: TurnContext, _state: TurnState) -> bool:
        try:
            await _remember(engine, context.activity, clock)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The database is down: the turn goes on, to tell the sender so in its own
            # answer (a click's invoke answer, a message's reply). The reference is stored
            # again by the next activity.
            log.warning("Teams: where this activity came from is not stored: %s", exc)
        return True

    @app.activity([ActivityTypes.conversation_update, ActivityTypes.installation_update])
    async def installed(context: TurnContext, _state: TurnState) -> None:
        activity = context.activity
        log.info("Teams %s (%s) in conversation %s", activity.type,
                 activity.action or "members", conversation_of(activity))  # fmt: skip

    @app.adaptive_card.action_submit(SUBMITS, submit_filter="leadbot")
    async def card_submit(context: TurnContext, _state: TurnState, data: Any) -> None:
        """A click from a client without ``Action.Execute``: act, then update the card
        and tell the clicker what concerns them in the conversation."""
        activity = context.activity
        where, card_id = conversation_of(activity), activity.reply_to_id
        clicked = await clicks.click(dict(data), actor_of(activity), where, card_id)
        notice = clicked.notice
        if clicked.card is not None and not (
            card_id and await _update(transport, where, card_id, clicked.card)
        ):
            notice = clicked.unrefreshed or notice  # stored, but nobody sees it yet
        if notice:
            await context.send_activity(notice)

    @app.activity(ActivityTypes.message, rank=RouteRank.LAST)  # after the Submit route
    async def message(context: TurnContext, _state: TurnState) -> None:
        text = command_text(context.activity.text)
        reply = await run_command(
            text, actor=actor_of(context.activity), engine=engine,
            model=await active.current(engine), now=clock(), command=COMMAND,
            routing=config.routing, thresholds=edges.current, config=config,
        )  # fmt: skip
        learner.wake()  # a `lead feedback` may be the label that makes a refit due
        await context.send_activity(card_activity(reply_card(reply)))

    @app.adaptive_card.action_execute(VERBS)
    async def card_execute(
        context: TurnContext, _state: TurnState, data: Any
    ) -> AdaptiveCardInvokeResponse:
        activity = context.activity
        values = {**dict(data or {}), "verb": _verb(activity)}
        where, card_id = conversation_of(activity), activity.reply_to_id
        try:
            clicked = await clicks.click(values, actor_of(activity), where, card_id)
        except ValueError as exc:  # a bad click: the clicker sees why, nothing changed
            log.info("Teams card action refused: %s", exc)
            return factory.bad_request(f"{exc}. Nothing was changed.")
        except Exception as exc:
            turn = failure(exc)
            if turn.traceback:
                raise  # a bug: the turn's error handler logs it
            # The database is down: the clicker is told to try again, as Teams shows it.
            log.log(turn.level, "Teams card action failed: %s", exc)
            return factory.message(sorry(plain(turn.notice)))
        return await _answer(transport, clicked, where, card_id)

    @app.error
    async def failed(context: TurnContext, error: Exception) -> None:
        turn = failure(error)
        log.log(turn.level, "Teams turn failed: %s", error,
                exc_info=error if turn.traceback else None)  # fmt: skip
        if context.activity.type == ActivityTypes.message:
            await context.send_activity(sorry(plain(turn.notice)))  # lead data made inert

    return app


async def _answer(
    transport: TeamsTransport, clicked: Clicked, where: str, card_id: str | None
) -> AdaptiveCardInvokeResponse:
    """The invoke's answer: the refreshed card (Teams shows it in place of the clicked
    one), else the notice as a message to the clicker only."""
    if clicked.card is None:
        return factory.message(clicked.notice or "Done.")
    refreshed = not card_id or await _update(transport, where, card_id, clicked.card)
    if not refreshed and clicked.unrefreshed:  # stored: the clicker learns others don't see it
        return factory.message(clicked.unrefreshed)
    return AdaptiveCardInvokeResponse(
        status_code=200, type=ContentTypes.adaptive_card, value=dict(clicked.card)
    )


async def _update(
    transport: TeamsTransport, where: str, card_id: str, card: Mapping[str, Any]
) -> bool:
    """Replace the posted card for everyone; False when that failed: the old card stays,
    and the click is not undone (it is stored)."""
    try:
        await transport.update(where, card_id, card)
    except Exception as exc:
        log.warning("could not update Teams card %s in %s: %s", card_id, where, exc)
        return False
    return True


def _verb(activity: Activity) -> str | None:
    value: Mapping[str, Any] = activity.value if isinstance(activity.value, Mapping) else {}
    action = value.get("action")
    verb = action.get("verb") if isinstance(action, Mapping) else None
    return str(verb) if verb else None


async def _remember(engine: AsyncEngine, activity: Activity, clock: Callable[[], float]) -> None:
    """Store where this activity came from, unless it says the bot was removed, and the
    sender's display name (digests name reps by it: the activity is where Teams gives it)."""
    at = datetime.fromtimestamp(clock(), UTC)
    if activity.from_property is not None:
        actor = actor_of(activity)
        async with engine.begin() as conn:
            await remember_name(conn, ref=actor.ref, name=actor.name, at=at)
    if activity.action == "remove" or _bot_removed(activity):
        log.info("Teams: the bot was removed from %s", conversation_of(activity))
        return
    try:
        async with engine.begin() as conn:
            await remember(conn, activity, at=at)
    except NotAReference as exc:
        log.debug("Teams activity not remembered: %s", exc)


def _bot_removed(activity: Activity) -> bool:
    bot = activity.recipient.id if activity.recipient else None
    return any(m.id == bot for m in activity.members_removed or [])
