"""The bundled demo stream: about 200 made-up leads over two weeks, as Segment calls.

Generated, not stored: ``sample_stream()`` returns the same list of plain dicts for the same
arguments on any machine (one ``random.Random(seed)``, no clock, no ``uuid4``), shaped as a
Segment or RudderStack source would POST them. ``leadbot demo`` replays it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from bot.demo import personas as p
from bot.demo import plays, visitors
from bot.demo.people import People
from bot.demo.plays import Stage
from bot.demo.timeline import Pending, Window

DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday

PLAYS: dict[str, Callable[[Stage], p.DemoLead]] = {
    p.IDEAL: plays.ideal,
    p.LUKEWARM: plays.lukewarm,
    p.RESEARCHER: plays.researcher,
    p.STUDENT: plays.student,
    p.COMPETITOR: plays.competitor,
    p.ANONYMOUS: visitors.anonymous_converter,
    p.OPTED_OUT: plays.opted_out,
    p.NOISE: visitors.noise,
}


@dataclass(frozen=True)
class Sample:
    """The calls (sorted by time) and the leads behind them."""

    calls: list[dict[str, Any]]
    leads: list[p.DemoLead]

    @cached_property
    def personas(self) -> dict[str, str]:
        """Persona by every id a lead's calls carry (userId and anonymousId)."""
        found: dict[str, str] = {}
        for lead in self.leads:
            for key in (lead.user_id, lead.anonymous_id):
                if key is not None:
                    found[key] = lead.persona
        return found

    def persona_of(self, call: Mapping[str, Any]) -> str | None:
        """The persona of the lead that made ``call``, or None for a call not from here."""
        personas = self.personas
        for key in ("userId", "anonymousId", "previousId"):
            value = call.get(key)
            if isinstance(value, str) and value in personas:
                return personas[value]
        return None

    def counts(self) -> dict[str, int]:
        """How many leads of each persona, in ``PERSONAS`` order."""
        counted = Counter(lead.persona for lead in self.leads)
        return {persona.name: counted[persona.name] for persona in p.PERSONAS}


def allocate(leads: int) -> list[str]:
    """Persona names for ``leads`` leads, in ``PERSONAS`` order, by largest remainder, so
    the counts add up to exactly ``leads``."""
    exact = [persona.share * leads for persona in p.PERSONAS]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(p.PERSONAS)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: leads - sum(counts)]:
        counts[i] += 1
    return [x.name for x, n in zip(p.PERSONAS, counts, strict=True) for _ in range(n)]


def generate(
    *, seed: int = 7, start: datetime = DEFAULT_START, days: int = 14, leads: int = 200
) -> Sample:
    """Draw ``leads`` leads over ``days`` days from ``start`` and the calls they make."""
    window = _window(start, days)
    if leads < 0:
        raise ValueError(f"leads: expected a count of 0 or more, got {leads!r}")
    rng = random.Random(seed)
    names = allocate(leads)
    rng.shuffle(names)
    pending: list[Pending] = []
    stage = Stage(rng, People(rng), window, pending)
    drawn = [PLAYS[name](stage) for name in names]
    pending.sort(key=lambda call: (call[0], call[1]))
    calls = [_finish(body, ms, seed, n, window) for n, (ms, _, body) in enumerate(pending)]
    return Sample(calls, drawn)


def sample_stream(
    *, seed: int = 7, start: datetime = DEFAULT_START, days: int = 14, leads: int = 200
) -> list[dict[str, Any]]:
    """The demo's Segment calls, sorted by timestamp; the same arguments give the same list."""
    return generate(seed=seed, start=start, days=days, leads=leads).calls


def _window(start: datetime, days: int) -> Window:
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError(f"start: expected an aware datetime (e.g. tzinfo=UTC), got {start!r}")
    if days < 1:
        raise ValueError(f"days: expected a whole number of days, 1 or more, got {days!r}")
    return Window(start.astimezone(UTC), days)


def _finish(body: dict[str, Any], ms: int, seed: int, n: int, window: Window) -> dict[str, Any]:
    """The call as sent: type, messageId and timestamp first, then ids and payload."""
    head = {"type": body["type"], "messageId": f"demo-{seed}-{n:06d}", "timestamp": window.iso(ms)}
    return head | {k: v for k, v in body.items() if k != "type"}
