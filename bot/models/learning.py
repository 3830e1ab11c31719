"""Feedback into weights, inside the running bot: refit every N labels, tell the managers,
act on their decision (or apply by policy).

``retrain_now`` is the one function the automatic trigger, a schedule and tests call: it
refits, stores a proposed version and, in the same transaction, queues the proposal for
the managers through the outbox (or, with ``auto_apply`` and better held-out metrics,
activates it at once and queues a notice instead). ``decide`` applies a manager's Approve or
Reject. Both are chat-agnostic: the messages are data (``bot.outbox.messages.ProposalMessage``) and
each chat adapter renders them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.routing import CONSOLE
from bot.models.label_weights import describe_sources
from bot.models.rescore import RescoreAlerts
from bot.models.versions import (
    RetrainResult,
    activate,
    improved,
    metric_lines,
    retrain,
)
from bot.outage import Backoff
from bot.outbox.messages import Kind, ProposalMessage, RuleChange, outbox_row
from bot.throttle import Throttled
from config.learning import Learning
from config.loader import LeadbotConfig
from storage import labels as stored_labels
from storage import models as repo
from storage import offloop
from storage.health import is_outage
from storage.ingest import enqueue
from storage.models import Status

log = logging.getLogger(__name__)

PROPOSAL = Kind.PROPOSAL
APPLIED = Kind.MODEL_APPLIED


AUTO = "auto_apply"


@dataclass(frozen=True)
class Decision:
    """What a manager's click (or ``auto_apply``) did to a proposed version. ``done`` is
    False when it was decided before (``status``, ``by``: what and who, then)."""

    version_id: int
    approved: bool
    done: bool
    by: str | None
    status: str
    previous_id: int | None = None
    leads: int = 0
    history: int = 0


def describe(decision: Decision, person: Callable[[str | None], str] = str) -> str:
    """The decision in one sentence; ``person`` shows an actor ref (``slack:U1`` → a mention)."""
    v = f"Model v{decision.version_id}"
    if decision.status == Status.SUPERSEDED:
        return f"{v} was {decision.by} before anyone decided: decide on that one."
    if not decision.done:
        who = f" by {person(decision.by)}" if decision.by else ""
        return f"{v} was already decided{who}: it is {decision.status}."
    if not decision.approved:
        return f"{v} rejected by {person(decision.by)}. The active model stays."
    how = "applied automatically (its held-out metrics improved)"
    if decision.by != AUTO:
        how = f"approved by {person(decision.by)}"
    return (
        f"{v} {how}; active now (was v{decision.previous_id}): {decision.leads} leads "
        f"rescored, {decision.history} score changes recorded, no alerts sent."
    )


def manager_destinations(
    learning: Learning,
    managers: Sequence[str],
    default_channel: str | None,
    *,
    teams: bool = False,
) -> tuple[str, ...]:
    """Where proposals go. In Slack (``default_channel`` set): the proposals channel, else
    each manager's DM (user ids; a user group cannot be messaged). In Teams (``teams``):
    each ``teams:<AAD object id>`` manager's 1:1 chat. With no manager to reach: the
    default channel of each platform that is on; the console with neither."""
    if default_channel is None and not teams:
        return (CONSOLE,)
    out: list[str] = []
    if default_channel is not None:
        if learning.proposals_channel:
            out.append(f"slack:{learning.proposals_channel}")
        else:
            out.extend(f"slack:@{m}" for m in managers if m[0] in "UW")
    if teams:
        out.extend(f"teams:user:{m.removeprefix('teams:')}" for m in managers
                   if m.startswith("teams:"))  # fmt: skip
    if out:
        return tuple(out)
    fallback = [f"slack:{default_channel}"] if default_channel is not None else []
    return tuple(fallback + (["teams:default"] if teams else []))


def proposal_message(
    result: RetrainResult, *, model_labels: Mapping[str, str], decision: str | None = None
) -> ProposalMessage:
    """The proposal for the managers: rule changes with their labels, the held-out metrics
    before → after, and a fallback text; with ``decision``, the notice that it was applied."""
    p = result.proposal
    assert result.version_id is not None
    labels = {**model_labels, **{r["id"]: new_rule_label(r) for r in result.new_rules}}
    changes = tuple(
        RuleChange(rid, labels.get(rid, rid), old, new) for rid, (old, new) in p.changes.items()
    )
    version, base = result.version_id, result.base_id
    sources = describe_sources(dict(result.sources), result.set_aside)
    used = f" ({sources})" if sources else ""
    return ProposalMessage(
        version=version, base=base, labels=p.labels, changes=changes,
        intercept=p.model.intercept, points_per_logodds=p.model.points_per_logodds,
        metrics=tuple(metric_lines(p.metrics_before, p.metrics_after)), improved=improved(p),
        text=f"Model v{version} proposed: a refit of v{base} on {p.labels} labels{used}, "
        f"{len(changes)} rule(s) changed. Approve or reject it.",
        decision=decision, sources=sources,
    )  # fmt: skip


def new_rule_label(rule: Mapping[str, Any]) -> str:
    """``New: Lead Source is Reference (40 labels, 80% won)``: a new rule in the diff; a
    scale's reads ``(482 labels; 4% won in the lowest quarter, 31% in the highest)``."""
    if "won_highest_quarter" in rule:
        low, high = rule["won_lowest_quarter"], rule["won_highest_quarter"]
        ends = f"{low:.0%} won in the lowest quarter, {high:.0%} in the highest"
        return f"New: {rule['label']} ({rule['support']} labels; {ends})"
    return f"New: {rule['label']} ({rule['support']} labels, {rule['won_rate']:.0%} won)"


def proposal_payload(result: RetrainResult, *, model_labels: Mapping[str, str]) -> dict[str, Any]:
    """``proposal_message`` as the outbox row stores it."""
    return proposal_message(result, model_labels=model_labels).to_payload()


def count_labels(conn: Connection, labels: Mapping[str, float]) -> int:
    """Feedback rows whose outcome is a label, reps' and CRMs' alike (a CRM outcome that
    sets a rep's label aside is still a new label: it triggers a refit as one)."""
    return stored_labels.count_labels(conn, outcomes=list(labels))


async def retrain_now(
    *,
    engine: AsyncEngine,
    config: LeadbotConfig,
    destinations: Sequence[str],
    now: float,
    created_by: str = "retrain",
    alerts: RescoreAlerts | None = None,
) -> tuple[RetrainResult, Decision | None]:
    """Refit; store and announce a proposal, or apply it at once under ``auto_apply`` when
    its held-out metrics improve. Returns the result and, when applied, the decision."""
    learning = config.learning
    labels = {r.id: r.label for r in config.model.rules}

    def announce(conn: Connection, result: RetrainResult) -> None:
        if result.version_id is None:
            return
        message = proposal_message(result, model_labels=labels)
        if learning.auto_apply and message.improved:
            return  # announced once applied, below
        _queue(conn, message, destinations, now)

    result = await retrain(
        engine=engine, config_model=config.model, guardrails=learning.guardrails, now=now,
        created_by=created_by, labels=learning.labels, then=announce,
        crm_weight=config.crm.label_weight, discovery=learning.discovery,
        excluded=learning.exclude_traits, label_weights=learning.weights,
    )  # fmt: skip
    if result.version_id is None or not (learning.auto_apply and improved(result.proposal)):
        return result, None
    decision = await decide(
        engine=engine, version_id=result.version_id, approve=True, by=AUTO,
        now=now, history_delta=config.alerts.history_min_delta, alerts=alerts,
    )  # fmt: skip
    applied = proposal_message(result, model_labels=labels, decision=describe(decision))
    await offloop.write(engine, _queue, applied, destinations, now)
    return result, decision


# What a retrain did, for scripts (``leadbot retrain --json``).
PROPOSED, AUTO_APPLIED, NO_BETTER = "proposed", "applied", "no better"
NOT_ENOUGH, NO_CHANGE = "not enough labels", "no change"


def retrain_status(result: RetrainResult, decision: Decision | None) -> str:
    """``applied`` (``auto_apply`` activated it), ``proposed`` (stored, better on the
    held-out labels), ``no better`` (stored, not better: a manager may still approve it),
    ``not enough labels`` (too few, or one outcome only) or ``no change``."""
    if result.version_id is None:
        reason = result.proposal.reason or ""
        return NO_CHANGE if "agree with the current model" in reason else NOT_ENOUGH
    if decision is not None and decision.done and decision.approved:
        return AUTO_APPLIED
    return PROPOSED if improved(result.proposal) else NO_BETTER


def retrain_summary(
    result: RetrainResult, decision: Decision | None, model_labels: Mapping[str, str]
) -> dict[str, Any]:
    """``{"version", "status", "labels", "auc_before", "auc_after", "new_rules",
    "reweighted"}``: ``version`` None when nothing was stored, AUCs on the held-out labels
    (None when undefined), ``reweighted`` each changed rule's points, ``new_rules`` the
    rules the proposal adds (id, label, points, support, won rate)."""
    p = result.proposal

    def auc(metrics: Mapping[str, float]) -> float | None:
        value = metrics.get("roc_auc")
        return None if value is None or math.isnan(value) else round(float(value), 4)

    added = {rule["id"] for rule in result.new_rules}
    return {
        "version": result.version_id,
        "status": retrain_status(result, decision),
        "labels": p.labels,
        "auc_before": auc(p.metrics_before),
        "auc_after": auc(p.metrics_after),
        "new_rules": [dict(rule) for rule in result.new_rules],
        "reweighted": [
            {"rule": rid, "label": model_labels.get(rid, rid), "from": old, "to": new}
            for rid, (old, new) in p.changes.items()
            if rid not in added
        ],
        "reason": p.reason,
    }


def _queue(
    conn: Connection, message: ProposalMessage, destinations: Sequence[str], now: float
) -> None:
    key = f"{message.kind}:v{message.version}"
    rows = [
        outbox_row(message, destination=dest, dedupe_key=f"{key}:{dest}", now=now)
        for dest in destinations
    ]
    enqueue(conn, rows=rows)


async def decide(
    *,
    engine: AsyncEngine,
    version_id: int,
    approve: bool,
    by: str,
    now: float,
    history_delta: float,
    alerts: RescoreAlerts | None = None,
) -> Decision:
    """Approve (activate and rescore every lead) or reject a proposed version. A version
    someone already decided is left as it is, and the decision says who did what. Raises
    LookupError for an unknown version."""
    async with engine.connect() as conn:
        version = await conn.run_sync(lambda c: repo.get_version(c, version_id))
    if version is None:
        raise LookupError(f"model version {version_id}: no such version")
    if version.status != Status.PROPOSED:
        return Decision(version_id, approve, False, version.approved_by, version.status)
    try:
        if not approve:
            async with engine.begin() as conn:
                await conn.run_sync(lambda c: repo.reject(c, version_id=version_id, by=by))
            return Decision(version_id, False, True, by, Status.REJECTED)
        done = await activate(
            engine=engine, version_id=version_id, by=by, now=now,
            history_delta=history_delta, only_if=Status.PROPOSED, alerts=alerts,
        )  # fmt: skip
    except ValueError:  # another manager decided between our read and our write
        async with engine.connect() as conn:
            version = await conn.run_sync(lambda c: repo.get_version(c, version_id))
        assert version is not None
        return Decision(version_id, approve, False, version.approved_by, version.status)
    return Decision(
        version_id, True, True, by, Status.ACTIVE, done.previous_id, done.leads, done.history
    )


class Learner:
    """Refits in the background after feedback: ``wake()`` after a label is stored; when
    ``retrain_every`` labels arrived since the last refit, ``retrain_now`` runs. Off when
    ``retrain_every`` is 0."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        config: LeadbotConfig,
        destinations: Sequence[str],
        clock: Callable[[], float],
        on_queued: Callable[[], None] = lambda: None,
        alerts: RescoreAlerts | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.engine, self.config, self.destinations = engine, config, tuple(destinations)
        self.clock, self.on_queued, self.alerts = clock, on_queued, alerts
        self.backoff = backoff or Backoff()
        self._woken = asyncio.Event()
        self._outage = Throttled(log, period=300.0)
        # After a refit that stored nothing: the label count at which to try again.
        self._next_at = 0

    def wake(self) -> None:
        self._woken.set()

    async def due(self) -> bool:
        every = self.config.learning.retrain_every
        if every <= 0:
            return False
        labels = self.config.learning.labels

        def read(conn: Connection) -> tuple[int, int]:
            return count_labels(conn, labels), repo.labels_fitted(conn)

        async with self.engine.connect() as conn:
            total, fitted = await conn.run_sync(read)
        return total - fitted >= every and total >= self._next_at

    async def run_once(self) -> RetrainResult | None:
        if not await self.due():
            return None
        result, _ = await retrain_now(
            engine=self.engine, config=self.config, destinations=self.destinations,
            now=self.clock(), created_by="auto", alerts=self.alerts,
        )  # fmt: skip
        if result.version_id is None:
            # Too few labels: try as soon as there are enough; otherwise (one outcome only,
            # or nothing to change) wait for another `retrain_every` labels.
            labels, least = result.proposal.labels, self.config.learning.guardrails.min_labels
            self._next_at = least if labels < least else labels + self.config.learning.retrain_every
            log.info("automatic refit stored nothing: %s", result.proposal.reason)
        else:
            log.info("automatic refit stored model v%d", result.version_id)
            self.on_queued()
        return result

    async def decide(self, version_id: int, *, approve: bool, by: str) -> Decision:
        """A manager's decision on a proposal (``decide``), with this bot's alerts policy."""
        decision = await decide(
            engine=self.engine, version_id=version_id, approve=approve, by=by,
            now=self.clock(), history_delta=self.config.alerts.history_min_delta,
            alerts=self.alerts,
        )  # fmt: skip
        if decision.done and decision.approved:
            self.on_queued()  # the rescore may have queued alerts
        return decision

    async def run(self) -> None:
        while True:
            await self._woken.wait()
            self._woken.clear()
            try:
                await self.run_once()
            except Exception as exc:
                if not is_outage(exc):  # a bug: the next label tries again; the bot goes on
                    log.exception("automatic refit failed")
                    continue
                # The labels that woke it are stored: try again when the database is back,
                # not only when yet another label comes.
                self._outage.failed("refit", "automatic refit waits for the database (%r)", exc)
                await asyncio.sleep(self.backoff.next())
                self._woken.set()
            else:
                self.backoff.reset()
                self._outage.recovered("refit", "automatic refit reaches the database")


@contextlib.asynccontextmanager
async def running_learner(learner: Learner) -> AsyncIterator[Learner]:
    task = asyncio.create_task(learner.run())
    learner.wake()  # labels may have arrived while the bot was down
    try:
        yield learner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
