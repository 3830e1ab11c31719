"""One typed message per outbox kind: what the core decided to say, as data, never markup.

The core builds these (the pipeline and a rescore: alerts; ``bot.jobs``: SLA reminders,
escalations, cooling notices; ``bot.models.learning``: proposals; ``bot.digest``: digests);
an outbox row stores ``to_payload()``; at send time a transport reads the row back with
``decode(kind, payload)`` and its platform renders it (``bot/slack/``: Block Kit,
``bot/teams/``: Adaptive Cards, the console: plain text).

Payloads keep the field names the rows had before these types existed, so a row queued
by an older version still decodes. The one change of shape is the digest: it used to
store Slack blocks and plain text (``DigestMessage.legacy``), it now stores the digest's
data (``bot.digest.codec``), marked ``"v": 2``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from bot.digest.codec import digest_from_json, digest_to_json
from bot.digest.data import Digest

DIGEST_VERSION = 2  # payload version of a digest that stores its data


class Kind(StrEnum):
    """The outbox's ``kind`` column."""

    ALERT = "alert"
    SLA_REMINDER = "sla_reminder"
    SLA_ESCALATION = "sla_escalation"
    COOLING = "cooling"
    PROPOSAL = "proposal"
    MODEL_APPLIED = "model_applied"
    DIGEST = "digest"
    CUSTOMER_AT_RISK = "customer_at_risk"


# --- parts ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadRef:
    """A lead as messages name it (raw data: each renderer escapes it)."""

    id: str
    email: str | None = None
    name: str | None = None
    company: str | None = None

    @property
    def shown(self) -> str:
        """Name, else e-mail, else id."""
        return self.name or self.email or self.id

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name, "company": self.company}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeadRef:
        return cls(
            str(data["id"]), _opt_str(data.get("email")), _opt_str(data.get("name")),
            _opt_str(data.get("company")),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AlertScore:
    total: float
    fit: float
    intent: float
    band: str
    grade: str
    engagement: int
    probability: float


@dataclass(frozen=True, slots=True)
class WhyNow:
    """The event that tipped the lead over; ``at`` is ISO 8601 UTC (``…Z``)."""

    type: str
    name: str
    at: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Signal:
    """One rule's contribution (``scoring.Contribution.to_dict``)."""

    rule: str
    label: str
    group: str
    points: float
    weight: float
    value: float
    count: int | None = None
    last_seen: float | None = None
    reading: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule, "label": self.label, "group": self.group, "points": self.points,
            "weight": self.weight, "value": self.value,
        }  # fmt: skip
        if self.count is not None:  # as scoring writes it: both, last_seen maybe null
            out["count"], out["last_seen"] = self.count, self.last_seen
        elif self.last_seen is not None:
            out["last_seen"] = self.last_seen
        if self.reading is not None:
            out["reading"] = self.reading
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Signal:
        count, seen, reading = data.get("count"), data.get("last_seen"), data.get("reading")
        return cls(
            str(data["rule"]), str(data["label"]), str(data.get("group", "")),
            float(data["points"]), float(data.get("weight", 0.0)), float(data.get("value", 0.0)),
            None if count is None else int(count), None if seen is None else float(seen),
            None if reading is None else float(reading),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PreviousAlert:
    """The lead's last alert before this one (ISO 8601 times) and who claimed the lead
    (an actor ref, ``slack:U123``), if anyone: a lead hot again is not news to everyone."""

    at: str
    claimed_by: str | None = None
    claimed_at: str | None = None

    def age(self, now: str) -> str:
        """``3 days`` / ``5 hours`` / ``20 minutes``: from this alert to ``now`` (ISO)."""
        seconds = max(0.0, (_instant(now) - _instant(self.at)).total_seconds())
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size or unit == "minute":
                n = int(seconds // size)
                return f"{n} {unit}{'' if n == 1 else 's'}"
        raise AssertionError("unreachable")

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "claimed_by": self.claimed_by, "claimed_at": self.claimed_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PreviousAlert:
        return cls(
            str(data["at"]), _opt_str(data.get("claimed_by")), _opt_str(data.get("claimed_at"))
        )


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A hot lead: who, the score and why, every contribution, profile facts, the actions
    the alert offers, and when it was decided (ISO 8601). ``previous``: the lead's last
    alert when this one is a repeat (hot again after the cooldown); absent in older rows."""

    kind: ClassVar[Kind] = Kind.ALERT
    lead: LeadRef
    score: AlertScore
    why_now: WhyNow
    contributions: tuple[Signal, ...]
    facts: tuple[tuple[str, str], ...]
    actions: tuple[str, ...]
    at: str
    previous: PreviousAlert | None = None
    # The lead's CRM records known when the alert is sent or redrawn: (crm, record URL),
    # e.g. ("hubspot", "https://app.hubspot.com/contacts/1/record/0-1/51"). Never stored
    # in the row: the dispatcher and ``storage.posts.find_post`` add them as ``crm_records``.
    crm_records: tuple[tuple[str, str], ...] = ()

    def hot_again(self, name: Callable[[str], str]) -> str | None:
        """``hot again — last alerted 3 days ago, claimed by Riley`` (or ``not claimed``)
        for a repeat, else None. ``name`` renders the claimer's actor ref the platform's
        way (a mention, a display name, escaped text)."""
        prev = self.previous
        if prev is None:
            return None
        claim = f"claimed by {name(prev.claimed_by)}" if prev.claimed_by else "not claimed"
        return f"hot again — last alerted {prev.age(self.at)} ago, {claim}"

    def to_payload(self) -> dict[str, Any]:
        s, w = self.score, self.why_now
        return {
            "lead": self.lead.to_json(),
            "score": {
                "total": s.total, "fit": s.fit, "intent": s.intent, "band": s.band,
                "grade": s.grade, "engagement": s.engagement, "probability": s.probability,
            },
            "why_now": {"type": w.type, "name": w.name, "at": w.at, "rules": list(w.rules)},
            "contributions": [c.to_json() for c in self.contributions],
            "facts": [list(pair) for pair in self.facts],
            "actions": list(self.actions),
            "at": self.at,
            **({} if self.previous is None else {"previous": self.previous.to_json()}),
            **({"crm_records": dict(self.crm_records)} if self.crm_records else {}),
        }  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AlertMessage:
        s, w, prev = payload["score"], payload["why_now"], payload.get("previous")
        return cls(
            lead=LeadRef.from_json(payload["lead"]),
            score=AlertScore(
                float(s["total"]), float(s["fit"]), float(s["intent"]), str(s["band"]),
                str(s["grade"]), int(s["engagement"]), float(s["probability"]),
            ),
            why_now=WhyNow(
                str(w["type"]), str(w.get("name") or ""), str(w["at"]),
                tuple(str(r) for r in w.get("rules") or ()),
            ),
            contributions=tuple(Signal.from_json(c) for c in payload.get("contributions") or ()),
            facts=tuple((str(k), str(v)) for k, v in payload.get("facts") or ()),
            actions=tuple(str(a) for a in payload.get("actions") or ()),
            at=str(payload["at"]),
            previous=PreviousAlert.from_json(prev) if isinstance(prev, Mapping) else None,
            crm_records=tuple(sorted(
                (str(crm), str(url)) for crm, url in (payload.get("crm_records") or {}).items()
                if url
            )),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _LeadWaiting:
    """What an SLA reminder and an escalation say: a hot lead nobody acted on since its
    alert (``alerted_at`` ISO 8601), where that alert went (outbox destinations) and the
    Slack users it was routed to; ``text`` is the plain sentence (notification, console)."""

    lead: LeadRef
    score: float
    band: str
    hours_waiting: float
    alerted_at: str
    alerted_in: tuple[str, ...]
    routed_to: tuple[str, ...]
    text: str

    def _fields(self) -> dict[str, Any]:
        return {
            "lead": self.lead.to_json(), "score": self.score, "band": self.band,
            "hours_waiting": self.hours_waiting, "alerted_at": self.alerted_at,
            "alerted_in": list(self.alerted_in), "routed_to": list(self.routed_to),
            "text": self.text,
        }  # fmt: skip

    @staticmethod
    def _read(payload: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "lead": LeadRef.from_json(payload["lead"]), "score": float(payload["score"]),
            "band": str(payload.get("band", "hot")),
            "hours_waiting": float(payload["hours_waiting"]),
            "alerted_at": str(payload.get("alerted_at", "")),
            "alerted_in": tuple(str(d) for d in payload.get("alerted_in") or ()),
            "routed_to": tuple(str(u) for u in payload.get("routed_to") or ()),
            "text": str(payload["text"]),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class SlaReminder(_LeadWaiting):
    """Posted in the thread of the lead's alert (``thread_of``)."""

    kind: ClassVar[Kind] = Kind.SLA_REMINDER

    @property
    def thread_of(self) -> str | None:
        return self.lead.id

    def to_payload(self) -> dict[str, Any]:
        return {**self._fields(), "thread_of": {"lead_id": self.lead.id}}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SlaReminder:
        return cls(**cls._read(payload))


@dataclass(frozen=True, slots=True)
class SlaEscalation(_LeadWaiting):
    """For the managers: stands on its own, in no thread."""

    kind: ClassVar[Kind] = Kind.SLA_ESCALATION

    @property
    def thread_of(self) -> str | None:
        return None

    def to_payload(self) -> dict[str, Any]:
        return self._fields()

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SlaEscalation:
        return cls(**cls._read(payload))


@dataclass(frozen=True, slots=True)
class CoolingMessage:
    """The decay sweep's notice: the lead left the hot band (``before`` → ``after``),
    posted in the thread of its alert."""

    kind: ClassVar[Kind] = Kind.COOLING
    lead: LeadRef
    before: str
    after: str
    score: float
    text: str

    @property
    def thread_of(self) -> str | None:
        return self.lead.id

    def to_payload(self) -> dict[str, Any]:
        return {
            "lead": self.lead.to_json(), "from": self.before, "to": self.after,
            "score": self.score, "text": self.text, "thread_of": {"lead_id": self.lead.id},
        }  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CoolingMessage:
        return cls(
            LeadRef.from_json(payload["lead"]), str(payload.get("from", "hot")),
            str(payload.get("to", "warm")), float(payload["score"]), str(payload["text"]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule: str
    label: str
    old: float
    new: float


@dataclass(frozen=True, slots=True)
class ProposalMessage:
    """A refitted model version for the managers: points per rule old → new, held-out
    metric lines, whether they improved. With a ``decision`` (plain text) it is the notice
    that the version was applied (``model_applied``) rather than a question."""

    version: int
    base: int
    labels: int
    changes: tuple[RuleChange, ...]
    intercept: float
    points_per_logodds: float
    metrics: tuple[str, ...]
    improved: bool
    text: str
    decision: str | None = None
    sources: str = ""  # labels used per source: "30 from reps, 12 from HubSpot" (or none)

    @property
    def kind(self) -> Kind:
        return Kind.PROPOSAL if self.decision is None else Kind.MODEL_APPLIED

    @property
    def labels_line(self) -> str:
        """``40 labels (28 from reps, 12 from HubSpot)``; before CRM sources were counted,
        ``40 labels from reps' feedback``."""
        if not self.sources:
            return f"{self.labels} labels from reps' feedback"
        return f"{self.labels} labels ({self.sources})"

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version, "base": self.base, "labels": self.labels,
            "changes": [
                {"rule": c.rule, "label": c.label, "old": c.old, "new": c.new}
                for c in self.changes
            ],
            "intercept": self.intercept, "points_per_logodds": self.points_per_logodds,
            "metrics": list(self.metrics), "improved": self.improved, "text": self.text,
        }  # fmt: skip
        if self.decision is not None:
            out["decision"] = self.decision
        if self.sources:
            out["sources"] = self.sources
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ProposalMessage:
        decision = payload.get("decision")
        return cls(
            version=int(payload["version"]), base=int(payload["base"]),
            labels=int(payload["labels"]),
            changes=tuple(
                RuleChange(str(c["rule"]), str(c.get("label", c["rule"])), float(c["old"]),
                           float(c["new"]))
                for c in payload.get("changes") or ()
            ),
            intercept=float(payload["intercept"]),
            points_per_logodds=float(payload["points_per_logodds"]),
            metrics=tuple(str(m) for m in payload.get("metrics") or ()),
            improved=bool(payload.get("improved")), text=str(payload["text"]),
            decision=None if decision is None else str(decision),
            sources=str(payload.get("sources") or ""),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Chart:
    """A PNG, base64, with what an upload or an image needs around it."""

    png_base64: str
    filename: str
    title: str
    alt: str

    def to_json(self) -> dict[str, Any]:
        return {"png_base64": self.png_base64, "filename": self.filename, "title": self.title,
                "alt": self.alt}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chart:
        filename = str(data.get("filename") or "chart.png")
        return cls(
            str(data["png_base64"]), filename, str(data.get("title") or filename),
            str(data.get("alt") or data.get("title") or "Digest chart"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LegacyDigest:
    """A digest row queued before digests stored their data: the plain text, Slack's
    fallback text and the Block Kit rendered then. Adapters show it as it was stored."""

    title: str
    plain: str
    text: str
    blocks: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class DigestMessage:
    """A scheduled manager digest: its data, and its chart. Exactly one of ``digest`` and
    ``legacy`` is set (``legacy`` only for rows from before this type)."""

    kind: ClassVar[Kind] = Kind.DIGEST
    digest: Digest | None
    chart: Chart | None = None
    legacy: LegacyDigest | None = None

    def __post_init__(self) -> None:
        if (self.digest is None) == (self.legacy is None):
            raise ValueError("DigestMessage: set exactly one of digest and legacy")

    def to_payload(self) -> dict[str, Any]:
        chart = None if self.chart is None else self.chart.to_json()
        if self.legacy is not None:
            old = self.legacy
            return {"title": old.title, "plain": old.plain, "text": old.text,
                    "blocks": [dict(b) for b in old.blocks], "chart": chart}  # fmt: skip
        assert self.digest is not None
        return {"v": DIGEST_VERSION, "digest": digest_to_json(self.digest), "chart": chart}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DigestMessage:
        raw_chart = payload.get("chart")
        chart = Chart.from_json(raw_chart) if isinstance(raw_chart, Mapping) else None
        if "digest" in payload:
            return cls(digest_from_json(payload["digest"]), chart)
        plain = payload.get("plain") or payload.get("text")
        if not isinstance(plain, str) or not plain:
            raise ValueError(f"digest payload: no digest data and no plain text, got {plain!r}")
        blocks = payload.get("blocks")
        legacy = LegacyDigest(
            title=str(payload.get("title") or plain.splitlines()[0]), plain=plain,
            text=str(payload.get("text") or plain),
            blocks=tuple(b for b in blocks if isinstance(b, Mapping))
            if isinstance(blocks, list) else (),
        )  # fmt: skip
        return cls(None, chart, legacy)


@dataclass(frozen=True, slots=True)
class CustomerAtRisk:
    """A good customer slipping (``bot.chat.customer_alerts``): the segment move the
    recompute at ``moved_at`` (unix seconds) recorded, the figures that explain it, and
    ``text``, the plain sentence ("last order 94 days ago, usually every 21 days; …")."""

    kind: ClassVar[Kind] = Kind.CUSTOMER_AT_RISK
    lead: LeadRef
    source: str
    to: str
    cell: str
    recency_days: float
    interval_days: float | None
    revenue: float
    currency: str
    moved_at: float
    text: str

    def to_payload(self) -> dict[str, Any]:
        return {
            "lead": self.lead.to_json(), "from": self.source, "to": self.to, "cell": self.cell,
            "recency_days": self.recency_days, "interval_days": self.interval_days,
            "revenue": self.revenue, "currency": self.currency, "moved_at": self.moved_at,
            "text": self.text,
        }  # fmt: skip

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CustomerAtRisk:
        interval = payload.get("interval_days")
        return cls(
            LeadRef.from_json(payload["lead"]), str(payload["from"]), str(payload["to"]),
            str(payload.get("cell") or ""), float(payload["recency_days"]),
            None if interval is None else float(interval), float(payload["revenue"]),
            str(payload["currency"]), float(payload["moved_at"]), str(payload["text"]),
        )  # fmt: skip


Message = (
    AlertMessage
    | SlaReminder
    | SlaEscalation
    | CoolingMessage
    | ProposalMessage
    | DigestMessage
    | CustomerAtRisk
)

_DECODERS: dict[Kind, Any] = {
    Kind.ALERT: AlertMessage.from_payload,
    Kind.SLA_REMINDER: SlaReminder.from_payload,
    Kind.SLA_ESCALATION: SlaEscalation.from_payload,
    Kind.COOLING: CoolingMessage.from_payload,
    Kind.PROPOSAL: ProposalMessage.from_payload,
    Kind.MODEL_APPLIED: ProposalMessage.from_payload,
    Kind.DIGEST: DigestMessage.from_payload,
    Kind.CUSTOMER_AT_RISK: CustomerAtRisk.from_payload,
}


class UnknownKind(ValueError):
    """An outbox kind this version does not know."""


def decode(kind: str, payload: Mapping[str, Any]) -> Message:
    """The typed message of an outbox row. ``UnknownKind`` for a kind no type is for;
    ``ValueError`` naming the kind and the problem for a payload that is not one."""
    try:
        known = Kind(kind)
    except ValueError:
        names = ", ".join(k.value for k in Kind)
        raise UnknownKind(f"outbox kind {kind!r}: not one of {names}") from None
    try:
        message: Message = _DECODERS[known](payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{kind} payload: {exc!r}") from exc
    return message


def outbox_row(
    message: Message,
    *,
    destination: str,
    dedupe_key: str,
    now: float,
    lead_id: str | None = None,
) -> dict[str, Any]:
    """The outbox row (``storage.ingest.enqueue``) that delivers ``message`` to
    ``destination``; the dedupe key is cut to the column's 255 characters."""
    return {
        "kind": str(message.kind), "lead_id": lead_id, "destination": destination,
        "dedupe_key": dedupe_key[:255], "payload": message.to_payload(), "status": "pending",
        "attempts": 0, "available_at": now, "created_at": now,
    }  # fmt: skip


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
