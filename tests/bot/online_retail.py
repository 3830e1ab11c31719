"""The online-retail data set (tests/data/online-retail: the columns of
../shared/data/online-retail this replay reads, gzipped) as the events a shop would send.

One event per invoice, with the invoice's lines summed: an ``Order Completed`` (userId the
CustomerID, GBP); a ``C`` invoice (a cancellation) is matched to the customer's latest
earlier invoice holding all its stock codes in at least those quantities: the whole of it
→ ``Order Cancelled``, part of it → ``Order Refunded`` of that order (refund_id the C
invoice); unmatched (its order predates the data) → an ``Order Refunded`` naming the C
invoice itself, a refund note that stays pending and counts for nothing. Guest lines (no
CustomerID) are skipped.

``python -m tests.bot.online_retail FILE.db`` replays it into a SQLite file, for
``leadbot rfm --db FILE.db --now 2010-12-14T00:00:00``.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "online-retail" / "transactions.csv.gz"
AS_OF = datetime(2010, 12, 14, tzinfo=UTC).timestamp()  # the day after the last invoice
CONFIG = "rfm:\n  currency: GBP\n"


@dataclass
class Invoice:
    number: str
    customer: str
    at: float
    lines: dict[str, float] = field(default_factory=dict)  # stock code → quantity
    total: float = 0.0


@dataclass
class Replay:
    calls: list[dict[str, Any]]
    guests: int  # invoices without a customer, skipped
    cancelled: int  # C invoices that cancel a whole order
    refunded: int  # C invoices that refund part of an order
    notes: int  # C invoices whose order is not in the data


def _when(text: str) -> float:
    # M/D/YY H:MM, UK time: GMT in December, so UTC.
    return datetime.strptime(text, "%m/%d/%y %H:%M").replace(tzinfo=UTC).timestamp()


def invoices(path: Path = DATA) -> tuple[list[Invoice], int]:
    """The customers' invoices in file order, and how many guest invoices were skipped."""
    found: dict[str, Invoice] = {}
    guests: set[str] = set()
    opened = gzip.open if path.suffix == ".gz" else open
    with opened(path, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            number, customer = row["InvoiceNo"], row["CustomerID"].strip()
            if not customer:
                guests.add(number)
                continue
            invoice = found.setdefault(
                number, Invoice(number, customer.split(".")[0], _when(row["InvoiceDate"]))
            )
            code = row["StockCode"]
            invoice.lines[code] = invoice.lines.get(code, 0.0) + float(row["Quantity"])
            invoice.total += float(row["TotalPrice"])
    return list(found.values()), len(guests)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _track(event: str, invoice: Invoice, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "track", "event": event, "userId": invoice.customer,
        "timestamp": _iso(invoice.at), "messageId": f"retail-{invoice.number}",
        "properties": {"currency": "GBP", **props},
    }  # fmt: skip


def _original(c: Invoice, earlier: list[Invoice]) -> Invoice | None:
    for candidate in reversed(earlier):
        if candidate.at <= c.at and all(
            candidate.lines.get(code, 0.0) >= -qty for code, qty in c.lines.items()
        ):
            return candidate
    return None


def replay(path: Path = DATA) -> Replay:
    found, guests = invoices(path)
    calls: list[dict[str, Any]] = []
    by_customer: dict[str, list[Invoice]] = defaultdict(list)
    cancelled = refunded = notes = 0
    for invoice in sorted(found, key=lambda i: (i.at, i.number)):
        if not invoice.number.startswith("C"):
            by_customer[invoice.customer].append(invoice)
            total = round(invoice.total, 2)
            calls.append(_track("Order Completed", invoice, {"order_id": invoice.number,
                                                             "revenue": total}))  # fmt: skip
            continue
        amount = round(-invoice.total, 2)
        original = _original(invoice, by_customer[invoice.customer])
        if original is None:
            notes += 1
            props = {"order_id": invoice.number, "total": amount, "refund_id": invoice.number}
            calls.append(_track("Order Refunded", invoice, props))
        elif abs(amount - round(original.total, 2)) < 0.005:
            cancelled += 1
            calls.append(_track("Order Cancelled", invoice, {"order_id": original.number}))
        else:
            refunded += 1
            props = {"order_id": original.number, "total": amount, "refund_id": invoice.number}
            calls.append(_track("Order Refunded", invoice, props))
    return Replay(calls, guests, cancelled, refunded, notes)


async def _to_sqlite(url: str) -> None:
    import orjson

    from bot.ingest.inbound import parse_body
    from bot.ingest.pipeline import Pipeline
    from config.loader import DEFAULT_PATH, load_config
    from storage.engine import create_engine
    from storage.migrate import upgrade

    config = load_config(text=DEFAULT_PATH.read_text(encoding="utf-8") + CONFIG)
    engine = create_engine(url)
    await upgrade(engine)
    calls = replay().calls
    async with Pipeline(engine, config) as pipeline:
        for start in range(0, len(calls), 500):
            body = orjson.dumps({"batch": calls[start : start + 500]})
            await pipeline.ingest(parse_body(body, now=AS_OF), now=AS_OF)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(_to_sqlite(f"sqlite+aiosqlite:///{Path(sys.argv[1]).resolve()}"))
