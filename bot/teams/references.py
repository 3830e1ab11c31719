"""Conversation references: an incoming Teams activity in, a stored reference out, and back.

Teams lets the bot post unprompted only where it has been: the handlers call ``remember``
on every activity that shows a conversation (the bot installed in a team or chat, a user's
first message, any later message), and the transport turns the stored row back into the
SDK's ``ConversationReference`` to address a proactive post.

A message in a channel arrives in its thread (``19:…@thread.tacv2;messageid=…``); the
reference kept is the channel's own (the part before ``;messageid=``), so alerts start new
posts rather than replying under whatever message happened to be seen last.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from microsoft_agents.activity import Activity, ConversationReference

from storage.teams import KINDS, Db, StoredReference, save_reference

THREAD_MARK = ";messageid="


class NotAReference(ValueError):
    """The activity lacks what a proactive post needs (conversation, service URL, bot)."""


def _channel_data(activity: Activity) -> Mapping[str, Any]:
    data = activity.channel_data
    if isinstance(data, Mapping):
        return data
    if hasattr(data, "model_dump"):
        dumped: dict[str, Any] = data.model_dump(by_alias=True, exclude_none=True)
        return dumped
    return {}


def _nested_id(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    found = value.get("id") if isinstance(value, Mapping) else None
    return str(found) if found else None


def stored_reference(activity: Activity) -> StoredReference:
    """The reference to keep for the conversation ``activity`` came from. Raises
    ``NotAReference`` naming the missing field for an activity no post could answer."""
    conversation = activity.conversation
    if conversation is None or not conversation.id:
        raise NotAReference("activity.conversation.id is missing: no conversation to remember")
    if not activity.service_url:
        raise NotAReference(f"activity.serviceUrl is missing for conversation {conversation.id!r}")
    if activity.recipient is None or not activity.recipient.id:
        raise NotAReference(f"activity.recipient.id (the bot) is missing for {conversation.id!r}")
    data = _channel_data(activity)
    kind = conversation.conversation_type or ("channel" if data.get("team") else "personal")
    if kind not in KINDS:
        raise NotAReference(
            f"activity.conversation.conversationType {kind!r} is not one of {', '.join(KINDS)}"
        )
    conversation_id = (
        conversation.id.split(THREAD_MARK, 1)[0] if kind == "channel" else conversation.id
    )
    reference = activity.get_conversation_reference()
    # The triggering message is not part of where to post next: no replyToId later.
    reference.activity_id = None
    reference.conversation = conversation.model_copy(update={"id": conversation_id})
    user = activity.from_property
    return StoredReference(
        conversation_id=conversation_id,
        kind=kind,
        service_url=activity.service_url,
        bot_id=activity.recipient.id,
        reference=reference.model_dump(by_alias=True, exclude_none=True, mode="json"),
        tenant_id=conversation.tenant_id or _nested_id(data, "tenant"),
        team_id=_nested_id(data, "team"),
        channel_id=_nested_id(data, "channel"),
        user_aad_id=(user.aad_object_id if user is not None and kind == "personal" else None),
    )


def conversation_reference(stored: StoredReference) -> ConversationReference:
    """The SDK's reference for a stored row (its service URL as last seen)."""
    reference = ConversationReference.model_validate(stored.reference)
    reference.service_url = stored.service_url
    reference.activity_id = None
    return reference


async def remember(db: Db, activity: Activity, *, at: datetime) -> StoredReference:
    """Store (or refresh) the reference of the conversation ``activity`` came from; the
    caller commits. Returns what was stored."""
    stored = stored_reference(activity)
    await save_reference(db, ref=stored, at=at)
    return stored
