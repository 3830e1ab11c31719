"""The ``managers`` and ``learning`` sections: who approves model versions, which feedback
counts as a label, when the bot refits, and the guardrails of a refit.

```yaml
managers: [U0123MGR, S0456LEADS]   # Slack user ids, user-group ids (S…), or
                                   # teams:<AAD object id> for a manager in Teams
learning:
  labels: {qualified: 1, won: 1, disqualified: 0, lost: 0}
  retrain_every: 50        # new labels between automatic refits; 0: only `leadbot retrain`
  auto_apply: false        # true: activate a proposal whose held-out metrics improve
  proposals_channel: "#sales-managers"   # default: the managers' DMs, else slack.default_channel
  guardrails: {min_labels: 30, max_change_points: 10, prior_strength: 1, points_step: 0.5}
  exclude_traits: [lifecycle_stage, lead_status, converted]   # never learnt from (leaks)
  new_rules: {max: 50, min_support: 10, reasons: [spam]}   # rules a refit may add; max 0: none
    # (at most 25, 10 of them pairs, below 2,000 labels; 25 and 10 more per thousand above)
    # ordinal: [campaign, pdays]   numeric traits whose new points only rise (or only fall)
    # pairs: 20                    of them "A and B" rules on two traits; 0: none
  weights:                 # a label's weight in a refit (default 1; a CRM: crm.label_weight)
    sources: {rep: 1, "crm:hubspot": 3}
    reasons: {bad timing: 0.5, spam: 1}   # a rep's disqualification, by its reason: × this
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from config.conditions import Strict
from config.errors import got
from config.routing import Channel, aad_object_id
from scoring.limits import Discovery, Guardrails
from scoring.snapshot import LEAKS

OutcomeName = Literal["qualified", "disqualified", "won", "lost"]
DEFAULT_LABELS: Mapping[str, float] = {
    "qualified": 1.0,
    "won": 1.0,
    "disqualified": 0.0,
    "lost": 0.0,
}
_MANAGER = re.compile(r"^[UWS][A-Z0-9]{2,}$")
TEAMS_MANAGER = "teams:"
# The Microsoft 365 Agents Playground's default user sends this aadObjectId: one digit more
# than a GUID, so no Entra user can have it and accepting it exactly grants nobody real
# anything; a real Teams turn (signed by the Bot Connector) never carries it. Accepted so a
# local tester can make that user a manager and try the proposal buttons (README: Teams).
PLAYGROUND_USER = "00000000-0000-0000-0000-0000000000020"


def _manager(value: str) -> str:
    if value.startswith(TEAMS_MANAGER):
        # A Teams manager is ``teams:<AAD object id>``, as Teams feedback refs are written.
        if value.removeprefix(TEAMS_MANAGER) == PLAYGROUND_USER:
            return value
        try:
            return TEAMS_MANAGER + aad_object_id(value.removeprefix(TEAMS_MANAGER))
        except ValueError:
            raise ValueError(
                got(
                    "teams: and an AAD object id like teams:00000000-0000-0000-0000-000000000000",
                    value,
                )
            ) from None
    if not _MANAGER.match(value):
        raise ValueError(
            got(
                "a Slack user id like U0123ABC, teams:<AAD object id> (Teams), or a "
                "user-group id like S0123ABC",
                value,
            )
        )
    return value


ManagerId = Annotated[str, AfterValidator(_manager)]


class GuardrailsSpec(Strict):
    """``scoring.limits.Guardrails``; its docstring says what each limit does."""

    min_labels: Annotated[int, Field(ge=1)] = Guardrails.min_labels
    max_change_points: Annotated[float, Field(ge=0)] = Guardrails.max_change_points
    prior_strength: Annotated[float, Field(ge=0)] = Guardrails.prior_strength
    points_step: Annotated[float, Field(gt=0)] = Guardrails.points_step
    rescale_ratio: Annotated[float, Field(ge=1)] = Guardrails.rescale_ratio
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = Guardrails.test_fraction

    def to_guardrails(self) -> Guardrails:
        return Guardrails(**self.model_dump())


# A rep's disqualify reasons (``bot.chat.messages.DisqualifyReason``; a test keeps them equal).
REASONS = ("bad fit", "no budget", "no need", "bad timing", "competitor", "spam")


def _reason(value: str) -> str:
    name = re.sub(r"[\s_\-]+", " ", value.strip().lower())
    if name not in REASONS:
        raise ValueError(got("a disqualify reason: " + ", ".join(REASONS), value))
    return name


def _source(value: str) -> str:
    if value != "rep" and not re.fullmatch(r"crm:[a-z][a-z0-9_]*", value):
        raise ValueError(got("rep, or crm:<name> such as crm:hubspot", value))
    return value


Reason = Annotated[str, AfterValidator(_reason)]
TraitName = Annotated[str, Field(min_length=1, max_length=200)]  # a path, dots between parts
Source = Annotated[str, AfterValidator(_source)]
Weight = Annotated[float, Field(ge=0, le=100)]


class NewRulesSpec(Strict):
    """``scoring.limits.Discovery``: how many rules a refit may add, on how many labels,
    the disqualify ``reasons`` whose labels may train negative rules of their own, the
    ``ordinal`` numeric traits whose new rules are "at least" steps on one side of zero
    (points that only rise, or only fall, with the value), and how many of the new rules
    may be ``pairs`` ("A and B" on two traits; within ``max``)."""

    max: Annotated[int, Field(ge=0, le=50)] = Discovery.max_rules
    min_support: Annotated[int, Field(ge=5)] = Discovery.min_support
    reasons: list[Reason] = Field(default_factory=list)
    ordinal: list[TraitName] = Field(default_factory=list)
    pairs: Annotated[int, Field(ge=0, le=50)] = Discovery.pairs

    def to_discovery(self) -> Discovery:
        return Discovery(
            max_rules=self.max, min_support=self.min_support, reasons=tuple(self.reasons),
            ordinal=tuple(self.ordinal), pairs=self.pairs,
        )  # fmt: skip


class WeightsSpec(Strict):
    """How much a label weighs in a refit: by ``sources`` (``rep``, ``crm:hubspot`` …; a
    CRM not named weighs ``crm.label_weight``) and, for a rep's disqualification, times the
    weight of its reason (``reasons``; 0 sets such labels aside)."""

    sources: dict[Source, Weight] = Field(default_factory=dict)
    reasons: dict[Reason, Weight] = Field(default_factory=dict)

    def to_weights(self) -> LabelWeights:
        return LabelWeights(dict(self.sources), dict(self.reasons))


@dataclass(frozen=True)
class LabelWeights:
    """The compiled ``learning.weights`` (``bot.models.label_weights.weigh`` applies them)."""

    sources: Mapping[str, float] = field(default_factory=dict)
    reasons: Mapping[str, float] = field(default_factory=dict)


class LearningSpec(Strict):
    # Only what differs from DEFAULT_LABELS; `to_learning` fills in the rest.
    labels: dict[OutcomeName, Literal[0, 1] | None] = Field(default_factory=dict)
    retrain_every: Annotated[int, Field(ge=0)] = 50
    auto_apply: bool = False
    proposals_channel: Channel | None = None
    guardrails: GuardrailsSpec = GuardrailsSpec()
    # Traits that set or follow from the outcome (a CRM's stage): a new rule never reads them.
    exclude_traits: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=lambda: list(LEAKS)
    )
    new_rules: NewRulesSpec = NewRulesSpec()
    weights: WeightsSpec = WeightsSpec()

    def to_learning(self) -> Learning:
        # An outcome the file leaves out keeps its default; `null` makes it teach nothing.
        labels = dict(DEFAULT_LABELS)
        for outcome, value in self.labels.items():
            if value is None:
                labels.pop(outcome, None)
            else:
                labels[outcome] = float(value)
        return Learning(
            labels=labels,
            retrain_every=self.retrain_every,
            auto_apply=self.auto_apply,
            proposals_channel=self.proposals_channel,
            guardrails=self.guardrails.to_guardrails(),
            exclude_traits=tuple(self.exclude_traits),
            discovery=self.new_rules.to_discovery(),
            weights=self.weights.to_weights(),
        )


@dataclass(frozen=True)
class Learning:
    """The compiled ``learning`` section."""

    labels: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    retrain_every: int = 50
    auto_apply: bool = False
    proposals_channel: str | None = None
    guardrails: Guardrails = field(default_factory=Guardrails)
    exclude_traits: tuple[str, ...] = LEAKS
    discovery: Discovery = field(default_factory=Discovery)
    weights: LabelWeights = field(default_factory=LabelWeights)
