"""Approve / Reject on a proposed model version, for the managers named in the config.

A manager is a Slack user id listed under ``managers``, or a member of a user group listed
there (read with ``usergroups.users.list``, remembered for a few minutes). Anyone else gets
a polite ephemeral refusal and nothing changes. The decision itself is
``bot.models.learning.decide``; the message is updated in place: the buttons give way to who
decided what, for everyone who sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat.actions import decision_not_refreshed
from bot.models.learning import Learner, describe
from bot.slack.blocks import fallback, mrkdwn, person
from bot.slack.proposal_blocks import APPROVE_ACTION, DECISION_BLOCK, REJECT_ACTION

log = logging.getLogger(__name__)

GROUP_TTL = 300.0
REFUSAL = (
    "Only managers can approve or reject a model version (Slack users or user groups listed "
    "under `managers:` in leadbot's config). Nothing was changed."
)


class Managers:
    """Is this Slack user a manager? Group memberships are cached for ``ttl`` seconds."""

    def __init__(
        self,
        ids: Sequence[str],
        *,
        ttl: float = GROUP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = {m for m in ids if m[0] in "UW"}
        self.groups = [m for m in ids if m[0] == "S"]
        self.ttl, self.clock = ttl, clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def includes(self, user: str, client: AsyncWebClient) -> bool:
        if user in self.users:
            return True
        return bool(await self.groups_of(user, self.groups, client))

    async def groups_of(
        self, user: str, groups: Collection[str], client: AsyncWebClient
    ) -> list[str]:
        """Which of these user groups ``user`` is a member of."""
        return [g for g in groups if user in await self._group(g, client)]

    async def _group(self, group: str, client: AsyncWebClient) -> frozenset[str]:
        cached = self._members.get(group)
        if cached is not None and self.clock() - cached[0] < self.ttl:
            return cached[1]
        response = await client.usergroups_users_list(usergroup=group)
        members = frozenset(response.get("users") or ())
        self._members[group] = (self.clock(), members)
        return members


def register_approvals(
    app: AsyncApp,
    *,
    learner: Learner,
    managers: Managers | None = None,
) -> None:
    """Add the Approve and Reject handlers to the Bolt app; ``learner`` decides."""
    managers = managers or Managers(learner.config.managers)

    @app.action(APPROVE_ACTION)
    async def approve(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        await _decide(body, True, client, respond)

    @app.action(REJECT_ACTION)
    async def reject(ack: Any, body: dict[str, Any], client: AsyncWebClient, respond: Any) -> None:
        await ack()
        await _decide(body, False, client, respond)

    async def _decide(
        body: dict[str, Any], approved: bool, client: AsyncWebClient, respond: Any
    ) -> None:
        user = body["user"]["id"]
        if not await managers.includes(user, client):
            log.info("model decision refused: %s is not a manager", user)
            await respond(response_type="ephemeral", replace_original=False, text=REFUSAL)
            return
        version = int(body["actions"][0]["value"])
        decision = await learner.decide(version, approve=approved, by=f"slack:{user}")
        text = describe(decision, person)
        try:
            blocks = decided_blocks(body["message"].get("blocks") or [], text)
            await client.chat_update(
                channel=body["channel"]["id"], ts=body["message"]["ts"], blocks=blocks,
                text=fallback(f"Model v{version}: {text}"),
            )  # fmt: skip
        except Exception as exc:  # decided and stored: say so, not "nothing was changed"
            log.warning("model v%d decided, but its message was not refreshed: %r", version, exc)
            notice = decision_not_refreshed(text)
            await respond(response_type="ephemeral", replace_original=False, text=notice)


def decided_blocks(blocks: Sequence[dict[str, Any]], decision: str) -> list[dict[str, Any]]:
    """The proposal as posted, its buttons replaced by the decision (mrkdwn, escaped)."""
    kept = [b for b in blocks if b.get("type") != "actions" and b.get("block_id") != DECISION_BLOCK]
    note = {"type": "context", "block_id": DECISION_BLOCK, "elements": [mrkdwn(decision).to_dict()]}
    return [*kept, note]
