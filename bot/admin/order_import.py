"""``leadbot import orders FILE.csv``: order history into the RFM tables, through the ingest.

Columns: ``email`` or ``user_id`` (at least one per row), ``order_id``, ``amount`` (≥ 0),
``currency`` (3 letters; empty: the base currency), ``at`` (ISO 8601 or unix seconds),
optional ``status``: completed (default), refunded (in full) or cancelled.

Every row is checked before anything is stored: one bad row and the file is refused whole,
each problem reported as ``FILE:LINE: COLUMN: what is wrong``. Then each row becomes the
Segment calls a shop would have sent (an identify with the e-mail, an ``Order Completed``,
an ``Order Refunded``/``Order Cancelled`` for its status) with message ids derived from
the order, through the real pipeline with a router that sends no alert: a second run is
all duplicates and says so. The recompute runs at the end.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.csvimport.importer import Quiet
from bot.errors import InputError
from bot.ingest.inbound import InboundEvent, parse_body, to_unix
from bot.ingest.pipeline import Pipeline
from bot.jobs.rfm import recompute_rfm
from config.loader import LeadbotConfig
from storage.statistics import refresh_statistics

CHUNK = 500  # calls per ingest transaction
PROGRESS_EVERY = 5000  # rows between progress lines
STATUSES = {"completed": (), "refunded": ("Order Refunded",), "cancelled": ("Order Cancelled",)}
REQUIRED = ("order_id", "amount", "at")
SKIPPED = 1


class OrderFileError(Exception):
    """The file cannot be read as an orders CSV at all."""


@dataclass(frozen=True)
class OrderRow:
    line: int
    email: str | None
    user_id: str | None
    order_id: str
    amount: float
    currency: str | None
    at: float
    status: str


def read_rows(path: Path) -> tuple[list[OrderRow], list[str]]:
    """The file's rows, and every problem as ``FILE:LINE: COLUMN: what``."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing or not {"email", "user_id"} & set(header):
                need = missing or ["email or user_id"]
                raise OrderFileError(f"{path}: no {', '.join(need)} column (header: {header})")
            reader.fieldnames = header
            rows: list[OrderRow] = []
            problems: list[str] = []
            for record in reader:
                row = _row(reader.line_num, record, f"{path}:{reader.line_num}", problems)
                if row is not None:
                    rows.append(row)
    except (OSError, UnicodeDecodeError) as exc:
        raise OrderFileError(f"{path}: cannot read it: {exc}") from None
    return rows, problems


def _row(line: int, record: dict[str, Any], at: str, problems: list[str]) -> OrderRow | None:
    before = len(problems)

    def cell(name: str) -> str:
        return (record.get(name) or "").strip()

    def bad(column: str, message: str) -> None:
        problems.append(f"{at}: {column}: {message}")

    email, user_id, order_id = (
        cell("email").lower() or None,
        cell("user_id") or None,
        cell("order_id"),
    )
    if email is None and user_id is None:
        bad("email", "give an e-mail or a user_id")
    elif email is not None and "@" not in email[1:-1]:
        bad("email", f"not an e-mail address: {email!r}")
    if not order_id:
        bad("order_id", "missing: orders count once per order_id")
    amount = _amount(cell("amount"), bad)
    currency = cell("currency").upper() or None
    if currency is not None and not (len(currency) == 3 and currency.isalpha()):
        bad("currency", f"expected a 3-letter code like EUR, got {cell('currency')!r}")
    when = _time(cell("at"), bad)
    status = cell("status").lower() or "completed"
    if status not in STATUSES:
        bad("status", f"expected completed, refunded or cancelled, got {cell('status')!r}")
    if len(problems) > before or amount is None or when is None:
        return None
    return OrderRow(line, email, user_id, order_id, amount, currency, when, status)


def _amount(text: str, bad: Any) -> float | None:
    try:
        amount = float(text)
    except ValueError:
        bad("amount", f"not a number: {text!r}" if text else "missing")
        return None
    if not math.isfinite(amount) or amount < 0:
        bad("amount", f"must be a number ≥ 0, got {text!r}")
        return None
    return amount


def _time(text: str, bad: Any) -> float | None:
    if not text:
        bad("at", "missing: when the order was placed (ISO 8601 or unix seconds)")
        return None
    try:
        return to_unix(float(text) if _numeric(text) else text)
    except ValueError as exc:
        bad("at", str(exc))
        return None


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def calls(row: OrderRow) -> list[dict[str, Any]]:
    """The Segment calls a shop would have sent for the row."""
    who: dict[str, Any] = {"userId": row.user_id} if row.user_id else {}
    stamp = {"timestamp": row.at}
    props: dict[str, Any] = {"order_id": row.order_id, "revenue": row.amount}
    if row.currency:
        props["currency"] = row.currency
    if row.email:
        props["email"] = row.email
    out = []
    if row.email:
        out.append({
            "type": "identify", **who, "traits": {"email": row.email}, **stamp,
            "messageId": f"import:customer:{row.user_id or row.email}",
        })  # fmt: skip
    out.append({
        "type": "track", "event": "Order Completed", **who, "properties": props, **stamp,
        "messageId": f"import:order:{row.order_id}:completed",
    })  # fmt: skip
    for name in STATUSES[row.status]:
        extra = {"refund_id": "import"} if name == "Order Refunded" else {}
        out.append({
            "type": "track", "event": name, **who, **stamp,
            "properties": {"order_id": row.order_id, **extra,
                           **({"email": row.email} if row.email else {})},
            "messageId": f"import:order:{row.order_id}:{row.status}",
        })  # fmt: skip
    return out


def events_of(rows: Sequence[OrderRow], path: Path, now: float) -> list[InboundEvent]:
    """The rows' calls parsed as the webhook parses them (a problem there names the line)."""
    events: list[InboundEvent] = []
    for row in rows:
        try:
            events += parse_body(orjson.dumps({"batch": calls(row)}), now=now)
        except InputError as exc:
            field, message = exc.problems[0]
            raise OrderFileError(f"{path}:{row.line}: {field}: {message}") from None
    return events


def _chunks(items: Sequence[InboundEvent]) -> Iterator[Sequence[InboundEvent]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def import_orders(
    engine: AsyncEngine, config: LeadbotConfig, path: Path, *, now: float, err: TextIO
) -> int:
    """Import ``path`` (see the module doc); the exit status: 0, or 1 when refused."""
    rows, problems = read_rows(path)
    if problems:
        for problem in problems:
            err.write(problem + "\n")
        err.write(f"import: {len(problems)} problem(s): nothing imported; fix them and rerun\n")
        return SKIPPED
    events = events_of(rows, path, now)
    accepted = duplicates = 0
    started, done = time.perf_counter(), 0
    async with Pipeline(engine, config, inline=True, router=Quiet()) as pipeline:
        for chunk in _chunks(events):
            result = await pipeline.ingest(chunk, now=now)
            accepted, duplicates = accepted + result.accepted, duplicates + result.duplicates
            done += len(chunk)
            if done % PROGRESS_EVERY < len(chunk) or done == len(events):
                elapsed = time.perf_counter() - started
                err.write(f"import: {done}/{len(events)} calls ({elapsed:.1f} s)\n")
                err.flush()
    if accepted == 0:
        err.write(f"{path}: {len(rows)} orders, all imported before: nothing changed\n")
    else:
        err.write(f"{path}: {len(rows)} orders: {accepted} calls stored, {duplicates} known\n")
    recomputed = await recompute_rfm(engine, config.rfm, now=time.time())
    err.write(f"rfm: {recomputed.summary()}\n")
    await refresh_statistics(engine, accepted)  # a large load: servers re-plan now
    return 0
