"""``leadbot forget`` and ``leadbot export``: one person's data, deleted or printed.

``forget`` finds the person (``storage.privacy.find_person``), says what it would delete,
asks (or needs ``--yes``), deletes their posted alerts in Slack (``chat.delete``) and Teams
(the Bot Connector's delete activity) when credentials are set, then deletes them from the
database in one transaction and leaves no copy in the file (``secure_wipe``). Chat comes
first: a failed database step can be run again, whereas the alert posts' addresses are gone
once their rows are. A chat deletion that fails is reported, not fatal.

Feedback keeps the label for learning under a pseudonym chosen so that the label stays in
the A/B cohort it was counted in (the cohort is a hash of the lead id).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.chat.actions import split_reason
from bot.cli_commands import help_of
from bot.models.live import cohort
from config.settings import Settings, load_settings
from storage import abtests
from storage.engine import create_engine
from storage.migrate import upgrade
from storage.privacy import (
    PSEUDONYM_PREFIX,
    Forgotten,
    Person,
    PostedMessage,
    Wipe,
    count_person,
    export_person,
    find_person,
    forget_person,
    posted_messages,
    secure_delete,
    secure_wipe,
)

log = logging.getLogger(__name__)

NOT_FOUND = 1
USAGE = 2
PSEUDONYM_TRIES = 10_000


def register(subparsers: Any, erasers: Callable[[], Erasers]) -> None:
    """Add ``forget`` and ``export`` to the CLI; ``erasers`` gives the chat platforms'
    deletions (the composition root knows them)."""

    def cmd_forget(args: argparse.Namespace) -> int:
        settings = load_settings()
        return asyncio.run(forget_command(settings, args.key, yes=args.yes, erasers=erasers()))

    f = subparsers.add_parser("forget", help=help_of("forget"))
    f.add_argument("key", metavar="EMAIL|ID", help="e-mail (any case), lead id, userId or anon:…")
    f.add_argument("--yes", action="store_true", help="do it without asking")
    f.set_defaults(func=cmd_forget)
    e = subparsers.add_parser("export", help=help_of("export"))
    e.add_argument("key", metavar="EMAIL|ID", help="e-mail (any case), lead id, userId or anon:…")
    e.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    return asyncio.run(export_command(load_settings(), args.key))


def _unknown(key: str, err: TextIO) -> int:
    err.write(
        f"leadbot: no person stored under {key!r} (looked for a lead id, an e-mail in any case, "
        "a userId and identity keys); nothing was changed\n"
    )
    return NOT_FOUND


async def _engine(settings: Settings) -> AsyncEngine:
    engine = create_engine(settings.database_url)
    await upgrade(engine)  # a fresh install answers "no such person", not "no such table"
    return engine


async def export_command(
    settings: Settings, key: str, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    engine = await _engine(settings)
    try:
        async with engine.connect() as conn:
            person = await find_person(conn, key)
            if person is None:
                return _unknown(key, err)
            document = await export_person(conn, person)
    finally:
        await engine.dispose()
    out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


# -- forget ---------------------------------------------------------------------------


@dataclass
class ChatResult:
    """Posted alerts deleted in chat, already gone, or not deleted (with why)."""

    deleted: int = 0
    gone: int = 0
    failed: list[str] = field(default_factory=list)


async def forget_command(
    settings: Settings,
    key: str,
    *,
    yes: bool,
    erasers: Erasers,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    engine = await _engine(settings)
    try:
        async with engine.connect() as conn:
            person = await find_person(conn, key)
            if person is None:
                return _unknown(key, err)
            counts = await count_person(conn, person)
            posts = await posted_messages(conn, person)
        out.write(_plan(person, counts, posts))
        if not yes:
            refused = _confirm(stdin, out, err)
            if refused is not None:
                return refused
        chat = await delete_posts(settings, engine, posts, erasers)
        forgotten = await _forget(engine, key)
        if forgotten is None:  # gone between the question and the answer
            return _unknown(key, err)
        wipe = await secure_wipe(engine, _touched(forgotten))
    finally:
        await engine.dispose()
    out.write(_summary(forgotten, chat, wipe))
    return 0


def _confirm(stdin: TextIO, out: TextIO, err: TextIO) -> int | None:
    """None to go on; else the exit code (refused, or declined)."""
    if not stdin.isatty():
        err.write(
            "usage: leadbot forget EMAIL|ID --yes  (stdin is not a terminal, so there is "
            "nobody to ask: add --yes to delete); nothing was changed\n"
        )
        return USAGE
    out.write("Forget this person everywhere? This cannot be undone. Type yes to go on: ")
    out.flush()
    if stdin.readline().strip().lower() != "yes":
        out.write("nothing was changed\n")
        return NOT_FOUND
    return None


async def _forget(engine: AsyncEngine, key: str) -> Forgotten | None:
    async with engine.begin() as conn:
        await secure_delete(conn)
        person = await find_person(conn, key)  # again, inside the transaction that deletes
        if person is None:
            return None
        shares = await conn.run_sync(abtests.test_shares)
        return await forget_person(
            conn, person, pseudonym=lambda lead_id: same_cohort_pseudonym(lead_id, shares),
            keep_reason=known_reason,
        )  # fmt: skip


def same_cohort_pseudonym(lead_id: str, shares: Sequence[float]) -> str:
    """``forgotten:<uuid4>`` in the same A/B cohort as ``lead_id`` for every test's share,
    so cohort statistics of past and running tests do not move; any pseudonym if none is
    found (shares a hair apart)."""
    wanted = [cohort(lead_id, share) for share in shares]
    for _ in range(PSEUDONYM_TRIES):
        alias = f"{PSEUDONYM_PREFIX}{uuid.uuid4()}"
        if [cohort(alias, share) for share in shares] == wanted:
            return alias
    return f"{PSEUDONYM_PREFIX}{uuid.uuid4()}"


def known_reason(reason: str | None) -> str | None:
    """The canonical disqualification reason a feedback reason starts with (``no budget``);
    the free text after it is dropped, since it may say anything about the person."""
    if not reason:
        return None
    found, _rest = split_reason(reason)
    return None if found is None else found.value


def _touched(forgotten: Forgotten) -> list[str]:
    names = [t for t, n in forgotten.deleted.items() if n]
    names += [t for t, n in forgotten.redacted.items() if n and t not in names]
    return names + (["feedback"] if forgotten.pseudonymised else [])


# -- chat -----------------------------------------------------------------------------


class Eraser(Protocol):
    """Deletes posted messages on one chat platform, noting each outcome in ``result``."""

    async def __call__(
        self, settings: Settings, engine: AsyncEngine, posts: Sequence[PostedMessage],
        result: ChatResult,
    ) -> None: ...  # fmt: skip


Erasers = Mapping[str, Eraser]
"""Per platform (``slack``, ``teams``): handed in by the composition root (``bot/cli.py``)."""


async def delete_posts(
    settings: Settings, engine: AsyncEngine, posts: Sequence[PostedMessage], erasers: Erasers
) -> ChatResult:
    result = ChatResult()
    for platform in sorted({p.platform for p in posts}):
        mine = [p for p in posts if p.platform == platform]
        eraser = erasers.get(platform)
        if eraser is None:
            result.failed += [f"{platform} {p.channel} {p.ts}: unknown platform" for p in mine]
        else:
            await eraser(settings, engine, mine, result)
    return result


# -- output ---------------------------------------------------------------------------


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items() if n) or "nothing"


def _plan(person: Person, counts: dict[str, int], posts: Sequence[PostedMessage]) -> str:
    feedback = counts.pop("feedback", 0)
    lines = [
        f"person {person.key!r}: lead(s) {', '.join(person.lead_ids)}",
        f"  would delete: {_counts(counts)}",
    ]
    if feedback:
        lines.append(f"  would keep {feedback} feedback label(s) for learning, under a pseudonym")
    if posts:
        lines.append(f"  would delete {len(posts)} posted alert(s) in chat")
    return "\n".join(lines) + "\n"


def _summary(forgotten: Forgotten, chat: ChatResult, wipe: Wipe) -> str:
    person = forgotten.person
    lines = [
        f"forgot {person.key!r}: lead(s) {', '.join(person.lead_ids)}",
        f"  deleted rows: {_counts(forgotten.deleted)}",
        f"  feedback: {forgotten.pseudonymised} label(s) kept under a pseudonym (outcome, "
        "time and features only)",
    ]
    if any(forgotten.redacted.values()):
        lines.append(f"  mentions redacted in other rows: {_counts(forgotten.redacted)}")
    lines.append(
        f"  chat: {chat.deleted} posted alert(s) deleted, {chat.gone} already gone, "
        f"{len(chat.failed)} not deleted"
    )
    lines += [f"    not deleted: {failure}" for failure in chat.failed]
    lines += [f"  warning: {warning}" for warning in forgotten.warnings]
    lines.append(f"  database: {wipe.detail}")
    return "\n".join(lines) + "\n"
