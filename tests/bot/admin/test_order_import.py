"""``leadbot import orders FILE.csv``: progress, idempotent, every bad row named, and
nothing imported from a file with a bad row."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from storage.customers import ORDERS
from storage.engine import create_engine
from storage.ingest import EVENTS
from storage.statistics import INGEST_TABLES
from tests.bot.rfm_client import cli, cli_json

GOOD = """email,user_id,order_id,amount,currency,at,status
ann@shop.example,,A-1,120.50,EUR,2026-01-05T10:00:00Z,
ann@shop.example,,A-2,80,eur,2026-02-05T10:00:00Z,completed
,u-bob,B-1,300,EUR,1767600000,refunded
,u-bob,B-2,45.5,,2026-03-01,
Cy@Shop.Example,u-cy,C-1,999,EUR,2026-03-02T09:00:00+01:00,cancelled
Cy@Shop.Example,u-cy,C-2,10,USD,2026-03-03T09:00:00Z,
"""

BAD = """email,order_id,amount,currency,at,status
ann@shop.example,A-1,120.50,EUR,2026-01-05T10:00:00Z,
,B-1,300,EUR,2026-01-05,
ann@shop.example,,10,EUR,2026-01-05,
ann@shop.example,A-3,-4,EUR,2026-01-05,
ann@shop.example,A-4,ten,EURO,yesterday,returned
"""


async def count(db_url: str, table: object) -> int:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def analyzed(db_url: str) -> set[str]:
    sql = text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(sql)).scalars())
    finally:
        await engine.dispose()


async def test_import_twice_changes_nothing_the_second_time(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "orders.csv"
    path.write_text(GOOD, encoding="utf-8")
    code, _, err = await cli(monkeypatch, capsys, db_url, "import", "orders", str(path))
    assert code == 0, err
    assert "import: " in err  # progress
    assert "6 orders" in err
    assert "rfm: 3 customers scored" in err
    orders, events = await count(db_url, ORDERS), await count(db_url, EVENTS)
    assert orders == 6
    if db_url.startswith("postgresql"):  # a small load is autovacuum's (storage.statistics)
        assert not await analyzed(db_url) & set(INGEST_TABLES)

    code, _, err = await cli(monkeypatch, capsys, db_url, "import", "orders", str(path))
    assert code == 0, err
    assert "all imported before: nothing changed" in err
    assert (await count(db_url, ORDERS), await count(db_url, EVENTS)) == (orders, events)

    ann = await cli_json(monkeypatch, capsys, db_url, "customer", "ann@shop.example")
    assert ann["revenue"] == 200.5
    assert ann["orders_ever"] == 2
    bob = await cli_json(monkeypatch, capsys, db_url, "customer", "u-bob")
    assert bob["revenue"] == 45.5  # B-1 refunded in full
    assert sorted(o["status"] for o in bob["order_list"]) == ["completed", "refunded"]
    cy = await cli_json(monkeypatch, capsys, db_url, "customer", "cy@shop.example")
    assert (cy["revenue"], cy["unconverted"]) == (0.0, {"USD": 10.0})
    assert [o["status"] for o in cy["order_list"]] == ["completed", "cancelled"]


async def test_a_file_with_bad_rows_imports_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "orders.csv"
    path.write_text(BAD, encoding="utf-8")
    code, _, err = await cli(monkeypatch, capsys, db_url, "import", "orders", str(path))
    assert code == 1
    lines = err.splitlines()
    assert f"{path}:3: email: give an e-mail or a user_id" in lines
    assert f"{path}:4: order_id: missing: orders count once per order_id" in lines
    assert f"{path}:5: amount: must be a number ≥ 0, got '-4'" in lines
    assert f"{path}:6: amount: not a number: 'ten'" in lines
    assert any(line.startswith(f"{path}:6: currency:") for line in lines)
    assert any(line.startswith(f"{path}:6: at: not an ISO 8601 time") for line in lines)
    assert any(line.startswith(f"{path}:6: status:") for line in lines)
    assert "nothing imported" in err
    assert await count(db_url, ORDERS) == 0  # not even row 2, which was fine
    assert await count(db_url, EVENTS) == 0


async def test_a_file_without_the_columns_is_a_usage_error(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tmp_path / "orders.csv"
    path.write_text("name,total\nann,3\n", encoding="utf-8")
    code, _, err = await cli(monkeypatch, capsys, db_url, "import", "orders", str(path))
    assert code == 2
    assert "no order_id, amount, at column" in err
