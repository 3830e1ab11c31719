"""The digest rendered: plain text, Block Kit within Slack's limits, and a real PNG."""

from __future__ import annotations

import struct
from dataclasses import replace
from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.digest.chart import render_chart
from bot.digest.content import Digest
from bot.digest.plain import duration, render_text
from bot.slack.blocks import MAX_BLOCKS, SECTION_MAX
from bot.slack.digest_blocks import digest_blocks
from config.loader import LeadbotConfig
from storage.digests import HotEntry, LeadName
from tests.bot.digest.test_digest_content import NOW, digest_of, seed

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def seeded(engine: AsyncEngine, config: LeadbotConfig) -> Digest:
    await seed(engine)
    return await digest_of(engine, config)


async def test_text_says_the_warning_first_and_every_section(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    text = render_text(await seeded(sqlite_engine, config))
    lines = text.splitlines()
    assert lines[:4] == [
        "Weekly digest — all leads",
        "2026-03-02 09:00 → 2026-03-09 09:00 UTC",
        "",
        "⚠ hot leads converted less than warm ones (17 % vs 40 %): the model needs attention",
    ]
    assert (
        "Funnel (each counted in the period): new leads 1 · turned hot 6 · claimed 2 · "
        "labelled qualified 3 · won 2"
    ) in lines
    assert "  hot    17 %  (1 of 6)" in lines
    assert any("Dana Reyes (AcmeSoft) — claimed by U0EAST1 30 min after" in x for x in lines)
    assert "Waiting past the 24 h SLA: 3" in lines
    assert "   -45.0  Cooling Co, now 40.0 warm" in lines
    assert lines[-1].startswith("Model: v2 active since 2026-03-04 09:00 UTC · held-out AUC 0.810")
    assert "proposals waiting: v3" in lines[-1]


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (5, 60, 1800, 7200 + 300, 3 * 86400 + 4 * 3600)] == [
        "<1 min", "1 min", "30 min", "2 h 05 min", "3 d 4 h",
    ]  # fmt: skip


def _all_text(blocks: list[dict[str, object]]) -> str:
    return orjson.dumps(blocks).decode()


async def test_blocks_escape_lead_data_and_mention_reps(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    blocks, fallback = digest_blocks(await seeded(sqlite_engine, config))
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Weekly digest — all leads", "emoji": True},
    }
    body = _all_text(blocks)
    assert "Dan &lt;@here&gt; Brown" in body  # a name cannot ping a channel
    assert "<@here>" not in body
    assert "claimed by <@U0EAST1> 30 min after turning hot" in body
    assert "*⚠ hot leads converted less than warm ones (17 % vs 40 %)" in body
    assert fallback.startswith("Weekly digest — all leads\n")
    assert "Dan &lt;@here&gt; Brown" in fallback


def _crowded(digest: Digest, n: int) -> Digest:
    """``n`` new hot leads with long, hostile names."""
    name = "<!channel> " + "x" * 400
    entry = digest.new_hot[0]
    many = tuple(
        HotEntry(LeadName(f"z{i}", name, None, "&Co"), entry.at, 80.0, None, None) for i in range(n)
    )
    return replace(digest, new_hot=many, waiting=digest.waiting * 200)


async def test_blocks_stay_within_slack_limits(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    digest = _crowded(await seeded(sqlite_engine, config), 500)
    blocks, fallback = digest_blocks(digest)
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        texts = [block.get("text"), *(block.get("fields") or [])]  # type: ignore[misc]
        for text in filter(None, texts):
            assert len(text["text"]) <= SECTION_MAX  # type: ignore[index]
    body = _all_text(blocks)
    assert "<!channel>" not in body
    assert "… and 490 more leads" in body
    assert len(fallback) <= 3000


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_chart_is_a_png_of_a_sensible_size(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    digest = await seeded(sqlite_engine, config)
    data = render_chart(digest)
    assert _png_size(data) == (1000, 380)
    assert 5_000 < len(data) < 500_000
    assert data.endswith(b"IEND\xaeB`\x82")
    # A different picture for different figures: the chart is drawn from the digest.
    empty = replace(digest, hot_counts=tuple((t, 0) for t, _ in digest.hot_counts))
    assert render_chart(empty) != data


async def test_a_day_chart_and_an_empty_digest_draw_too(
    sqlite_engine: AsyncEngine, config: LeadbotConfig
) -> None:
    from bot.digest.content import Period

    digest = await digest_of(sqlite_engine, config, period=Period.last("day", NOW))
    assert digest.bucket == timedelta(hours=1)
    assert _png_size(render_chart(digest)) == (1000, 380)
    text = render_text(digest)
    assert text.splitlines()[0] == "Daily digest — all leads"
    assert "New hot leads: 0" in text
    assert "Alert → claim, median per rep\n  no claims" in text
