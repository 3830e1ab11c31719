"""Neutral messages: what commands and alerts say, before any chat platform renders it.

Commands (``bot/chat/commands.py``) return a ``Reply``; what goes through the outbox is a
typed message of ``bot/outbox/messages.py``. ``bot/slack/`` renders both as Block Kit,
``bot/teams/`` as Adaptive Cards, the console as text — a platform is a renderer and a
transport.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.chat.customer_reply import CustomerCard
    from bot.digest.content import Digest


class Outcome(StrEnum):
    """What a rep says of a lead. Qualified and won are positive labels for learning."""

    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    WON = "won"
    LOST = "lost"


class DisqualifyReason(StrEnum):
    BAD_FIT = "bad fit"
    NO_BUDGET = "no budget"
    NO_NEED = "no need"
    BAD_TIMING = "bad timing"
    COMPETITOR = "competitor"
    SPAM = "spam"


class Action(StrEnum):
    """The buttons on an alert."""

    CLAIM = "claim"
    QUALIFY = "qualify"
    DISQUALIFY = "disqualify"
    SNOOZE = "snooze"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: the platform, their id there, and a display name."""

    platform: str
    user_id: str
    name: str = ""

    @property
    def ref(self) -> str:
        """How feedback rows record them: ``slack:U123``."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A command's answer.

    ``text`` is always set: the whole answer for plain replies (confirmations, usage lines,
    errors), the fallback for rich ones. ``lead`` is a lead report
    (``bot.chat.lookup.lead_report``) to show as a card; ``leads`` a ranked list of lead
    summaries (``bot.admin.leads.lead_summary``) for ``top`` and pick lists; ``digest`` a
    manager digest (``bot.digest.content.Digest``), ``text`` then being its plain-text form.
    ``private``: only the asker sees it (the default); else it is posted in the channel.
    """

    text: str
    lead: Mapping[str, Any] | None = None
    leads: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    title: str = ""
    private: bool = True
    error: bool = False
    digest: Digest | None = None
    customer: CustomerCard | None = None  # ``/lead customer``: one customer's RFM report


def remaining_actions(*, outcome: str | None, claimed_by: str | None) -> tuple[Action, ...]:
    """The alert actions still useful, whatever the platform: none once a rep gave an
    outcome; no Claim once claimed."""
    if outcome is not None:
        return ()
    if claimed_by is not None:
        return (Action.QUALIFY, Action.DISQUALIFY, Action.SNOOZE)
    return tuple(Action)


def validate_outcome(outcome: str | None, field: str) -> None:
    """Refuse a state whose outcome is not an ``Outcome`` (a bug upstream), naming ``field``."""
    if outcome is not None and outcome not in set(Outcome):
        allowed = ", ".join(o.value for o in Outcome)
        raise ValueError(f"{field}: expected one of {allowed}, got {outcome!r}")
