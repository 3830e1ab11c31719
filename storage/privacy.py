"""One person's data: find it, export it, forget it.

A person is one or more lead rows (the lead their e-mail, userId or identity key names, and
any other lead carrying the same e-mail) with everything that points at them: identities
(their anonymous visitors' ``anon:`` keys included: a visitor who identified was folded into
the lead, events and all), events, score history, outbox messages, alert posts, claims (on
the lead row). Every table with a ``lead_id`` column counts, so a table added later is
covered without a change here. Feedback is the exception: the label and the feature
snapshot the refit reads stay, under a pseudonym, without the reason's free text.

Mentions elsewhere are redacted in place: the person's e-mail in other leads' events and
states, and their e-mail, name or quoted lead id in messages not about them (a digest
listing them). Queries take an ``AsyncConnection`` and never commit; ``secure_wipe``
rewrites a SQLite file so that deleted rows leave no copy in it or in its WAL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, String, Table, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from storage.event_tally import EVENTS, delete_events
from storage.tables import Feedback, Identity, Lead

LEADS: Table = Lead.__table__  # type: ignore[attr-defined]
IDENTITIES: Table = Identity.__table__  # type: ignore[attr-defined]
FEEDBACK: Table = Feedback.__table__  # type: ignore[attr-defined]

REDACTED = "[forgotten]"
PSEUDONYM_PREFIX = "forgotten:"
# What learning reads of a feedback row's snapshot (bot/actions.features_at writes it;
# bot/versions.labelled_features, bot/abtest and storage/digests read it): no trait is in
# it, and no other key is kept (the ``lead`` snapshot of traits and events goes).
FEATURE_KEYS = ("model", "at", "score", "band", "fit", "intent", "rules")
# Rows whose JSON may mention a person who is not theirs: (table, key column, JSON column).
MENTION_COLUMNS = (
    ("events", "id", "payload"),
    ("leads", "id", "state"),
    ("outbox", "id", "payload"),
)
MIN_NAME = 4  # a shorter name is too likely to be part of other words to redact

Pseudonym = Callable[[str], str]
Reason = Callable[[str | None], str | None]


def random_pseudonym(_lead_id: str) -> str:
    return f"{PSEUDONYM_PREFIX}{uuid.uuid4()}"


def drop_reason(_reason: str | None) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Person:
    """Who ``key`` names: their lead ids (sorted), identity keys, e-mails (lower case) and
    names, as found when asked."""

    key: str
    lead_ids: tuple[str, ...]
    identity_keys: tuple[str, ...]
    emails: tuple[str, ...]
    names: tuple[str, ...]

    def mentions(self, *, with_ids: bool) -> tuple[str, ...]:
        """The strings that identify the person in someone else's rows: e-mails always;
        names and lead ids (as JSON strings) only in messages about leads."""
        found = list(self.emails)
        if with_ids:
            found += [name for name in self.names if len(name) >= MIN_NAME]
            found += [f'"{lead_id}"' for lead_id in self.lead_ids]
        return tuple(dict.fromkeys(found))


@dataclass
class Forgotten:
    """What ``forget`` did: rows deleted per table, feedback rows kept under a pseudonym,
    rows of others that mentioned the person (redacted), and warnings for the operator."""

    person: Person
    deleted: dict[str, int] = field(default_factory=dict)
    pseudonymised: int = 0
    redacted: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A chat message the bot posted about the person (an ``alert_posts`` row)."""

    platform: str
    channel: str
    ts: str


def lead_tables() -> list[Table]:
    """Every table with a ``lead_id`` column, feedback included, in a stable order."""
    return [t for t in SQLModel.metadata.sorted_tables if "lead_id" in t.c]


def _identity_candidates(key: str) -> list[str]:
    if key.startswith(("user:", "email:", "anon:")):
        return [key]
    return [f"user:{key}", f"email:{key.lower()}", f"anon:{key}"]


async def find_person(conn: AsyncConnection, key: str) -> Person | None:
    """The person ``key`` names (a lead id, an e-mail in any case, a userId or an identity
    key such as ``anon:…``), or None when nothing is stored under it."""
    key = key.strip()
    if not key:
        return None
    by_key = or_(LEADS.c.id == key, func.lower(LEADS.c.email) == key.lower())
    ids = set((await conn.execute(select(LEADS.c.id).where(by_key))).scalars())
    keys = _identity_candidates(key)
    ids |= set(
        (
            await conn.execute(select(IDENTITIES.c.lead_id).where(IDENTITIES.c.key.in_(keys)))
        ).scalars()
    )
    if not ids:
        return None
    return await _expand(conn, key, ids)


async def _expand(conn: AsyncConnection, key: str, ids: set[str]) -> Person:
    """Add the leads sharing an e-mail with the ones found, then read their keys."""
    rows = (await conn.execute(select(LEADS).where(LEADS.c.id.in_(ids)))).mappings().all()
    emails = {str(r["email"]).lower() for r in rows if r["email"]}
    traits = [((r["state"] or {}).get("traits") or {}) for r in rows]
    emails |= {str(t["email"]).lower() for t in traits if isinstance(t.get("email"), str)}
    if "@" in key:
        emails.add(key.lower())
    if emails:
        same = select(LEADS.c.id).where(func.lower(LEADS.c.email).in_(sorted(emails)))
        ids |= set((await conn.execute(same)).scalars())
        mail_keys = [f"email:{e}" for e in emails]
        linked = select(IDENTITIES.c.lead_id).where(IDENTITIES.c.key.in_(mail_keys))
        ids |= set((await conn.execute(linked)).scalars())
    found = select(IDENTITIES.c.key).where(IDENTITIES.c.lead_id.in_(ids))
    identity_keys = sorted(set((await conn.execute(found)).scalars()))
    emails |= {k.removeprefix("email:") for k in identity_keys if k.startswith("email:")}
    names = {str(r["name"]) for r in rows if r["name"]}
    names |= {str(t["name"]) for t in traits if isinstance(t.get("name"), str) and t["name"]}
    return Person(key, tuple(sorted(ids)), tuple(identity_keys), tuple(sorted(emails)),
                  tuple(sorted(names)))  # fmt: skip


def _rows(result: Any) -> list[dict[str, Any]]:
    # Column names may be ``quoted_name`` (a str subclass JSON encoders refuse as a key).
    return [{str(k): v for k, v in row.items()} for row in result.mappings().all()]


async def export_person(conn: AsyncConnection, person: Person) -> dict[str, Any]:
    """Everything stored about the person: each table's rows, keyed by table name (leads
    with their state and claim; identities; every table with a lead id)."""
    ids = list(person.lead_ids)
    document: dict[str, Any] = {
        "person": {"asked_for": person.key, "lead_ids": ids, "emails": list(person.emails)},
        "leads": _rows(await conn.execute(select(LEADS).where(LEADS.c.id.in_(ids)))),
    }
    for table in lead_tables():
        query = select(table).where(table.c.lead_id.in_(ids))
        key = table.primary_key.columns.values()[0]
        document[str(table.name)] = _rows(await conn.execute(query.order_by(key)))
    return document


async def count_person(conn: AsyncConnection, person: Person) -> dict[str, int]:
    """Rows per table that ``forget`` would delete (feedback: pseudonymise)."""
    ids = list(person.lead_ids)
    counts = {"leads": await _count(conn, LEADS, LEADS.c.id.in_(ids))}
    for table in lead_tables():
        counts[table.name] = await _count(conn, table, table.c.lead_id.in_(ids))
    return counts


async def _count(conn: AsyncConnection, table: Table, where: Any) -> int:
    query = select(func.count()).select_from(table).where(where)
    return int((await conn.execute(query)).scalar_one())


async def posted_messages(conn: AsyncConnection, person: Person) -> list[PostedMessage]:
    """The chat messages recorded as posted about the person, oldest first."""
    posts = next(t for t in lead_tables() if t.name == "alert_posts")
    query = (
        select(posts.c.platform, posts.c.channel, posts.c.ts)
        .where(posts.c.lead_id.in_(list(person.lead_ids)))
        .order_by(posts.c.posted_at, posts.c.id)
    )
    return [PostedMessage(*row) for row in (await conn.execute(query)).all()]


async def forget_person(
    conn: AsyncConnection,
    person: Person,
    *,
    pseudonym: Pseudonym = random_pseudonym,
    keep_reason: Reason = drop_reason,
) -> Forgotten:
    """Delete the person everywhere, inside the caller's transaction. Feedback rows keep
    outcome, time, who judged and the feature snapshot, under ``pseudonym(lead_id)`` (one
    per lead, so a lead's labels stay together) with ``keep_reason(reason)`` as reason."""
    ids = list(person.lead_ids)
    done = Forgotten(person)
    done.pseudonymised = await _pseudonymise(conn, ids, pseudonym, keep_reason)
    for table in lead_tables():
        if table.name == EVENTS.name:  # the stored count of events follows (event_tally)
            where = EVENTS.c.lead_id.in_(ids)
            done.deleted[table.name] = await conn.run_sync(delete_events, where)
        elif table.name != FEEDBACK.name:
            done.deleted[table.name] = await _delete(conn, table, table.c.lead_id.in_(ids))
    done.deleted[IDENTITIES.name] += await _delete(
        conn, IDENTITIES, IDENTITIES.c.key.in_(list(person.identity_keys))
    )
    done.deleted[LEADS.name] = await _delete(conn, LEADS, LEADS.c.id.in_(ids))
    for table_name, key, column in MENTION_COLUMNS:
        table = SQLModel.metadata.tables[table_name]
        mentions = person.mentions(with_ids=table_name == "outbox")
        done.redacted[table_name] = await _redact(conn, table, key, column, mentions)
    done.warnings += await _model_mentions(conn, person)
    return done


async def _delete(conn: AsyncConnection, table: Table, where: Any) -> int:
    return int((await conn.execute(delete(table).where(where))).rowcount or 0)


async def _pseudonymise(
    conn: AsyncConnection, ids: list[str], pseudonym: Pseudonym, keep_reason: Reason
) -> int:
    rows = (
        await conn.execute(
            select(FEEDBACK.c.id, FEEDBACK.c.lead_id, FEEDBACK.c.reason, FEEDBACK.c.features)
            .where(FEEDBACK.c.lead_id.in_(ids))
            .order_by(FEEDBACK.c.id)
        )
    ).all()
    names: dict[str, str] = {}
    for row_id, lead_id, reason, features in rows:
        alias = names.setdefault(lead_id, pseudonym(lead_id))
        kept = {k: v for k, v in (features or {}).items() if k in FEATURE_KEYS}
        await conn.execute(
            update(FEEDBACK)
            .where(FEEDBACK.c.id == row_id)
            .values(lead_id=alias, reason=keep_reason(reason), features=kept)
        )
    return len(rows)


def _scrub(value: Any, mentions: Iterable[str]) -> Any:
    """``value`` with every mention replaced in its strings (keys included)."""
    if isinstance(value, str):
        for mention in mentions:
            quoted = mention.startswith('"')
            if quoted and value == mention.strip('"'):
                return REDACTED
            if not quoted:
                value = _replace_any_case(value, mention)
        return value
    if isinstance(value, list):
        return [_scrub(v, mentions) for v in value]
    if isinstance(value, Mapping):
        return {_scrub(k, mentions): _scrub(v, mentions) for k, v in value.items()}
    return value


def _replace_any_case(value: str, mention: str) -> str:
    lowered, target = value.lower(), mention.lower()
    if target not in lowered:
        return value
    out, start = [], 0
    while (at := lowered.find(target, start)) >= 0:
        out += [value[start:at], REDACTED]
        start = at + len(target)
    return "".join(out) + value[start:]


async def _redact(
    conn: AsyncConnection, table: Table, key: str, column: str, mentions: tuple[str, ...]
) -> int:
    """Redact mentions in ``table.column`` (JSON): LIKE narrows the rows down (any case on
    the lower-cased text; ``_`` in an e-mail matches a little more), Python replaces."""
    if not mentions:
        return 0
    as_text = func.lower(cast(table.c[column], String))
    likes = [as_text.like(f"%{m.lower()}%") for m in mentions]
    found = (await conn.execute(select(table.c[key], table.c[column]).where(or_(*likes)))).all()
    changed = 0
    for row_key, value in found:
        scrubbed = _scrub(value, mentions)
        if scrubbed != value:
            col: Column[Any] = table.c[key]
            await conn.execute(update(table).where(col == row_key).values({column: scrubbed}))
            changed += 1
    return changed


async def _model_mentions(conn: AsyncConnection, person: Person) -> list[str]:
    """Model versions whose YAML names the person's e-mail (a learned rule could): said,
    not changed, since a model version is an audit record."""
    versions = SQLModel.metadata.tables["model_versions"]
    if not person.emails:
        return []
    likes = [func.lower(versions.c.yaml).like(f"%{e}%") for e in person.emails]
    found = (await conn.execute(select(versions.c.id).where(or_(*likes)))).scalars().all()
    return [f"model version {vid} mentions the e-mail in its YAML (not changed)" for vid in found]


@dataclass(frozen=True, slots=True)
class Wipe:
    """What ``secure_wipe`` did; ``complete`` is False when another connection kept the
    WAL from being truncated (old copies may remain in the -wal file until it is)."""

    vacuumed: bool
    complete: bool
    detail: str


async def secure_wipe(engine: AsyncEngine, tables: Iterable[str] = ()) -> Wipe:
    """After a forget: leave no copy of deleted rows in the database's files.

    SQLite: ``VACUUM`` rebuilds the file from live rows only (with ``secure_delete`` on,
    so freed pages are zeroed too), then ``wal_checkpoint(TRUNCATE)`` moves the WAL into
    the file and empties it. PostgreSQL: ``VACUUM`` of the tables touched makes the dead
    rows' space reusable (their bytes may stay in data files, WAL segments and backups
    until overwritten; ``VACUUM FULL`` rewrites a table, with an exclusive lock)."""
    async with engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name != "sqlite":
            for name in tables:
                await auto.exec_driver_sql(f'VACUUM "{name}"')
            return Wipe(True, True, f"VACUUM of {', '.join(tables) or 'no table'}")
        await auto.exec_driver_sql("PRAGMA secure_delete=ON")
        await auto.exec_driver_sql("VACUUM")
        busy, log, done = await _truncate_wal(auto)
    if busy:
        return Wipe(True, False, f"the WAL is in use by another connection ({done} of {log} "
                                 "pages checkpointed): run again with the bot stopped")  # fmt: skip
    return Wipe(True, True, "VACUUM and WAL checkpoint (TRUNCATE)")


# A running bot checkpoints the WAL a few times a second (storage.checkpoints); a TRUNCATE
# that meets one of those is refused at once, not queued, so it is tried again shortly.
WIPE_TRIES = 40
WIPE_PAUSE = 0.05  # seconds


async def _truncate_wal(conn: AsyncConnection) -> tuple[int, int, int]:
    """``wal_checkpoint(TRUNCATE)`` until it is not busy (at most ``WIPE_TRIES`` times):
    ``(busy, pages in the log, pages checkpointed)`` of the last try."""
    for attempt in range(WIPE_TRIES):
        row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).one()
        busy, log, done = tuple(row)
        if not busy or attempt == WIPE_TRIES - 1:
            return int(busy), int(log), int(done)
        await asyncio.sleep(WIPE_PAUSE)
    raise AssertionError("unreachable")


async def secure_delete(conn: AsyncConnection) -> None:
    """On SQLite, zero the content of rows this connection deletes (a per-connection
    setting): without it a deleted row's bytes stay in free space until reused."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA secure_delete=ON")


__all__ = [
    "FEATURE_KEYS",
    "Forgotten",
    "Person",
    "PostedMessage",
    "Wipe",
    "count_person",
    "export_person",
    "find_person",
    "forget_person",
    "posted_messages",
    "secure_delete",
    "secure_wipe",
]
