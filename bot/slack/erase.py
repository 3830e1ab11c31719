"""Deleting the bot's own posts in Slack (``chat.delete``), for ``leadbot forget``."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.admin.privacy import ChatResult
from config.settings import Settings
from storage.privacy import PostedMessage


async def erase_posts(
    settings: Settings, engine: AsyncEngine, posts: Sequence[PostedMessage], result: ChatResult
) -> None:
    """Each post deleted, already gone (``message_not_found``), or failed with Slack's why."""

    if settings.slack_bot_token is None:
        result.failed += [f"slack {p.channel} {p.ts}: SLACK_BOT_TOKEN is not set" for p in posts]
        return
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url or AsyncWebClient.BASE_URL,
    )
    for post in posts:
        try:
            await client.chat_delete(channel=post.channel, ts=post.ts)
            result.deleted += 1
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "message_not_found":
                result.gone += 1
            else:
                result.failed.append(f"slack {post.channel} {post.ts}: {error or exc}")
        except Exception as exc:  # unreachable, timeouts: reported, the forget goes on
            result.failed.append(f"slack {post.channel} {post.ts}: {exc!r}")
