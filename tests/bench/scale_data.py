"""Bulk generation for ``bench_scale``: N leads and M events through leadbot's own bulk writes.

A few thousand lead templates get real feature states (identify + track events through
``LeadState``) scored by ``scoring.score``; every lead is a clone of one template with its
own id, e-mail, name and times, written with ``storage.ingest.upsert_leads``. Events go in
with ``storage.ingest.insert_new_events`` (unique message ids, leads drawn at random), some
score changes with ``add_history``. Chunks of ``CHUNK`` rows, one transaction each.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from scoring import LeadState, Model, score
from storage.ingest import add_history, insert_new_events, upsert_leads

DAY = 86400.0
CHUNK = 20_000
TEMPLATES = 4_000
TITLES = ["VP Sales", "Head of Revenue", "RevOps lead", "Engineer", "Student", "Marketing",
          "Sales Operations Manager", "CTO", "Account Executive", "Founder"]  # fmt: skip
INDUSTRIES = ["Software", "SaaS", "Retail", "Mining", "Internet", "Banking"]
DOMAINS = ["acme.io", "tidaldesk.io", "gmail.com", "pinnacle.io", "northwind.com", "contoso.com"]
SIGNALS = ["Demo Requested", "Trial Started", "Email Link Clicked", "Pricing Viewed",
           "Contact Sales Submitted", "Webinar Attended"]  # fmt: skip


@dataclass(frozen=True)
class Template:
    state: dict[str, Any]
    first_seen: float
    last_seen: float
    score: dict[str, Any]


def _template(rng: random.Random, model: Model, now: float) -> Template:
    state = LeadState()
    start = now - rng.uniform(1, 120) * DAY
    traits = {
        "title": rng.choice(TITLES),
        "company": {"industry": rng.choice(INDUSTRIES), "employee_count": rng.randint(5, 5000)},
        "email": f"t{rng.randint(0, 10**6)}@{rng.choice(DOMAINS)}",
        "country": rng.choice(["US", "DE", "FR", "IN"]),
    }
    state.identify(traits, model, start)
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8])):
        at = start + rng.uniform(0, now - start)
        state.event("track", rng.choice(SIGNALS), {}, model, at)
    for _ in range(rng.randint(0, 6)):
        path = rng.choice(["/pricing", "/blog/x", "/docs", "/"])
        state.event("page", None, {"path": path}, model, start + rng.uniform(0, now - start))
    s = score(state, model, now, explain=False)
    cols = {
        "score": s.total, "fit": s.fit, "intent": s.intent, "band": str(s.band), "grade": s.grade,
        "engagement": s.engagement, "probability": s.probability,
    }  # fmt: skip
    last = state.last_seen or start
    return Template(state.to_dict(), state.first_seen or start, last, cols)


def templates(model: Model, now: float, count: int = TEMPLATES) -> list[Template]:
    rng = random.Random(16)
    return [_template(rng, model, now) for _ in range(count)]


def lead_id(i: int) -> str:
    return f"lead-{i:07d}"


def email_of(i: int) -> str:
    return f"person{i}@{DOMAINS[i % len(DOMAINS)]}"


def _lead_rows(start: int, stop: int, kinds: list[Template], now: float) -> list[dict[str, Any]]:
    rows = []
    for i in range(start, stop):
        t = kinds[(i * 7919) % len(kinds)]
        rows.append({
            "id": lead_id(i), "email": email_of(i), "name": f"Person {i}",
            "company": f"Company {i % 50_000}", "anonymous": i % 10 == 9, "state": t.state,
            **t.score, "first_seen_at": t.first_seen, "last_event_at": t.last_seen,
            "scored_at": now, "alerted_at": None,
        })  # fmt: skip
    return rows


def _event_rows(rng: random.Random, start: int, stop: int, leads: int, now: float) -> list[Any]:
    rows = []
    for k in range(start, stop):
        at = now - rng.uniform(0, 120) * DAY
        kind = "track" if k % 2 else "page"
        name = SIGNALS[k % len(SIGNALS)] if kind == "track" else None
        payload: dict[str, Any] = {
            "type": kind,
            "event": name,
            "userId": f"u{k % leads}",
            "properties": {},
        }
        rows.append((f"msg-{k:09d}", lead_id(rng.randrange(leads)), kind, name, at, at, payload))
    return rows


def _spans(total: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, CHUNK):
        yield start, min(total, start + CHUNK)


async def populate(
    engine: AsyncEngine, *, leads: int, events: int, model: Model, now: float
) -> None:
    """Write ``leads`` leads, ``events`` events and a score change for one lead in ten."""
    began = time.perf_counter()
    kinds = templates(model, now)
    rng = random.Random(17)
    for start, stop in _spans(leads):
        rows = _lead_rows(start, stop, kinds, now)
        history = [
            (r["id"], now - DAY, r["score"], r["band"], None, None, "event") for r in rows[::10]
        ]

        def write(
            conn: Connection, rows: list[dict[str, Any]] = rows, h: list[Any] = history
        ) -> None:
            upsert_leads(conn, rows=rows)
            add_history(conn, rows=h)

        async with engine.begin() as conn:
            await conn.run_sync(write)
    _progress("leads", leads, began)
    for start, stop in _spans(events):
        ev = _event_rows(rng, start, stop, leads, now)
        async with engine.begin() as conn:
            await conn.run_sync(_insert_events, ev)
        if (stop // CHUNK) % 50 == 0:
            _progress("events", stop, began)
    _progress("events", events, began)


def _insert_events(conn: Connection, rows: list[Any]) -> None:
    insert_new_events(conn, rows=rows)


def _progress(what: str, n: int, began: float) -> None:
    sys.stderr.write(f"  {n:,} {what} written ({time.perf_counter() - began:.0f} s)\n")
