"""Teams conversation references: upsert, look-ups by destination, the start-up report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.teams import (
    BadDestination,
    StoredReference,
    default_channel,
    find_conversation,
    find_personal,
    missing_destinations,
    resolve_destination,
    save_reference,
)

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SERVICE = "https://smba.example.test/emea/"


def ref(conversation_id: str, kind: str = "channel", **extra: str) -> StoredReference:
    return StoredReference(
        conversation_id=conversation_id,
        kind=kind,
        service_url=extra.pop("service_url", SERVICE),
        bot_id="28:bot",
        reference={"conversation": {"id": conversation_id}, "serviceUrl": SERVICE},
        tenant_id="tenant-1",
        **extra,
    )


def cid(stored: StoredReference | None) -> str | None:
    return None if stored is None else stored.conversation_id


async def save(engine: AsyncEngine, stored: StoredReference, at: datetime = T0) -> None:
    async with engine.begin() as conn:
        await save_reference(conn, ref=stored, at=at)


async def test_save_then_find_round_trips_every_field(engine: AsyncEngine) -> None:
    stored = ref("19:general@thread.tacv2", team_id="19:general@thread.tacv2", channel_id="19:g")
    await save(engine, stored)
    async with engine.connect() as conn:
        assert await find_conversation(conn, conversation_id=stored.conversation_id) == stored
        assert await find_conversation(conn, conversation_id="19:other") is None


async def test_saving_again_refreshes_but_keeps_the_install_time(engine: AsyncEngine) -> None:
    await save(engine, ref("19:a", kind="channel"), at=T0)
    await save(engine, ref("19:b", kind="channel"), at=T0 + timedelta(minutes=1))
    moved = ref("19:a", kind="channel", service_url="https://smba.example.test/amer/")
    await save(engine, moved, at=T0 + timedelta(hours=1))
    async with engine.connect() as conn:
        assert (await find_conversation(conn, conversation_id="19:a")) == moved
        # Still the first installed: a refresh does not move it behind 19:b.
        first = await default_channel(conn, configured=None)
    assert cid(first) == "19:a"


async def test_a_session_works_as_well_as_a_connection(session: AsyncSession) -> None:
    await save_reference(session, ref=ref("a:1", kind="personal", user_aad_id="aad-1"), at=T0)
    await session.commit()
    found = await find_personal(session, user_aad_id="aad-1")
    assert cid(found) == "a:1"


async def test_find_personal_takes_only_the_users_1to1_chat(engine: AsyncEngine) -> None:
    await save(engine, ref("19:group", kind="groupChat", user_aad_id="aad-1"))
    await save(engine, ref("a:old", kind="personal", user_aad_id="aad-1"), at=T0)
    await save(engine, ref("a:new", kind="personal", user_aad_id="aad-1"), at=T0 + timedelta(1))
    await save(engine, ref("a:other", kind="personal", user_aad_id="aad-2"))
    async with engine.connect() as conn:
        found = await find_personal(conn, user_aad_id="aad-1")
        assert cid(found) == "a:new"
        assert await find_personal(conn, user_aad_id="aad-3") is None


async def test_default_is_the_configured_one_else_the_first_channel(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await default_channel(conn, configured=None) is None
    await save(engine, ref("a:dm", kind="personal", user_aad_id="aad-1"), at=T0)
    await save(engine, ref("19:chat", kind="groupChat"), at=T0 + timedelta(minutes=1))
    await save(engine, ref("19:second", kind="channel"), at=T0 + timedelta(minutes=3))
    await save(engine, ref("19:first", kind="channel"), at=T0 + timedelta(minutes=2))
    async with engine.connect() as conn:
        first = await default_channel(conn, configured=None)
        configured = await default_channel(conn, configured="19:second")
        # A configured channel without a reference is missing, not replaced by another.
        unknown = await default_channel(conn, configured="19:never-installed")
    assert cid(first) == "19:first"
    assert cid(configured) == "19:second"
    assert unknown is None


async def test_destinations_resolve_and_missing_ones_are_listed(engine: AsyncEngine) -> None:
    await save(engine, ref("19:sales", kind="channel"))
    await save(engine, ref("a:dm1", kind="personal", user_aad_id="aad-1"))
    async with engine.connect() as conn:
        by_user = await resolve_destination(conn, "teams:user:aad-1")
        by_default = await resolve_destination(conn, "teams:default")
        missing = await missing_destinations(
            conn,
            [
                "teams:conversation:19:sales", "teams:user:aad-1", "teams:default",
                "teams:user:aad-2", "slack:C1", "teams:conversation:19:gone",
                "teams:user:aad-2", "teams:bogus",
            ],
            default="19:gone",
        )  # fmt: skip
        with pytest.raises(BadDestination, match="'teams:user:'"):
            await resolve_destination(conn, "teams:user:")
    assert cid(by_user) == "a:dm1"
    assert cid(by_default) == "19:sales"
    assert missing == [
        "teams:default", "teams:user:aad-2", "teams:conversation:19:gone", "teams:bogus"
    ]  # fmt: skip


def test_a_reference_names_its_bad_kind() -> None:
    with pytest.raises(ValueError, match="kind 'chat' is not one of personal, channel, groupChat"):
        ref("x", kind="chat")
