"""``leadbot demo --db FILE`` replaces only a demo database it made, and only with --force."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import orjson
import pytest

from bot.cli import main
from bot.demo.replay import run_demo
from bot.demo.sample import sample_stream
from bot.demo.target import DEMO_APP_ID
from bot.ingest.inbound import parse_body
from bot.ingest.pipeline import Pipeline
from config.loader import load_config
from storage.engine import create_engine
from storage.migrate import upgrade

CALLS = [
    {"type": "identify", "userId": "u-1", "traits": {"email": "dana@acmesoft.com"}},
    {"type": "track", "userId": "u-1", "event": "Demo Requested", "properties": {}},
    {"type": "page", "userId": "u-1", "properties": {"path": "/pricing"}},
    {"type": "track", "userId": "u-1", "event": "Trial Started", "properties": {}},
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        leads = conn.execute("SELECT count(*) FROM leads").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return app_id, leads, events
    finally:
        conn.close()


async def bot_database(path: Path) -> Path:
    """A real bot database: 1 lead and 4 events ingested through the pipeline."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        async with Pipeline(engine, load_config(None)) as pipeline:
            for i, call in enumerate(CALLS):
                call |= {"messageId": f"m-{i}", "timestamp": f"2026-03-02T10:0{i}:00Z"}
                await pipeline.ingest(parse_body(orjson.dumps(call), now=0.0), now=1.77e9)
    finally:
        await engine.dispose()
    return path


async def demo(path: Path, *, force: bool = False, seed: int = 7) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_demo(seed=seed, leads=20, db_path=str(path), force=force, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("force", [False, True])
async def test_a_real_bot_database_is_refused_even_with_force(tmp_path: Path, force: bool) -> None:
    path = await bot_database(tmp_path / "leadbot.db")
    assert counts(path) == (0, 1, 4)
    before = digest(path)
    code, out, err = await demo(path, force=force)
    assert code == 2
    assert out == ""
    assert f"{path} holds 1 lead and 4 events and was not made by `leadbot demo`" in err
    assert "refusing to replace it" in err
    assert digest(path) == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"my notes\n", "is not a leadbot database"),
        (b"", "is not a leadbot database"),
    ],
)
async def test_a_file_that_is_not_a_database_is_refused(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    code, _, err = await demo(path, force=True)
    assert code == 2
    assert f"{path} {why}" in err
    assert path.read_bytes() == content


async def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = digest(path)
    code, _, err = await demo(path, force=True)
    assert code == 2
    assert "is a SQLite database but not a leadbot database" in err
    assert digest(path) == before


async def test_a_missing_file_is_created_marked_as_the_demos(tmp_path: Path) -> None:
    path = tmp_path / "new" / "demo.db"
    path.parent.mkdir()
    code, out, err = await demo(path)
    assert code == 0
    app_id, leads, events = counts(path)
    assert app_id == DEMO_APP_ID
    assert leads > 0
    assert events > 0
    assert f"The demo database is at {path}" in out
    progress = [line for line in err.splitlines() if line.startswith("demo: ")]
    assert len(progress) == 10
    total = len(sample_stream(seed=7, leads=20))
    assert progress[-1].startswith(f"demo: {total}/{total} calls replayed (100 %)")


async def test_a_demo_database_is_replaced_only_with_force(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    assert (await demo(path))[0] == 0
    first = counts(path)
    before = digest(path)

    code, out, err = await demo(path, seed=8)
    assert code == 2
    assert out == ""
    assert f"{path} is a demo database holding {first[1]} leads and {first[2]} events" in err
    assert "--force" in err
    assert digest(path) == before

    code, _, err = await demo(path, force=True, seed=8)
    assert code == 0
    assert f"replacing the demo database {path}: its {first[1]} leads and {first[2]} events" in err
    assert digest(path) != before
    assert counts(path)[0] == DEMO_APP_ID


def test_the_cli_exits_2_and_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "leadbot.db"
    path.write_text("not a database")
    assert main(["demo", "--db", str(path), "--force"]) == 2
    assert f"leadbot: {path} is not a leadbot database" in capsys.readouterr().err
    assert path.read_text() == "not a database"
