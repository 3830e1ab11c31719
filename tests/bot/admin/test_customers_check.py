"""The issue's check, end to end: orders for about 60 ordinary customers and four special
ones sent as signed webhooks, then ``leadbot customer EMAIL --json`` and ``leadbot rfm``."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from config.loader import LeadbotConfig
from tests.bot.rfm_client import DAY, cli, cli_json, order, person, post, shop

NOW = time.time()
EUR = {"currency": "EUR"}


def ordinary(n: int, seed: int = 18) -> list[dict[str, Any]]:
    """Customers with 1–4 orders of 30–400 EUR, the last 2–330 days ago."""
    rnd = random.Random(seed)
    calls = []
    for i in range(n):
        user = f"c{i}"
        calls.append(person(user, f"c{i}@shop.example", NOW - 400 * DAY))
        at = NOW - rnd.uniform(2, 330) * DAY
        for k in range(rnd.randint(1, 4)):
            amount = round(rnd.uniform(30, 400), 2)
            calls.append(order("Order Completed", user, at, f"{user}-{k}", revenue=amount, **EUR))
            at -= rnd.uniform(30, 90) * DAY
    return calls


def special() -> list[dict[str, Any]]:
    calls = [person(u, f"{u}@shop.example", NOW - 500 * DAY) for u in
             ("champ", "small", "bigold", "refund")]  # fmt: skip
    for i in range(10):  # ten 900 EUR orders in the last 200 days, the latest yesterday
        at = NOW - DAY - i * 20 * DAY
        calls.append(order("Order Completed", "champ", at, f"champ-{i}", revenue=900, **EUR))
    calls.append(order("Order Completed", "small", NOW - 365 * DAY, "small-1", total=25, **EUR))
    for i in range(8):  # eight 1,500 EUR orders, the latest nine months ago
        at = NOW - 270 * DAY - i * 10 * DAY
        calls.append(order("Order Completed", "bigold", at, f"bigold-{i}", revenue=1500, **EUR))
    for i in range(2):
        calls.append(
            order("Order Completed", "refund", NOW - (30 + i) * DAY, f"ref-{i}", revenue=600, **EUR)
        )
    calls.append(order("Order Refunded", "refund", NOW - 20 * DAY, "ref-1", total=600, **EUR))
    return calls


async def test_the_issue_check(
    db_url: str, config: LeadbotConfig, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    calls = ordinary(60) + special()
    async with shop(db_url, config) as client:
        for start in range(0, len(calls), 100):
            status, answer = await post(client, calls[start : start + 100])
            assert status == 202, answer
        # A retried Completed (a new messageId) and a retried refund count once.
        again = [order("Order Completed", "refund", NOW - 30 * DAY, "ref-0", revenue=600, **EUR)]
        again.append(order("Order Refunded", "refund", NOW, "ref-1", "m-refund", total=600))
        again.append(order("Order Refunded", "refund", NOW, "ref-1", "m-refund", total=600))
        assert (await post(client, again))[0] == 202

    async def customer(who: str) -> dict[str, Any]:
        found = await cli_json(monkeypatch, capsys, db_url, "customer", f"{who}@shop.example")
        assert isinstance(found, dict)
        return found

    champ = await customer("champ")
    assert (champ["r"], champ["f"], champ["m"], champ["segment"]) == (5, 5, 5, "Champions")
    assert champ["cell"] == "555"
    assert champ["orders"] == 10
    assert champ["revenue"] == 9000
    assert champ["currency"] == "EUR"
    assert champ["recency_days"] == pytest.approx(1.0, abs=0.01)
    assert champ["since"] is not None
    assert len(champ["order_list"]) == 10
    assert [h["to"] for h in champ["segment_history"]] == ["Champions"]

    small = await customer("small")
    assert small["r"] == 1
    assert small["f"] <= 2
    assert small["m"] <= 2
    assert small["segment"] in ("Lost", "Hibernating")
    assert small["orders"] == 1  # a year ago is the window's first day: still in it

    bigold = await customer("bigold")
    assert bigold["r"] <= 2
    assert bigold["m"] == 5
    assert bigold["segment"] in ("Can't lose them", "At risk")

    refund = await customer("refund")
    assert refund["revenue"] == 600
    assert refund["orders"] == 1  # the order refunded in full no longer counts
    statuses = sorted(o["status"] for o in refund["order_list"])
    assert statuses == ["completed", "refunded"]

    table = await cli_json(monkeypatch, capsys, db_url, "rfm")
    named = {row["segment"]: row["customers"] for row in table["segments"]}
    assert named["Champions"] >= 1
    assert sum(named.values()) == table["customers"] == 64
    assert {s["segment"] for s in table["scores"]} <= set(named)
    code, out, _ = await cli(monkeypatch, capsys, db_url, "rfm")
    assert code == 0
    assert "Champions" in out
    assert "Can't lose them" in out
