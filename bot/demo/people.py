"""Made-up people and companies for the demo, drawn from ``vocab`` without repeats.

All randomness comes from the ``random.Random`` passed in, so the same seed gives the same
people; ids look like the real thing (a database id, a UUID) without calling ``uuid4``.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from bot.demo import vocab


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    employee_count: int
    industry: str


def _round_headcount(n: int) -> int:
    """Headcounts people type into forms are round: 35, 120, 350."""
    step = 5 if n < 100 else 10 if n < 1000 else 50
    return max(step, round(n / step) * step)


class People:
    """Draws unique ids, e-mails and (sometimes shared) companies."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._ids: set[str] = set()
        self._emails: set[str] = set()
        self._companies: dict[str, Company] = {}

    def user_id(self) -> str:
        while True:
            candidate = f"usr_{self._rng.getrandbits(48):012x}"
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def anonymous_id(self) -> str:
        """A UUID-shaped id, as analytics.js sets in its cookie."""
        while True:
            candidate = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def company(self, industries: tuple[str, ...], size: tuple[int, int]) -> Company:
        """A company in one of ``industries`` with a headcount in ``size`` (inclusive).

        A name drawn twice is the same company (two leads from one account) when its
        headcount fits; otherwise another name is drawn."""
        rng = self._rng
        for _ in range(50):
            industry = rng.choice(industries)
            name = rng.choice(vocab.COMPANY_STEMS) + rng.choice(vocab.INDUSTRY_SUFFIXES[industry])
            known = self._companies.get(name)
            if known is None:
                count = _round_headcount(rng.randint(*size))
                tld = ".io" if industry == "SaaS" else ".com"
                domain = re.sub(r"[^a-z0-9]", "", name.lower()) + tld
                known = self._companies[name] = Company(name, domain, count, industry)
                return known
            if size[0] <= known.employee_count <= size[1]:
                return known
        raise RuntimeError(f"no company left for industries={industries!r} size={size!r}")

    def competitor(self) -> Company:
        name = self._rng.choice(sorted(vocab.COMPETITORS))
        domain, count = vocab.COMPETITORS[name]
        return Company(name, domain, count, "Software")

    def person(
        self,
        *,
        title: str,
        company: Company | None,
        country: str,
        mail: Literal["work", "free"],
        crm: str | None = None,
    ) -> dict[str, Any]:
        """Identify traits, shaped as a Segment source sends them."""
        rng = self._rng
        first, last = rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.LAST_NAMES)
        traits: dict[str, Any] = {
            "email": self._email(first, last, company, mail),
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "title": title,
        }
        if company is not None:
            traits["company"] = {
                "name": company.name,
                "employee_count": company.employee_count,
                "industry": company.industry,
            }
        traits["address"] = {"country": country}
        if crm is not None:
            traits["crm"] = crm
        return traits

    def _email(
        self, first: str, last: str, company: Company | None, mail: Literal["work", "free"]
    ) -> str:
        rng = self._rng
        for attempt in range(100):
            if mail == "work" and company is not None:
                local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", first))
                domain = company.domain
            else:
                local = f"{first}.{last}{rng.randint(1, 99)}"
                domain = rng.choice(vocab.FREE_MAIL)
            if attempt:
                local += str(attempt + 1)
            address = f"{local.lower()}@{domain}"
            if address not in self._emails:
                self._emails.add(address)
                return address
        raise RuntimeError(f"no unused e-mail left for {first} {last}")
