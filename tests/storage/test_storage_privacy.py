"""storage.privacy on both databases: who a key names, what forget deletes, keeps under a
pseudonym and redacts in other rows, and that no copy stays in a SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from storage.checkpoints import WalCheckpointer
from storage.engine import session_factory
from storage.privacy import (
    FEATURE_KEYS,
    PSEUDONYM_PREFIX,
    REDACTED,
    count_person,
    find_person,
    forget_person,
    lead_tables,
    secure_delete,
    secure_wipe,
)
from storage.tables import (
    AlertPost,
    Event,
    Feedback,
    Identity,
    Lead,
    ModelVersion,
    OutboxMessage,
    ScoreChange,
)

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EMAIL = "ana.lopez@example.com"
FEATURES = {"model": "m", "at": 1.0, "score": 60.0, "band": "hot", "fit": 30.0,
            "intent": 30.0, "rules": {"leader": 1.0, "demo": 1.0}}  # fmt: skip


def _lead(lead_id: str, email: str | None, name: str | None, **traits: Any) -> Lead:
    state = {"traits": {"email": email, "name": name, **traits}}
    return Lead(id=lead_id, email=email, name=name, state=state, first_seen_at=AT,
                last_event_at=AT, scored_at=AT, claimed_by="slack:U1", claimed_at=AT)  # fmt: skip


def _event(n: int, lead_id: str, payload: dict[str, Any]) -> Event:
    return Event(message_id=f"m{n}", lead_id=lead_id, type="track", name="x", timestamp=AT,
                 received_at=AT, payload=payload)  # fmt: skip


def _outbox(key: str, lead_id: str | None, payload: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(kind="alert" if lead_id else "digest", lead_id=lead_id,
                         destination="slack:#sales", dedupe_key=key, payload=payload,
                         available_at=AT, created_at=AT)  # fmt: skip


async def populate(engine: AsyncEngine) -> None:
    """Ana: lead ``u7`` with an anonymous visitor folded in, a second lead with her e-mail
    in upper case, events, history, an alert and its post, two labels. Bo: a lead whose
    event and state mention Ana's e-mail. A digest listing both."""
    rows: list[SQLModel] = [
        _lead("u7", EMAIL, "Ana Lopez", title="VP Sales"),
        _lead("legacy-9", EMAIL.upper(), None),
        _lead("u8", "bo@example.org", "Bo Chen", referred_by=EMAIL),
        Identity(key="user:u7", lead_id="u7"), Identity(key=f"email:{EMAIL}", lead_id="u7"),
        Identity(key="anon:visitor-1", lead_id="u7"), Identity(key="user:u8", lead_id="u8"),
        _event(1, "u7", {"anonymousId": "visitor-1", "traits": {"email": EMAIL}}),
        _event(2, "legacy-9", {"userId": "legacy-9"}),
        _event(3, "u8", {"userId": "u8", "properties": {"referrer": EMAIL, "plan": "pro"}}),
        ScoreChange(lead_id="u7", at=AT, score=60, band="hot", cause="Demo Requested"),
        _outbox("alert:u7", "u7", {"lead": {"id": "u7", "email": EMAIL, "name": "Ana Lopez"}}),
        _outbox("digest:1", None, {"text": "Waiting: Ana Lopez (ana.lopez@example.com), Bo Chen",
                                   "leads": ["u7", "u8"]}),
        AlertPost(lead_id="u7", outbox_id=1, platform="slack", channel="C1", ts="1.000001",
                  posted_at=AT),
        Feedback(lead_id="u7", outcome="won", reason="met Ana at the fair", by="slack:U1",
                 at=AT, features={**FEATURES, "traits": {"email": EMAIL}}),
        Feedback(lead_id="u7", outcome="qualified", by="slack:U1", at=AT, features=FEATURES),
        Feedback(lead_id="u8", outcome="lost", reason="no need", by="slack:U1", at=AT,
                 features=FEATURES),
        ModelVersion(yaml=f"# learned from {EMAIL}\n", created_at=AT, created_by="test"),
    ]  # fmt: skip
    async with session_factory(engine)() as session:
        session.add_all(rows)
        await session.commit()


async def table(engine: AsyncEngine, model: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(model.__table__))).mappings().all()
    return [{str(k): v for k, v in r.items()} for r in rows]


async def test_a_person_is_found_by_any_key_with_every_lead_of_their_email(
    engine: AsyncEngine,
) -> None:
    await populate(engine)
    async with engine.connect() as conn:
        for key in ("u7", EMAIL.upper(), " ana.LOPEZ@example.com ", "anon:visitor-1",
                    "visitor-1", "user:u7", "legacy-9"):  # fmt: skip
            person = await find_person(conn, key)
            assert person is not None, key
            assert person.lead_ids == ("legacy-9", "u7"), key
            assert person.emails == (EMAIL,)
        assert await find_person(conn, "nobody@example.com") is None
        assert await find_person(conn, "") is None
        bo = await find_person(conn, "u8")
        assert bo is not None
        assert bo.lead_ids == ("u8",)


async def test_forget_deletes_pseudonymises_and_redacts(engine: AsyncEngine) -> None:
    await populate(engine)
    async with engine.begin() as conn:
        person = await find_person(conn, EMAIL)
        assert person is not None
        assert (await count_person(conn, person))["events"] == 2
        done = await forget_person(conn, person)
    assert done.deleted == {"alert_posts": 1, "events": 2, "identities": 3, "outbox": 1,
                            "score_history": 1, "leads": 2, "crm_links": 0, "orders": 0,
                            "customers": 0, "customer_segments": 0,
                            "customer_alert_actions": 0}  # fmt: skip
    assert done.pseudonymised == 2
    assert done.redacted == {"events": 1, "leads": 1, "outbox": 1}
    assert done.warnings == ["model version 1 mentions the e-mail in its YAML (not changed)"]

    async with engine.connect() as conn:
        for t in lead_tables():  # every table with a lead id, whatever it is called
            left = (await conn.execute(select(t).where(t.c.lead_id.in_(person.lead_ids)))).all()
            assert left == [], t.name
    labels = sorted(await table(engine, Feedback), key=lambda f: f["id"])
    ana = labels[:2]
    assert {f["lead_id"] for f in ana} == {ana[0]["lead_id"]}  # one pseudonym per lead
    assert ana[0]["lead_id"].startswith(PSEUDONYM_PREFIX)
    assert [f["outcome"] for f in ana] == ["won", "qualified"]
    assert all(f["features"] == FEATURES and set(f["features"]) <= set(FEATURE_KEYS) for f in ana)
    assert [f["reason"] for f in ana] == [None, None]
    assert labels[2]["lead_id"] == "u8"
    assert labels[2]["reason"] == "no need"  # Bo's label is his

    [bo_event] = await table(engine, Event)
    assert bo_event["payload"]["properties"] == {"referrer": REDACTED, "plan": "pro"}
    [bo] = await table(engine, Lead)
    assert bo["state"]["traits"]["referred_by"] == REDACTED
    assert bo["claimed_by"] == "slack:U1"
    [digest] = await table(engine, OutboxMessage)
    assert digest["payload"] == {"text": f"Waiting: {REDACTED} ({REDACTED}), Bo Chen",
                                 "leads": [REDACTED, "u8"]}  # fmt: skip
    assert [i["key"] for i in await table(engine, Identity)] == ["user:u8"]

    everything = []
    for t in SQLModel.metadata.sorted_tables:
        if t.name != "model_versions":
            async with engine.connect() as conn:
                everything += [dict(r._mapping) for r in (await conn.execute(select(t))).all()]
    text = orjson.dumps(everything, default=str).decode().lower()
    assert EMAIL not in text
    assert "ana lopez" not in text
    assert "visitor-1" not in text


async def test_no_copy_stays_in_the_sqlite_file(sqlite_engine: AsyncEngine) -> None:
    await populate(sqlite_engine)
    path = Path(str(make_url(str(sqlite_engine.url)).database))

    def raw() -> bytes:
        files = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        return b"".join(f.read_bytes() for f in files if f.exists())

    assert EMAIL.encode() in raw()
    async with sqlite_engine.begin() as conn:
        await secure_delete(conn)
        person = await find_person(conn, EMAIL)
        assert person is not None
        await forget_person(conn, person)
    async with sqlite_engine.begin() as conn:  # the model version keeps it: an audit record
        await conn.execute(ModelVersion.__table__.delete())  # type: ignore[attr-defined]
    wipe = await secure_wipe(sqlite_engine)
    assert wipe.complete, wipe.detail
    data = raw()
    for trace in (EMAIL, "Ana Lopez", "visitor-1", "met Ana"):
        assert trace.encode() not in data, trace
    assert b"bo@example.org" in data


async def test_the_wipe_completes_beside_a_running_bots_checkpoints(
    sqlite_engine: AsyncEngine,
) -> None:
    """A running bot checkpoints the WAL on a thread of its own (here every millisecond,
    not every 0.2 s, so that the two meet in every round); the wipe's TRUNCATE, refused
    while one runs, waits its turn instead of leaving copies in the log."""
    await populate(sqlite_engine)
    path = str(make_url(str(sqlite_engine.url)).database)
    checkpoints = WalCheckpointer(path, every=0.001).start()
    try:
        for _ in range(5):
            async with sqlite_engine.begin() as conn:  # pages in the log to checkpoint
                await conn.execute(Feedback.__table__.update().values(reason="again"))  # type: ignore[attr-defined]
            wipe = await secure_wipe(sqlite_engine)
            assert wipe.complete, wipe.detail
    finally:
        checkpoints.stop()
    assert checkpoints.rounds > 0


async def test_postgres_vacuum_of_the_tables_touched(engine: AsyncEngine) -> None:
    await populate(engine)
    async with engine.begin() as conn:
        person = await find_person(conn, "u7")
        assert person is not None
        await forget_person(conn, person)
    wipe = await secure_wipe(engine, ["leads", "events"])
    assert wipe.complete
    expected = "VACUUM and WAL" if engine.dialect.name == "sqlite" else "VACUUM of leads, events"
    assert wipe.detail.startswith(expected)
