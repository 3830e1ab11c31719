"""``leadbot rfm`` / ``customer`` beyond the check: a recompute they run alerts a slipping
customer as the scheduled job would, and ``--out`` never overwrites a file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.rfm import recompute_rfm
from config.loader import LeadbotConfig
from storage.ingest import OUTBOX
from tests.bot.conftest import DAY, T0
from tests.bot.jobs.test_rfm import bought, ingest, shop_history
from tests.bot.rfm_client import cli


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def test_a_move_found_by_the_cli_is_alerted_and_the_csv_kept(
    engine: AsyncEngine, db_url: str, config: LeadbotConfig, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await ingest(engine, config, *shop_history(T0), now=T0)
    await recompute_rfm(engine, config.rfm, now=T0)
    later = T0 + 150 * DAY
    await ingest(engine, config, *[bought(f"c{i}", f"n{i}", later, 40.0) for i in range(9)],
                 now=later)  # fmt: skip
    out = tmp_path / "scores.csv"
    code, table, err = await cli(
        monkeypatch, capsys, db_url, "rfm", "--now", iso(later), "--out", str(out)
    )
    assert code == 0, err
    assert "rfm: recomputed" in err
    assert "Can't lose them" in table
    assert out.read_text(encoding="utf-8").startswith("id,email,r,f,m,cell,segment,since")
    async with engine.connect() as conn:
        kinds = (await conn.execute(select(OUTBOX.c.kind, OUTBOX.c.lead_id))).all()
    assert ("customer_at_risk", "star") in [tuple(k) for k in kinds]

    out.write_text("mine\n", encoding="utf-8")
    code, _, err = await cli(monkeypatch, capsys, db_url, "rfm", "--out", str(out))
    assert code == 2
    assert "not overwritten (--force to replace it)" in err
    assert out.read_text(encoding="utf-8") == "mine\n"
    code, _, _ = await cli(monkeypatch, capsys, db_url, "rfm", "--out", str(out), "--force")
    assert code == 0
    assert out.read_text(encoding="utf-8") != "mine\n"
