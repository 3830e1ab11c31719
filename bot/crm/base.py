"""What a CRM connector is to the rest of leadbot: it writes scores to records, reads
outcomes from them, and says how close the CRM's API limits are.

The connectors (``bot.crm.hubspot``, ``bot.crm.salesforce``) wrap the CRMs' own Python
clients, which block: every call runs in a worker thread (``asyncio.to_thread``), never on
the event loop. The syncer (``bot.crm.sync``) decides when and how many; a connector only
speaks to its CRM and maps its answers onto these types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

CRMS = ("hubspot", "salesforce")
SOURCE_PREFIX = "crm:"
"""A CRM outcome's feedback ``source`` is ``crm:hubspot`` or ``crm:salesforce``."""


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    """A lead's current score, as written to its CRM record. Times are unix seconds."""

    lead_id: str
    email: str | None
    record_id: str | None  # the record linked before (crm_links), else found by e-mail
    score: float
    band: str
    grade: str
    probability: float
    reasons: str  # the top contributions on one line: "Requested a demo +30 · VP Sales +15"
    scored_at: float
    first_name: str | None = None  # for a CRM that must create the record (Salesforce
    last_name: str | None = None  # requires LastName and Company on a Lead)
    company: str | None = None


@dataclass(frozen=True, slots=True)
class Written:
    lead_id: str
    record_id: str
    record_url: str | None  # the record in the CRM's web app, for the alert's button


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: records written, and leads the CRM refused one by one (an
    invalid e-mail, a validation rule) with why. Leads in neither were not attempted."""

    written: list[Written] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


class CrmUnavailable(Exception):
    """The request as a whole failed and may work later: 429, 5xx, a timeout, a refused
    connection. ``retry_after`` is the CRM's ``Retry-After`` in seconds, when it gave one.
    Nothing in the request may be assumed written."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrmRefused(Exception):
    """The CRM refused the request as a whole and will until an admin acts: a bad or
    expired token (401), a missing scope or permission (403), a missing property or field
    (``leadbot crm setup``). The message says what to do."""


@dataclass(frozen=True, slots=True)
class CrmOutcome:
    """A won or lost record, to store as a label. ``ref`` is unique per CRM and outcome
    (``<record id>:<outcome>``, or a deal's ``deal:<id>:<contact id>:<outcome>``), so an
    import, a webhook and a pull that see the same outcome store it once."""

    crm: str
    record_id: str
    email: str | None
    outcome: str  # "won" | "lost"
    at: float
    reason: str  # what made it an outcome: "lifecycle stage customer", "deal 123 closedwon"
    ref: str
    traits: dict[str, Any] = field(default_factory=dict)  # for a lead leadbot never saw


@dataclass(frozen=True, slots=True)
class Changes:
    """Outcomes changed since a pull's cursor, and the cursor to store for the next pull."""

    outcomes: list[CrmOutcome]
    cursor: float


class Connector(Protocol):
    """One CRM. ``batch_size`` records per write request; ``min_interval`` seconds between
    two requests keeps the syncer under the CRM's rate limit."""

    name: str
    batch_size: int
    min_interval: float

    async def write_scores(self, updates: Sequence[ScoreUpdate]) -> WriteResult:
        """Write each update to its record (upsert by e-mail where the CRM can). Raises
        CrmUnavailable or CrmRefused when the request fails as a whole."""
        ...

    async def changed_outcomes(self, since: float | None, now: float) -> Changes:
        """Records changed since ``since`` (None: the first pull) that are outcomes."""
        ...

    def usage(self) -> str | None:
        """How much of the CRM's API allowance is used, from its last answer ("API
        calls today: 1,204 of 15,000"), or None when it does not say."""
        ...
