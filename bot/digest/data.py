"""What a manager digest says, as plain frozen data (no I/O): ``bot.digest.content`` reads
it from the database, the renderers lay it out, and ``bot.digest.codec`` turns it into the
JSON an outbox row stores. See ``bot.digest.content`` for what each figure means."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal

from bot.digest.customers import CustomersSection
from storage.digests import HotEntry, HotLead, Move
from storage.outbox import Dead

NONE_DEAD = Dead(0, None)

PeriodKind = Literal["day", "week"]
PERIODS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class Period:
    """``start <= at < end``, both UTC-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"Period.{name}: a UTC-aware datetime, got a naive one")
        if self.start >= self.end:
            raise ValueError(f"Period: start {self.start} is not before end {self.end}")

    @classmethod
    def last(cls, kind: str, now: float) -> Period:
        """The day or week up to ``now`` (unix seconds)."""
        if kind not in PERIODS:
            raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {kind!r}")
        end = datetime.fromtimestamp(now, UTC)
        return cls(end - PERIODS[kind], end)

    @property
    def name(self) -> str:
        """``day``, ``week``, or ``N days``."""
        for kind, length in PERIODS.items():
            if self.end - self.start == length:
                return kind
        return f"{(self.end - self.start) / timedelta(days=1):g} days"


class ScopeKind(StrEnum):
    ALL = "all"
    TEAM = "team"
    REP = "rep"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose leads: everyone's, a team's (name and member Slack user ids) or one rep's."""

    kind: ScopeKind
    name: str = ""
    members: tuple[str, ...] = ()

    @classmethod
    def everyone(cls) -> Scope:
        return cls(ScopeKind.ALL)

    @classmethod
    def team(cls, name: str, members: Iterable[str]) -> Scope:
        return cls(ScopeKind.TEAM, name, tuple(members))

    @classmethod
    def rep(cls, user_id: str) -> Scope:
        return cls(ScopeKind.REP, user_id, (user_id,))

    @property
    def members_filter(self) -> tuple[str, ...] | None:
        """The storage filter: None for every lead."""
        return None if self.kind is ScopeKind.ALL else self.members


@dataclass(frozen=True, slots=True)
class Conversion:
    """Labelled leads of one band or grade and how many converted."""

    group: str
    labels: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.labels if self.labels else None


SOURCE_NAMES = {"rep": "Rep labels", "crm:hubspot": "HubSpot outcomes",
                "crm:salesforce": "Salesforce outcomes"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """The labels of one source in the period — reps' clicks, or one CRM's outcomes —
    checked apart: conversion by the band each lead was in when labelled, and how well
    the score then ranked them (ROC AUC; None with one outcome only)."""

    source: str  # "rep", "crm:hubspot", "crm:salesforce"
    labels: int
    by_band: tuple[Conversion, ...]
    auc: float | None

    @property
    def name(self) -> str:
        return SOURCE_NAMES.get(self.source, f"{self.source.removeprefix('crm:')} outcomes")


@dataclass(frozen=True, slots=True)
class RepSpeed:
    """A rep's claims in the period and the median alert → claim time of the timed ones."""

    rep: str
    claims: int
    timed: int
    median_seconds: float | None


@dataclass(frozen=True, slots=True)
class ModelHealth:
    version: int | None  # None: no version stored yet, the configured model scores
    name: str
    activated_at: datetime | None
    labels_since: int
    auc: float | None
    pending: tuple[int, ...]
    cohorts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Digest:
    period: Period
    scope: Scope
    now: datetime
    sla_hours: float
    new_hot: tuple[HotEntry, ...]
    waiting: tuple[HotLead, ...]  # past the SLA, longest wait first
    funnel: tuple[tuple[str, int], ...]
    by_band: tuple[Conversion, ...]  # hot, warm, cold
    by_grade: tuple[Conversion, ...]  # A, B, C, D
    warnings: tuple[str, ...]
    reps: tuple[RepSpeed, ...]
    heating: tuple[Move, ...]
    cooling: tuple[Move, ...]
    model: ModelHealth
    hot_counts: tuple[tuple[datetime, int], ...]  # bucket start, leads entering hot
    bucket: timedelta
    outbox_dead: Dead = NONE_DEAD  # messages that gave up: the bot's own health
    # Set when the lists were cut for storage (``bot.digest.codec``): the real counts.
    new_hot_total: int | None = None
    waiting_total: int | None = None
    # Rep ref → display name (``storage.people``): shown in place of ``teams:<id>``.
    names: Mapping[str, str] = field(default_factory=dict)
    # Reps' labels and each CRM's outcomes checked apart; empty when no CRM outcome was
    # labelled in the period (the digest then shows no such section).
    by_source: tuple[SourceCheck, ...] = ()
    # Customers per RFM segment, moves, revenue at risk, top champions (``bot.digest.
    # customers``); None without scored customers or in a team's or rep's digest.
    customers: CustomersSection | None = None

    @property
    def hot_count(self) -> int:
        """Leads that entered hot in the period, listed or not."""
        return len(self.new_hot) if self.new_hot_total is None else self.new_hot_total

    @property
    def waiting_count(self) -> int:
        """Leads waiting past the SLA, listed or not."""
        return len(self.waiting) if self.waiting_total is None else self.waiting_total


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f} %"
