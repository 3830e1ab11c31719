"""What a click on a Teams card does: the alert's actions and a proposal's decision.

Shared by ``Action.Execute`` (an invoke) and its ``Action.Submit`` fallback (a message):
both carry the card's data (``bot.teams.alert_card.action_data`` plus the inline form's
``reason`` and ``note``; ``bot.teams.proposal_card.buttons``), and both get a ``Clicked``:
the card to show everyone now, or a notice for the clicker alone when nothing changed.
Feedback is stored by ``bot.chat.actions.apply_action`` with the lead's feature snapshot, as
the Slack buttons do; decisions are the Learner's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import (
    ActionResult,
    apply_action,
    decision_not_refreshed,
    not_refreshed,
)
from bot.chat.messages import Action, Actor
from bot.models.edges import BandEdges
from bot.models.learning import Learner, describe
from bot.models.live import ActiveModel
from bot.outbox.messages import AlertMessage, ProposalMessage
from bot.teams.alert_card import LEAD_ACTION
from bot.teams.card_parts import Card, person
from bot.teams.cards import alert_card, proposal_card, text_card
from bot.teams.customer_card import CUSTOMER_ACTION, VERB_PREFIX
from bot.teams.customer_clicks import customer_clicked
from bot.teams.proposal_card import APPROVE, MODEL, REJECT
from config.loader import LeadbotConfig
from storage.engine import session_factory
from storage.posts import find_post
from storage.proposals import sent_proposal

__all__ = ["LEAD_ACTION", "MODEL", "REFUSAL", "Clicked", "Clicks", "lead_click"]

log = logging.getLogger(__name__)

REFUSAL = (
    "Only managers can approve or reject a model version (Teams users listed as "
    "teams:<AAD object id> under managers: in leadbot's config). Nothing was changed."
)


@dataclass(frozen=True, slots=True)
class Clicked:
    """``card``: the card as everyone should see it now (None: leave it as it is);
    ``notice``: what only the clicker needs to know; ``unrefreshed``: what to tell the
    clicker instead when ``card`` cannot be shown (the click is stored)."""

    card: Card | None
    notice: str | None = None
    unrefreshed: str | None = None


@dataclass(frozen=True, slots=True)
class LeadClick:
    action: Action
    lead_id: str
    reason: str | None
    note: str | None


def lead_click(data: Mapping[str, Any]) -> LeadClick:
    """The alert action in a card's data (the verb wins over ``action``). Raises
    ValueError naming the field that is missing or wrong."""
    verb = str(data.get("verb") or "")
    word = verb.removeprefix("lead_") if verb.startswith("lead_") else data.get("action")
    try:
        action = Action(str(word))
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise ValueError(f"card data action: expected one of {allowed}, got {word!r}") from None
    lead_id = data.get("lead_id")
    if not isinstance(lead_id, str) or not lead_id:
        raise ValueError(f"card data lead_id: expected a lead id, got {lead_id!r}")
    reason, note = data.get("reason"), data.get("note")
    return LeadClick(action, lead_id, str(reason) if reason else None, str(note) if note else None)


def _approve(data: Mapping[str, Any]) -> bool:
    verb = data.get("verb")
    if verb in (APPROVE, REJECT):
        return verb == APPROVE
    word = data.get("action")
    if word not in ("approve", "reject"):
        raise ValueError(f"card data action: expected approve or reject, got {word!r}")
    return word == "approve"


class Clicks:
    """Applies clicks; one per Teams agent."""

    def __init__(
        self,
        *,
        config: LeadbotConfig,
        engine: AsyncEngine,
        clock: Callable[[], float],
        edges: BandEdges,
        active: ActiveModel,
        learner: Learner,
    ) -> None:
        self.config, self.engine, self.clock = config, engine, clock
        self.edges, self.active, self.learner = edges, active, learner

    async def click(
        self, data: Mapping[str, Any], actor: Actor, conversation: str, card_id: str | None
    ) -> Clicked:
        """``conversation``/``card_id``: where the clicked card was posted, to find the
        alert it was rendered from."""
        verb = str(data.get("verb") or "")
        if verb.startswith("model_") or data.get("leadbot") == MODEL:
            return await self.decide(data, actor)
        if verb.startswith(VERB_PREFIX) or data.get("leadbot") == CUSTOMER_ACTION:
            return Clicked(*await customer_clicked(
                self.engine, self.config.rfm, data=data, actor=actor, now=self.clock(),
                conversation=conversation, card_id=card_id,
            ))  # fmt: skip
        return await self.act(lead_click(data), actor, conversation, card_id)

    async def act(
        self, click: LeadClick, actor: Actor, conversation: str, card_id: str | None
    ) -> Clicked:
        result = await apply_action(
            engine=self.engine, model=await self.active.current(self.engine),
            action=click.action, lead_id=click.lead_id, actor=actor, now=self.clock(),
            reason=click.reason, note=click.note, thresholds=self.edges.current,
        )  # fmt: skip
        self.learner.wake()
        try:
            return await self._shown(click, result, actor, conversation, card_id)
        except Exception as exc:  # stored: say so, never "nothing was changed"
            log.warning("%s of %s stored, but its card could not be refreshed: %r",
                        click.action.value, click.lead_id, exc)  # fmt: skip
            return Clicked(None, not_refreshed(click.action))

    async def _shown(
        self,
        click: LeadClick,
        result: ActionResult,
        actor: Actor,
        conversation: str,
        card_id: str | None,
    ) -> Clicked:
        """The alert's card redrawn after a stored click (the notice alone if nothing
        changed; what was stored when the alert is not known)."""
        if not result.changed:
            return Clicked(None, result.notice)
        posted = None
        if card_id:
            async with session_factory(self.engine)() as session:
                posted = await find_post(
                    session, platform="teams", channel=conversation, ts=card_id
                )
        if posted is None:
            log.warning("no Teams alert recorded at %s/%s: its card is not updated",
                        conversation, card_id)  # fmt: skip
            return Clicked(None, not_refreshed(click.action))
        state = {**result.state, "names": {actor.ref: actor.name}}
        alert = AlertMessage.from_payload(posted.payload)
        card = alert_card(alert, state=state, crm_url=self.config.slack.crm_url)
        return Clicked(card, result.notice, not_refreshed(click.action))

    async def decide(self, data: Mapping[str, Any], actor: Actor) -> Clicked:
        approve = _approve(data)
        try:
            version = int(data.get("version"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(
                f"card data version: expected a model version number, got {data.get('version')!r}"
            ) from None
        if actor.ref not in self.config.managers:
            log.info("model decision refused: %s is not a manager", actor.ref)
            return Clicked(None, REFUSAL)
        try:
            decision = await self.learner.decide(version, approve=approve, by=actor.ref)
        except LookupError as exc:
            raise ValueError(str(exc)) from exc
        text = describe(decision, lambda ref: person(ref, {actor.ref: actor.name}))
        payload = await proposal_payload(self.engine, version)
        stored = decision_not_refreshed(text)  # the decision holds even if the card cannot
        if payload is None:
            return Clicked(text_card(text), unrefreshed=stored)
        card = proposal_card(ProposalMessage.from_payload(payload), decision=text)
        return Clicked(card, unrefreshed=stored)


async def proposal_payload(engine: AsyncEngine, version: int) -> dict[str, Any] | None:
    """The payload the proposal card of ``version`` was rendered from (the outbox keeps
    it, one row per destination, all alike)."""
    sent = await sent_proposal(engine, version=version)
    return None if sent is None else sent.payload
