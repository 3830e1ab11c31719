"""``leadbot teams package``: the zip Teams accepts for sideloading, through bot.cli.main."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image

from bot.app import build_app
from bot.chat.commands import SUBCOMMANDS
from bot.cli import main
from bot.teams.package import DESCRIPTION_MAX
from bot.teams.package import commands as command_list
from config.loader import LeadbotConfig
from tests.bot.teams.test_teams_app import settings

NAMES = ["score", "feedback", "top", "digest", "customer", "help"]
APP_ID = "1A2B3C4D-0000-4000-8000-00000000ABCD"


def package(tmp_path: Path, *args: str) -> tuple[dict[str, Any], zipfile.ZipFile]:
    out = tmp_path / "leadbot.zip"
    assert main(["teams", "package", "--app-id", APP_ID, *args, "--out", str(out)]) == 0
    archive = zipfile.ZipFile(out)
    return json.loads(archive.read("manifest.json")), archive


def test_the_zip_holds_the_manifest_and_both_icons_at_its_root(tmp_path: Path) -> None:
    _, archive = package(tmp_path, "--domain", "bot.example.com")
    assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    color = Image.open(io.BytesIO(archive.read("color.png")))
    outline = Image.open(io.BytesIO(archive.read("outline.png")))
    assert color.size == (192, 192)
    assert outline.size == (32, 32)
    assert outline.mode == "RGBA"
    pixels = set(outline.convert("RGBA").getchannel("A").tobytes()) | {0}
    assert pixels >= {0, 255}  # transparent background, opaque mark
    rgba = outline.convert("RGBA")
    colors = {rgba.getpixel((x, y)) for x in range(32) for y in range(32)}
    opaque = {c for c in colors if isinstance(c, tuple) and c[3]}
    assert opaque == {(255, 255, 255, 255)}  # white on transparent


def test_the_manifest_is_schema_1_19_with_the_bot_in_every_scope(tmp_path: Path) -> None:
    manifest, _ = package(tmp_path, "--domain", "Bot.Example.com", "--name", "Lead Bot")
    assert manifest["$schema"].endswith("/v1.19/MicrosoftTeams.schema.json")
    assert manifest["manifestVersion"] == "1.19"
    assert manifest["id"] == APP_ID.lower()
    assert manifest["name"]["short"] == "Lead Bot"
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["validDomains"] == ["bot.example.com"]
    assert manifest["developer"]["websiteUrl"] == "https://bot.example.com/"
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID.lower()
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    lists = {tuple(c["scopes"]): c["commands"] for c in bot["commandLists"]}
    assert set(lists) == {("personal",), ("team",), ("groupChat",)}
    for commands in lists.values():
        assert [c["title"] for c in commands] == NAMES
        assert all(0 < len(c["description"]) <= 128 for c in commands)
    score = lists[("team",)][0]["description"]
    assert score.startswith("lead score <email|id|name>")
    assert [s.name for s in SUBCOMMANDS] == NAMES


async def test_without_a_website_the_links_are_pages_the_bot_serves(
    tmp_path: Path, db_url: str, config: LeadbotConfig
) -> None:
    manifest, _ = package(tmp_path, "--domain", "bot.example.com")
    links = [manifest["developer"][k] for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl")]
    assert links == [
        "https://bot.example.com/",
        "https://bot.example.com/privacy",
        "https://bot.example.com/terms",
    ]
    app = build_app(settings=settings(db_url), config=config)
    async with TestClient(TestServer(app)) as client:
        for link in links:
            resp = await client.get(urlsplit(link).path)
            assert (resp.status, resp.content_type) == (200, "text/html")
            page = await resp.text()
            assert "<script" not in page
            assert "http" not in page
        privacy = await (await client.get("/privacy")).text()
        assert "leadbot forget" in privacy
        assert "display name" in privacy


def test_a_website_given_is_the_developer_link(tmp_path: Path) -> None:
    manifest, _ = package(tmp_path, "--website", "https://sales.example.com/leadbot")
    links = {manifest["developer"][k] for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl")}
    assert links == {"https://sales.example.com/leadbot"}
    assert manifest["validDomains"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app-id", "not-a-guid"], "--app-id: expected the bot's Microsoft App ID"),
        (["--app-id", APP_ID, "--domain", "https://bot.example.com"], "--domain: expected"),
        (["--app-id", APP_ID, "--name", "x" * 31], "--name: expected 1 to 30"),
        (["--app-id", APP_ID, "--domain", "a.io", "--version", "1.0"], "--version: expected"),
        (["--app-id", APP_ID], "--website: Teams needs your https website"),
        (["--app-id", APP_ID, "--domain", "*.example.com"], "--website: Teams needs"),
        (["--app-id", APP_ID, "--website", "http://example.com"], "--website: expected an https"),
    ],
)
def test_a_bad_option_is_named_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "leadbot.zip"
    assert main(["teams", "package", *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_out_path_that_is_not_a_zip_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "leadbot.json"
    args = ["--app-id", APP_ID, "--website", "https://sales.example.com"]
    assert main(["teams", "package", *args, "--out", str(out)]) == 2
    assert "--out: expected a file name ending in .zip" in capsys.readouterr().err
    assert not out.exists()


def test_command_descriptions_are_cut_at_a_word_and_offer_no_public() -> None:
    listed = command_list()
    assert all(len(c["description"]) <= DESCRIPTION_MAX for c in listed)
    for entry in listed:
        text = entry["description"]
        if text.endswith("…"):  # cut: the last word before the ellipsis is whole
            whole = {w.strip(",;:()") for c in SUBCOMMANDS for w in f"{c.args} {c.help}".split()}
            assert text[:-1].split()[-1].strip(",;:()") in whole, text
    assert not any("public" in c["description"] for c in listed)  # no private answers
