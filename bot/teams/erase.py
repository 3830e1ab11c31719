"""Deleting the bot's own posts in Teams (the Bot Connector's delete activity), for
``leadbot forget``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.privacy import ChatResult
from bot.outbox.dispatcher import DeliveryError
from bot.teams.runtime import TeamsConfigError, prepare_teams
from bot.teams.transport import TeamsTransport
from config.settings import Settings
from storage.privacy import PostedMessage


async def erase_posts(
    settings: Settings, engine: AsyncEngine, posts: Sequence[PostedMessage], result: ChatResult
) -> None:
    """Each post deleted, already gone (404), or failed with the connector's why."""

    try:
        host = prepare_teams(settings)
    except TeamsConfigError as exc:
        result.failed += [f"teams {p.channel} {p.ts}: {exc}" for p in posts]
        return
    transport = TeamsTransport(engine=engine, connections=host.connections, app_id=host.mode.app_id)
    for post in posts:
        try:
            if await transport.delete(post.channel, post.ts):
                result.deleted += 1
            else:
                result.gone += 1
        except DeliveryError as exc:
            result.failed.append(f"teams {post.channel} {post.ts}: {exc}")
