"""``leadbot forget`` / ``leadbot export`` end to end: two people ingested through the signed
webhook (one an anonymous visitor who identifies by e-mail only, so her lead id is her
e-mail), alerts posted to the fake Slack, feedback stored; then one of them is forgotten
while the bot runs. Real databases, Slack faked at the wire."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.admin.privacy import export_command, forget_command
from bot.app import build_app
from bot.chat.actions import judge
from bot.chat.messages import Actor, Outcome
from bot.cli import chat_erasers, main
from bot.ingest.signatures import sign
from bot.log_privacy import quiet_chat_logs
from bot.web.keys import ENGINE
from config.loader import LeadbotConfig
from storage.engine import session_factory
from storage.privacy import PSEUDONYM_PREFIX, export_person, find_person
from storage.tables import AlertPost, Feedback, Lead
from tests.bot.conftest import IDEAL, call, identify, page, track
from tests.bot.slack_helpers import WEBHOOK_SECRET, Client, count, eventually, slack_settings
from tests.fakes.slack_api import FakeSlack

DANA = "dana@acmesoft.com"
VISITOR = "v-dana-7f3a"
SAM = "sam@example.org"
SAM_TRAITS = {"email": SAM, "name": "Sam Okafor", "title": "Head of Sales",
              "company": {"name": "Okafor SaaS", "industry": "saas"}}  # fmt: skip
NOTE = f"no budget: call {DANA} back in Q3"

ERASERS = chat_erasers()  # Slack's chat.delete and Teams' delete, as the CLI wires them


async def send(client: Client, calls: list[dict[str, Any]], msg: str) -> None:
    body = orjson.dumps({"batch": calls})
    headers = sign(WEBHOOK_SECRET, body, msg_id=msg, timestamp=int(time.time()))
    assert (await client.post("/webhooks/events", data=body, headers=headers)).status == 202


async def ingest_two_people(client: Client, slack: FakeSlack) -> None:
    """Dana: an anonymous visit, then an identify by e-mail only (her lead id is her
    e-mail; the visitor folds in), then a demo request by the visitor id: hot. Sam: by
    userId, hot. Both alerts posted in Slack."""
    now = time.time()
    await send(client, [page(None, "/pricing", now - 60, anonymousId=VISITOR)], "m1")
    identified = call("identify", now - 30, anonymousId=VISITOR, traits=dict(IDEAL))
    await send(client, [identified], "m2")
    await send(client, [track(None, "Demo Requested", now, anonymousId=VISITOR)], "m3")
    await send(client, [identify("u2", now, **SAM_TRAITS), track("u2", "Demo Requested", now)],
               "m4")  # fmt: skip
    await eventually(lambda: len(slack.calls_to("chat.postMessage", ok_only=True)) == 2)
    await eventually_count(client, AlertPost, 2)


async def eventually_count(client: Client, model: Any, n: int) -> None:
    for _ in range(150):
        if await count(client, model) == n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{model.__tablename__}: not {n} rows in time")


async def add_feedback(engine: AsyncEngine, config: LeadbotConfig) -> None:
    async with session_factory(engine)() as session:
        for lead_id, outcome, reason in ((DANA, Outcome.DISQUALIFIED, NOTE),
                                         ("u2", Outcome.QUALIFIED, None)):  # fmt: skip
            lead = await session.get(Lead, lead_id)
            assert lead is not None
            rep = Actor("slack", "U0REP1")
            await judge(session, lead=lead, outcome=outcome, reason=reason, actor=rep,
                        model=config.model, now=time.time())  # fmt: skip
        await session.commit()


async def dump(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as JSON-ready dicts."""
    out = {}
    async with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await conn.execute(select(table))).mappings().all()
            out[str(table.name)] = [{str(k): v for k, v in r.items()} for r in rows]
    return out


def db_bytes(db_url: str) -> bytes:
    path = Path(str(make_url(db_url).database))
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


@pytest.fixture
async def bot(db_url: str, config: LeadbotConfig, slack: FakeSlack) -> AsyncIterator[Client]:
    app = build_app(settings=slack_settings(db_url, slack), config=config)
    async with TestClient(TestServer(app)) as client:
        await ingest_two_people(client, slack)
        await add_feedback(client.app[ENGINE], config)
        yield client


async def test_forget_deletes_one_person_everywhere_and_leaves_the_other(
    bot: Client, db_url: str, slack: FakeSlack
) -> None:
    engine = bot.app[ENGINE]
    settings = slack_settings(db_url, slack)
    async with engine.connect() as conn:
        sam = await find_person(conn, "u2")
        assert sam is not None
        sam_before = await export_person(conn, sam)
        dana = await find_person(conn, DANA)
        assert dana is not None
    assert dana.lead_ids == (DANA,)
    assert f"anon:{VISITOR}" in dana.identity_keys
    before = await dump(engine)
    [dana_label] = [f for f in before["feedback"] if f["lead_id"] == DANA]
    [dana_post] = [p for p in before["alert_posts"] if p["lead_id"] == DANA]
    if db_url.startswith("sqlite"):
        assert DANA.encode() in db_bytes(db_url)  # so that its absence below means something

    out, err = io.StringIO(), io.StringIO()
    code = await forget_command(
        settings, "Dana@AcmeSoft.COM", yes=True, erasers=ERASERS, out=out, err=err
    )

    assert (code, err.getvalue()) == (0, "")
    summary = out.getvalue()
    assert "1 posted alert(s) deleted" in summary
    assert "feedback: 1 label(s) kept" in summary
    [deleted] = slack.calls_to("chat.delete", ok_only=True)
    assert (deleted.body["channel"], deleted.body["ts"]) == (dana_post["channel"], dana_post["ts"])
    assert (dana_post["channel"], dana_post["ts"]) not in slack.messages
    assert len(slack.messages) == 1  # Sam's alert stays

    after = await dump(engine)
    text = orjson.dumps(after, default=str).decode().lower()
    for trace in (DANA, VISITOR, "dana reyes", "call dana"):
        assert trace not in text, trace
    assert not [r for r in after["leads"] if r["id"] == DANA]
    [label] = [f for f in after["feedback"] if f["outcome"] == "disqualified"]
    assert label["lead_id"].startswith(PSEUDONYM_PREFIX)
    # The rules' features stay; the snapshot of her traits and events goes.
    assert "lead" in dana_label["features"]
    assert label["features"] == {k: v for k, v in dana_label["features"].items() if k != "lead"}
    assert label["at"] == dana_label["at"]
    assert label["reason"] == "no budget"
    async with engine.connect() as conn:
        assert await find_person(conn, DANA) is None
        assert await export_person(conn, sam) == sam_before
    for name, rows in before.items():  # nothing else changed
        if name not in ("leads", "identities", "events", "score_history", "outbox",
                        "alert_posts", "feedback"):  # fmt: skip
            assert after[name] == rows, name
    if db_url.startswith("sqlite"):
        raw = db_bytes(db_url)
        for trace in (DANA, VISITOR, "Dana Reyes"):
            assert trace.encode() not in raw, trace
        assert SAM.encode() in raw


async def test_export_prints_everything_stored_about_the_person(
    bot: Client, db_url: str, slack: FakeSlack
) -> None:
    out = io.StringIO()
    assert await export_command(slack_settings(db_url, slack), VISITOR, out=out) == 0
    document = orjson.loads(out.getvalue())
    assert document["person"]["lead_ids"] == [DANA]
    assert [lead["email"] for lead in document["leads"]] == [DANA]
    assert document["leads"][0]["state"]["traits"]["name"] == "Dana Reyes"
    assert {i["key"] for i in document["identities"]} == {f"email:{DANA}", f"anon:{VISITOR}"}
    assert len(document["events"]) == 3
    assert document["events"][0]["payload"]["anonymousId"] == VISITOR
    assert document["feedback"][0]["reason"] == NOTE
    assert [o["kind"] for o in document["outbox"]] == ["alert"]
    assert len(document["alert_posts"]) == 1
    assert document["score_history"]


async def test_an_unknown_person_is_exit_1_and_nothing_changes(
    bot: Client, db_url: str, slack: FakeSlack
) -> None:
    settings = slack_settings(db_url, slack)
    before = await dump(bot.app[ENGINE])
    out, err = io.StringIO(), io.StringIO()
    assert (
        await forget_command(
            settings, "nobody@example.com", yes=True, erasers=ERASERS, out=out, err=err
        )
        == 1
    )
    assert "no person stored under 'nobody@example.com'" in err.getvalue()
    assert await export_command(settings, "nobody@example.com", out=out, err=err) == 1
    assert out.getvalue() == ""
    assert await dump(bot.app[ENGINE]) == before
    assert not slack.calls_to("chat.delete")


class Terminal(io.StringIO):
    """What a person types at a terminal."""

    def isatty(self) -> bool:
        return True


async def test_without_yes_it_asks_at_a_terminal_and_refuses_otherwise(
    bot: Client, db_url: str, slack: FakeSlack
) -> None:
    settings = slack_settings(db_url, slack)
    engine = bot.app[ENGINE]
    before = await dump(engine)
    out, err = io.StringIO(), io.StringIO()
    code = await forget_command(settings, DANA, yes=False, erasers=ERASERS,
                                stdin=io.StringIO("yes\n"), out=out, err=err)  # fmt: skip
    assert code == 2
    assert "usage: leadbot forget EMAIL|ID --yes" in err.getvalue()
    assert "would delete: leads 1, alert_posts 1, events 3, identities 2" in out.getvalue()
    code = await forget_command(
        settings, DANA, yes=False, erasers=ERASERS, stdin=Terminal("no\n"), out=out
    )
    assert code == 1
    assert await dump(engine) == before
    code = await forget_command(
        settings, DANA, yes=False, erasers=ERASERS, stdin=Terminal("yes\n"), out=out
    )
    assert code == 0
    assert await count(bot, Lead) == 1


def test_the_cli_knows_both_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    assert main(["export", DANA]) == 1
    assert main(["forget", DANA, "--yes"]) == 1
    assert "no person stored" in capsys.readouterr().err


async def test_debug_logging_writes_no_email(
    db_url: str, config: LeadbotConfig, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    quiet_chat_logs()  # as leadbot's main() does before any command
    caplog.set_level(logging.DEBUG)
    app = build_app(settings=slack_settings(db_url, slack), config=config)
    async with TestClient(TestServer(app)) as client:
        await ingest_two_people(client, slack)
        async with client.app[ENGINE].connect() as conn:
            assert await find_person(conn, DANA.upper()) is not None
    assert logging.getLogger("bot").isEnabledFor(logging.DEBUG)
    assert caplog.records  # the bot did log (requests, schedules)
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        assert DANA not in line.lower(), (record.name, line[:200])
        assert SAM not in line.lower(), (record.name, line[:200])


async def test_feedback_label_rows_still_train_after_forget(
    bot: Client, db_url: str, slack: FakeSlack, config: LeadbotConfig
) -> None:
    from bot.models.versions import labelled_features

    engine = bot.app[ENGINE]

    async def features() -> Any:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda c: labelled_features(c, config.model))

    x_before, y_before, _ = await features()
    settings = slack_settings(db_url, slack)
    assert await forget_command(settings, DANA, yes=True, erasers=ERASERS, out=io.StringIO()) == 0
    x_after, y_after, _ = await features()
    assert (x_after == x_before).all()
    assert (y_after == y_before).all()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Feedback.__table__))).mappings().all()  # type: ignore[attr-defined]
    assert len(rows) == 2
