"""Real orders: the online-retail data set replayed as signed webhooks (one event per
invoice, cancellations matched to their orders, guests skipped), then ``leadbot rfm``."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from config.loader import DEFAULT_PATH, LeadbotConfig, load_config
from scoring.rfm import Scored, segment_of
from tests.bot.online_retail import CONFIG, replay
from tests.bot.rfm_client import cli_json, post, shop

AS_OF = "2010-12-14T00:00:00"


def expected(calls: list[dict]) -> tuple[int, float]:  # type: ignore[type-arg]
    """Customers with an order still worth something, and the net revenue: plain sums."""
    totals: dict[str, float] = {}
    owner: dict[str, str] = {}
    for c in calls:
        p = c["properties"]
        if c["event"] == "Order Completed":
            totals[p["order_id"]], owner[p["order_id"]] = p["revenue"], c["userId"]
    net = dict(totals)
    for c in calls:
        p = c["properties"]
        if p["order_id"] not in totals:
            continue  # a refund note: its order is not in the data
        if c["event"] == "Order Cancelled":
            net[p["order_id"]] = 0.0
        elif c["event"] == "Order Refunded":
            net[p["order_id"]] = max(0.0, net[p["order_id"]] - p["total"])
    by_customer: dict[str, float] = defaultdict(float)
    for order_id, value in net.items():
        if value > 0 or (value == 0 and totals[order_id] == 0):
            by_customer[owner[order_id]] += value
    return len(by_customer), round(sum(by_customer.values()), 2)


@pytest.fixture
def gbp(tmp_path: Path) -> Path:
    path = tmp_path / "leadbot.yaml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + CONFIG, encoding="utf-8")
    return path


async def test_online_retail_replayed_through_http(
    db_url: str, gbp: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    data = replay()
    assert data.guests == 204
    assert data.cancelled + data.refunded + data.notes == 144  # 156, 12 of them guests'
    config: LeadbotConfig = load_config(gbp)
    async with shop(db_url, config) as client:
        for start in range(0, len(data.calls), 250):
            status, answer = await post(client, data.calls[start : start + 250])
            assert status == 202, answer
    table = await cli_json(monkeypatch, capsys, db_url, "rfm", "--now", AS_OF, config=gbp)
    customers, revenue = expected(data.calls)
    assert table["customers"] == customers
    assert table["revenue"] == pytest.approx(revenue, abs=0.05)
    assert table["currency"] == "GBP"
    assert table["unconverted"] == {}
    named = {row["segment"] for row in table["segments"] if row["customers"]}
    assert {"Champions", "Lost", "New customers"} <= named
    for row in table["scores"]:
        assert row["segment"] == segment_of(Scored(row["r"], row["f"], row["m"]))
    # The wholesalers lead the champions: the top revenue is a champion.
    best = max(table["scores"], key=lambda s: s["revenue"])
    assert best["segment"] == "Champions"
