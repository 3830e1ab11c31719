"""``leadbot feedback``: a lead's outcome from the terminal, one at a time or a CSV of them.

The rows are the chat buttons' rows: ``bot.chat.actions.judge`` stores the label with the
features the active model sees (the same snapshot the learner fits on), by ``cli:NAME``.
A CSV backfill is idempotent: a row whose lead already has that outcome at that time (or,
without an ``at`` column, that outcome at all) is skipped, so running it twice adds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.chat.actions import canonical_reason, disqualify_reason, judge, lead_label
from bot.chat.lookup import closest
from bot.chat.messages import Actor, DisqualifyReason, Outcome
from bot.cli_commands import help_of
from bot.models.edges import BandEdges
from bot.models.versions import active_model
from config.loader import load_config
from config.settings import load_settings
from scoring import Model
from scoring.bands import Thresholds
from storage.engine import create_engine, session_factory
from storage.feedback import count_labels
from storage.leads import find_lead, lead_feedback
from storage.migrate import upgrade
from storage.tables import Lead

OUTCOMES = ", ".join(o.value for o in Outcome)
REASONS = ", ".join(r.value for r in DisqualifyReason)
NOT_MATCHED = 1  # exit status when a lead or a row could not be matched
PROGRESS_EVERY = 100  # rows between progress lines on stderr (and commits)


class RowError(ValueError):
    """A label that cannot be stored as given; the message says why."""


@dataclass(frozen=True)
class Label:
    """One judgement to store: the lead's key, the outcome, the stored reason text, and
    its time (unix seconds; None: now)."""

    key: str
    outcome: Outcome
    reason: str | None
    at: float | None = None


# A CRM or spreadsheet export says whether a lead converted as 1/0, yes/no or true/false:
# the same words ``leadbot learn`` reads in an outcome column.
ALIASES = {
    **dict.fromkeys(("1", "yes", "y", "true", "converted"), Outcome.WON),
    **dict.fromkeys(("0", "no", "n", "false"), Outcome.LOST),
}


def outcome_of(word: str) -> Outcome:
    key = word.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    try:
        return Outcome(key)
    except ValueError:
        raise RowError(
            f"outcome {word!r} is not one of {OUTCOMES} (or 1/0, yes/no, true/false: won/lost)"
        ) from None


def reason_of(outcome: Outcome, reason: str | None, note: str | None) -> str | None:
    """The reason as stored, as the chat form stores it: a disqualification needs a known
    reason (``no budget``…), the note after it; other outcomes keep free text."""
    if outcome is Outcome.DISQUALIFIED:
        try:
            return disqualify_reason(reason, note)
        except ValueError:
            raise RowError(f"a disqualification needs --reason, one of: {REASONS}") from None
    text = "; ".join(p.strip() for p in (reason, note) if p and p.strip())
    return canonical_reason(outcome, text)


def time_of(text: str) -> float:
    """An ISO time (``2026-03-04`` or ``2026-03-04T10:00:00+01:00``; naive means UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RowError(f"at {text!r} is not an ISO time (2026-03-04T10:00:00Z)") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def actor_of(by: str | None) -> Actor:
    """``cli:NAME``: ``--by``, else the login name."""
    name = (by or os.environ.get("USER") or getpass.getuser() or "cli").strip()
    return Actor(platform="cli", user_id=name, name=name)


class Recorder:
    """Stores labels with the active model's features and the live band edges, as the
    chat commands do (``bot.chat.commands``)."""

    def __init__(self, model: Model, thresholds: Thresholds | None, actor: Actor) -> None:
        self.model, self.thresholds, self.actor = model, thresholds, actor

    @classmethod
    async def start(cls, engine: AsyncEngine, configured: Model, actor: Actor) -> Recorder:
        active = await active_model(engine)
        model = configured if active is None else active[1]
        edges = BandEdges(model.bands)
        thresholds = await edges.refresh(engine) if edges.live else None
        return cls(model, thresholds, actor)

    async def record(self, session: AsyncSession, lead: Lead, label: Label, now: float) -> bool:
        """Store the label unless the lead has it already (see the module); flushes, does
        not commit. True when stored."""
        for row in await lead_feedback(session, lead_id=lead.id):
            same_time = label.at is None or abs(row.at.timestamp() - label.at) < 1e-3
            if row.outcome == label.outcome.value and same_time:
                return False
        await judge(
            session, lead=lead, outcome=label.outcome, reason=label.reason, actor=self.actor,
            model=self.model, now=now if label.at is None else label.at,
            thresholds=self.thresholds,
        )  # fmt: skip
        return True


async def _not_found(session: AsyncSession, key: str) -> str:
    close = await closest(session, key=key)
    hint = "; ".join(lead.email or lead.id for lead in close)
    return f"no lead {key!r}" + (f" (closest: {hint})" if hint else "")


async def _engine(database_url: str) -> AsyncEngine:
    engine = create_engine(database_url)
    await upgrade(engine)
    return engine


async def feedback_one(
    database_url: str, configured: Model, label: Label, actor: Actor, *, now: float
) -> int:
    """``leadbot feedback KEY OUTCOME``: store one label; 1 when no lead matches."""
    engine = await _engine(database_url)
    try:
        recorder = await Recorder.start(engine, configured, actor)
        async with session_factory(engine)() as session:
            lead = await find_lead(session, key=label.key)
            if lead is None:
                sys.stderr.write(f"leadbot: {await _not_found(session, label.key)}\n")
                return NOT_MATCHED
            stored = await recorder.record(session, lead, label, now)
            await session.commit()
            total = await count_labels(session)
    finally:
        await engine.dispose()
    because = f" ({label.reason})" if label.reason else ""
    if not stored:
        sys.stdout.write(f"{lead_label(lead)} already has {label.outcome.value}: not stored\n")
        return 0
    sys.stdout.write(
        f"recorded {label.outcome.value}{because} for {lead_label(lead)} by {actor.ref} — "
        f"{total} label{'' if total == 1 else 's'} collected\n"
    )
    return 0


def read_labels(path: Path) -> Iterator[tuple[int, Label | RowError]]:
    """(line, label or what is wrong with the row) per data row of the CSV."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        key_column = columns.get("email") or columns.get("id")
        if key_column is None or "outcome" not in columns:
            raise RowError(f"{path}: needs columns email (or id) and outcome; has {columns}")
        for row in reader:
            yield reader.line_num, _label(row, columns, key_column)


def _label(row: dict[str, Any], columns: dict[str, str], key_column: str) -> Label | RowError:
    def cell(name: str) -> str:
        return (row.get(columns[name]) or "").strip() if name in columns else ""

    key = (row.get(key_column) or "").strip()
    if not key:
        return RowError(f"no {key_column}")
    try:
        outcome = outcome_of(cell("outcome"))
        reason = reason_of(outcome, cell("reason") or None, cell("note") or None)
        at = time_of(cell("at")) if cell("at") else None
    except RowError as exc:
        return exc
    return Label(key=key, outcome=outcome, reason=reason, at=at)


@dataclass
class Tally:
    stored: int = 0
    present: int = 0
    failed: int = 0


async def _store_row(
    session: AsyncSession, recorder: Recorder, label: Label | RowError, tally: Tally, now: float
) -> str | None:
    """Store one row's label, counting it in ``tally``; what went wrong, if anything."""
    if isinstance(label, RowError):
        return str(label)
    lead = await find_lead(session, key=label.key)
    if lead is None:
        return await _not_found(session, label.key)
    if await recorder.record(session, lead, label, now):
        tally.stored += 1
    else:
        tally.present += 1
    return None


async def feedback_file(
    database_url: str, configured: Model, path: Path, actor: Actor, *, now: float
) -> int:
    """``leadbot feedback --file labels.csv``: store every row it can; report the rest by
    line. 0 when every row matched, 1 otherwise."""
    rows = list(read_labels(path))
    tally, problems = Tally(), []
    engine = await _engine(database_url)
    try:
        recorder = await Recorder.start(engine, configured, actor)
        async with session_factory(engine)() as session:
            for done, (line, label) in enumerate(rows, start=1):
                problem = await _store_row(session, recorder, label, tally, now)
                if problem is not None:
                    problems.append(f"{path}:{line}: {problem}")
                if done % PROGRESS_EVERY == 0 or done == len(rows):
                    await session.commit()  # a long backfill keeps what it stored so far
                    sys.stderr.write(f"  {done}/{len(rows)} rows\n")
    finally:
        await engine.dispose()
    for problem in problems:
        sys.stderr.write(f"{problem}\n")
    sys.stdout.write(
        f"{path}: {len(rows)} rows — {tally.stored} labels stored, {tally.present} already "
        f"there, {len(problems)} not matched\n"
    )
    return NOT_MATCHED if problems else 0


def cmd_feedback(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.feedback_parser
    if args.file is not None:
        if args.lead is not None or args.outcome is not None:
            parser.error("give EMAIL|ID OUTCOME or --file, not both")
    elif args.lead is None or args.outcome is None:
        parser.error("give EMAIL|ID and an outcome, or --file labels.csv")
    settings = load_settings()
    config = load_config(args.config or settings.config_path)
    actor = actor_of(args.by)
    url, model = settings.database_url, config.model
    if args.file is not None:
        try:
            return asyncio.run(feedback_file(url, model, Path(args.file), actor, now=time.time()))
        except (OSError, RowError) as exc:
            sys.stderr.write(f"leadbot: {exc}\n")
            return 2
    try:
        outcome = outcome_of(str(args.outcome))  # both given: checked above
        label = Label(str(args.lead), outcome, reason_of(outcome, args.reason, args.note))
    except RowError as exc:
        parser.error(str(exc))
    return asyncio.run(feedback_one(url, model, label, actor, now=time.time()))


def register(sub: Any) -> None:
    f = sub.add_parser(
        "feedback",
        help=help_of("feedback"),
        description="Store a label with the lead's features, as /lead feedback does. "
        "A CSV has columns email (or id), outcome, and optional reason, note, at (ISO time); "
        "an outcome of 1/0, yes/no or true/false reads as won/lost; "
        "re-running a file adds nothing.",
    )
    f.add_argument("lead", nargs="?", metavar="EMAIL|ID", help="the lead's e-mail or id")
    f.add_argument("outcome", nargs="?", metavar="OUTCOME", help=f"{OUTCOMES} (1/0: won/lost)")
    f.add_argument("--reason", help=f"why; a disqualification needs one of: {REASONS}")
    f.add_argument("--note", help="free text stored after the reason")
    f.add_argument("--by", metavar="NAME", help="who judged (default: $USER); stored as cli:NAME")
    f.add_argument("--file", metavar="CSV", help="store every row of a labels CSV")
    f.add_argument("--config", help="scoring model YAML (LEADBOT_CONFIG, default: bundled)")
    f.set_defaults(func=cmd_feedback, feedback_parser=f)
