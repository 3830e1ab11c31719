"""Pre-generated, signed webhook requests: the traffic both servers receive.

A realistic mix of single Segment calls from B2B leads: ~5 % identify (email, title, company,
country), the rest track and page events, over ~5,000 distinct userIds, each with a random
UUID messageId (as the SDKs make them: a run of numbered ids would fill the message-id index
at one end only, where real traffic writes anywhere in it) and a timestamp of now. Requests
are signed with ``bot.ingest.signatures.sign`` (Standard Webhooks, valid 5 minutes), so a
pool is generated right before the run that uses it.

A pool is written as one file per load-generator thread, four lines per request:
``webhook-id``, ``webhook-timestamp``, ``webhook-signature``, body (compact JSON, which has no
raw newline). Both load generators read this format: wrk's Lua script line by line, the
Python generator all at once.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bot.demo.people import Company
from bot.ingest.signatures import sign

USERS = 5_000
IDENTIFY_SHARE = 0.05
TRACK_SHARE = 0.45  # of all calls; the rest are page calls

TRACKS = ("Email Link Clicked", "Webinar Attended", "Demo Requested", "Whitepaper Downloaded")
TRACK_WEIGHTS = (50, 20, 5, 25)
PAGES = ("/pricing", "/blog/x", "/customers/y")
PAGE_WEIGHTS = (25, 55, 20)
TITLES = (
    "VP of Sales", "Head of Revenue Operations", "Sales Director", "Account Executive",
    "Software Engineer", "Chief Revenue Officer", "Marketing Manager", "SDR",
)  # fmt: skip
INDUSTRIES = ("Software", "SaaS", "Retail", "Manufacturing", "Financial Services", "Internet")
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "CA", "NL")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def _companies(rng: random.Random, count: int = 600) -> list[Company]:
    return [
        Company(
            name=f"Company {i}",
            domain=f"company{i}.example",
            employee_count=rng.choice((8, 35, 120, 450, 1500, 6000)),
            industry=rng.choice(INDUSTRIES),
        )
        for i in range(count)
    ]


class Workload:
    """Generates Segment calls and signed requests; seeded, so runs are comparable."""

    def __init__(self, secret: str, *, seed: int = 7, users: int = USERS) -> None:
        self.secret = secret
        self.rng = random.Random(seed)
        self.users = users
        self.companies = _companies(self.rng)
        self._seq = itertools.count()
        self._run = uuid.uuid4().hex[:8]  # messageIds stay unique across bench runs

    def call(self, now: float) -> dict[str, Any]:
        """One Segment call (identify, track or page) from a random lead, stamped `now`."""
        n = next(self._seq)
        user = self.rng.randrange(self.users)
        base: dict[str, Any] = {
            "messageId": str(uuid.uuid4()),  # random, as the SDKs make them
            "userId": f"user-{user}",
            "timestamp": _iso(now),
            "context": {"library": {"name": "analytics.js", "version": "4.1.0"},
                        "userAgent": USER_AGENT, "ip": f"203.0.113.{user % 250}"},
        }  # fmt: skip
        roll = self.rng.random()
        if roll < IDENTIFY_SHARE:
            return {"type": "identify", **base, "traits": self._traits(user)}
        if roll < IDENTIFY_SHARE + TRACK_SHARE:
            event = self.rng.choices(TRACKS, TRACK_WEIGHTS)[0]
            properties: dict[str, Any] = {"campaign": f"q{1 + n % 4}-nurture"}
            if event == "Webinar Attended":
                properties["duration_minutes"] = self.rng.randrange(2, 60)
            return {"type": "track", **base, "event": event, "properties": properties}
        path = self.rng.choices(PAGES, PAGE_WEIGHTS)[0]
        properties = {"path": path, "url": f"https://www.example.com{path}",
                      "referrer": "https://www.example.org/", "title": path.strip("/")}  # fmt: skip
        return {"type": "page", **base, "name": path.strip("/"), "properties": properties}

    def _traits(self, user: int) -> dict[str, Any]:
        company = self.companies[user % len(self.companies)]
        return {
            "email": f"lead{user}@{company.domain}",
            "name": f"Lead {user}",
            "title": TITLES[user % len(TITLES)],
            "company": {"name": company.name, "employee_count": company.employee_count,
                        "industry": company.industry},
            "address": {"country": COUNTRIES[user % len(COUNTRIES)]},
        }  # fmt: skip

    def bodies(self, count: int, *, batch: int) -> Iterator[bytes]:
        """`count` request bodies: one call each (batch=1) or `{"batch": [...]}` of `batch`."""
        now = time.time()
        for _ in range(count):
            if batch == 1:
                yield orjson.dumps(self.call(now))
            else:
                yield orjson.dumps({"batch": [self.call(now) for _ in range(batch)]})

    def write_pool(
        self, directory: Path, name: str, count: int, *, batch: int, threads: int
    ) -> Pool:
        """Sign `count` requests and write them round-robin to one file per thread."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"{name}.{t}.req" for t in range(threads)]
        files = [p.open("wb") for p in paths]
        timestamp = int(time.time())
        try:
            for i, body in enumerate(self.bodies(count, batch=batch)):
                msg_id = f"msg_{self._run}_{name}_{i}"
                headers = sign(self.secret, body, msg_id=msg_id, timestamp=timestamp)
                files[i % threads].write(
                    b"%s\n%s\n%s\n%s\n" % (
                        headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(),
                        headers["webhook-signature"].encode(), body,
                    )
                )  # fmt: skip
        finally:
            for f in files:
                f.close()
        return Pool(paths=tuple(paths), count=count, events_per_request=batch)


@dataclass(frozen=True, slots=True)
class Pool:
    """A written pool of signed requests; each line-quadruple is one request."""

    paths: tuple[Path, ...]
    count: int
    events_per_request: int


def read_pool(paths: tuple[Path, ...]) -> list[tuple[dict[str, str], bytes]]:
    """All requests of a pool as (headers, body), interleaved back into their written order."""
    per_file = [_read_file(p) for p in paths]
    merged: list[tuple[dict[str, str], bytes]] = []
    for group in itertools.zip_longest(*per_file):
        merged.extend(item for item in group if item is not None)
    return merged


def _read_file(path: Path) -> list[tuple[dict[str, str], bytes]]:
    lines = path.read_bytes().split(b"\n")
    out = []
    for i in range(0, len(lines) - 3, 4):
        msg_id, timestamp, signature, body = lines[i : i + 4]
        headers = {
            "webhook-id": msg_id.decode(),
            "webhook-timestamp": timestamp.decode(),
            "webhook-signature": signature.decode(),
            "content-type": "application/json",
        }
        out.append((headers, body))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
