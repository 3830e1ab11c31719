"""Teams conversation references: where the bot may post without being spoken to.

Teams lets a bot post proactively only into a conversation it has seen: a team channel it
was installed in, a group chat it was added to, or a user's 1:1 chat once the user wrote to
it or installed it personally. Each time the bot sees one, the handlers save its reference
here (one row per conversation id, refreshed in place); the outbox's Teams transport turns
a destination back into a reference with ``resolve_destination``.

Destinations (the outbox's): ``teams:conversation:<conversation id>``,
``teams:user:<AAD object id>`` (that user's 1:1 chat) and ``teams:default`` (the configured
default channel, else the first team channel the bot was installed in).

Every function takes an ``AsyncConnection`` or a SQLModel ``AsyncSession``, so a handler
can save a reference inside the transaction that records the rest of the turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.tables import TeamsConversation

CONVERSATIONS = TeamsConversation.__table__  # type: ignore[attr-defined]
PREFIX = "teams:"
Kind = Literal["personal", "channel", "groupChat"]
KINDS: tuple[str, ...] = get_args(Kind)
Db = AsyncConnection | AsyncSession


@dataclass(frozen=True, slots=True)
class StoredReference:
    """One row of ``teams_conversations``; ``reference`` is the SDK's ConversationReference
    as ``model_dump(by_alias=True, exclude_none=True)`` gives it."""

    conversation_id: str
    kind: str
    service_url: str
    bot_id: str
    reference: dict[str, Any] = field(default_factory=dict)
    tenant_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    user_aad_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"teams conversation {self.conversation_id!r}: kind {self.kind!r} is not one "
                f"of {', '.join(KINDS)}"
            )
        for name in ("conversation_id", "service_url", "bot_id"):
            if not getattr(self, name):
                raise ValueError(f"teams conversation reference: {name} is empty")


async def _execute(db: Db, stmt: Executable) -> Result[Any]:
    if isinstance(db, AsyncSession):
        # SQLModel's session marks ``execute`` deprecated; ``exec`` runs Core statements too.
        return await db.exec(stmt)  # type: ignore[call-overload, no-any-return]
    return await db.execute(stmt)


def _dialect(db: Db) -> Any:
    bind = db.bind if isinstance(db, AsyncSession) else db.engine
    assert bind is not None
    return postgresql if bind.dialect.name == "postgresql" else sqlite


async def save_reference(db: Db, *, ref: StoredReference, at: datetime) -> None:
    """Insert or refresh the reference of ``ref.conversation_id``. ``installed_at`` keeps
    the first sighting (the default channel is the first installed); the rest is replaced,
    since a conversation's service URL can move."""
    values = {
        "conversation_id": ref.conversation_id, "kind": ref.kind, "service_url": ref.service_url,
        "tenant_id": ref.tenant_id, "team_id": ref.team_id, "channel_id": ref.channel_id,
        "user_aad_id": ref.user_aad_id, "bot_id": ref.bot_id, "reference": ref.reference,
    }  # fmt: skip
    stmt = _dialect(db).insert(CONVERSATIONS).values(**values, installed_at=at, updated_at=at)
    changed = {k: v for k, v in values.items() if k != "conversation_id"}
    await _execute(
        db,
        stmt.on_conflict_do_update(
            index_elements=["conversation_id"], set_={**changed, "updated_at": at}
        ),
    )


def _row(row: Any) -> StoredReference:
    return StoredReference(
        conversation_id=row.conversation_id, kind=row.kind, service_url=row.service_url,
        bot_id=row.bot_id, reference=dict(row.reference or {}), tenant_id=row.tenant_id,
        team_id=row.team_id, channel_id=row.channel_id, user_aad_id=row.user_aad_id,
    )  # fmt: skip


async def _first(db: Db, query: Select[Any]) -> StoredReference | None:
    row = (await _execute(db, query.limit(1))).first()
    return None if row is None else _row(row)


async def find_conversation(db: Db, *, conversation_id: str) -> StoredReference | None:
    """The reference stored for this conversation id, if any."""
    query = select(CONVERSATIONS).where(CONVERSATIONS.c.conversation_id == conversation_id)
    return await _first(db, query)


async def find_personal(db: Db, *, user_aad_id: str) -> StoredReference | None:
    """The user's 1:1 chat with the bot (the most recently seen, should there be two)."""
    query = (
        select(CONVERSATIONS)
        .where(CONVERSATIONS.c.kind == "personal", CONVERSATIONS.c.user_aad_id == user_aad_id)
        .order_by(CONVERSATIONS.c.updated_at.desc())
    )
    return await _first(db, query)


async def default_channel(db: Db, *, configured: str | None) -> StoredReference | None:
    """The configured default conversation when given (None if its reference is missing:
    never silently another channel), else the first team channel the bot was installed in."""
    if configured:
        return await find_conversation(db, conversation_id=configured)
    query = (
        select(CONVERSATIONS)
        .where(CONVERSATIONS.c.kind == "channel")
        .order_by(CONVERSATIONS.c.installed_at, CONVERSATIONS.c.conversation_id)
    )
    return await _first(db, query)


class BadDestination(ValueError):
    """A ``teams:…`` destination that is not one of the three agreed forms."""


async def resolve_destination(
    db: Db, destination: str, *, default: str | None = None
) -> StoredReference | None:
    """The stored reference an outbox destination names; None when none is stored yet.
    ``default`` is the configured default conversation id for ``teams:default``."""
    kind, _, key = destination.removeprefix(PREFIX).partition(":")
    if destination.startswith(PREFIX):
        if kind == "default" and not key:
            return await default_channel(db, configured=default)
        if kind == "conversation" and key:
            return await find_conversation(db, conversation_id=key)
        if kind == "user" and key:
            return await find_personal(db, user_aad_id=key)
    raise BadDestination(
        f"destination {destination!r} is not 'teams:conversation:<conversation id>', "
        "'teams:user:<AAD object id>' or 'teams:default'"
    )


async def missing_destinations(
    db: Db, destinations: Iterable[str], *, default: str | None = None
) -> list[str]:
    """The Teams destinations among ``destinations`` (others are ignored) that have no
    stored reference yet, or are malformed, in the given order, each once: what start-up
    reports so an admin knows where to install the app."""
    missing: list[str] = []
    for destination in dict.fromkeys(destinations):
        if not destination.startswith(PREFIX):
            continue
        try:
            found = await resolve_destination(db, destination, default=default)
        except BadDestination:
            found = None
        if found is None:
            missing.append(destination)
    return missing
