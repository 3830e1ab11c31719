"""The model the bot scores with right now: the active stored version, followed as it changes.

A version is activated by a manager's click in this process, by ``auto_apply``, or by
``leadbot model activate`` in another process, and the activation rescored every lead in
its transaction. So the ingest reads the active version's number in every transaction it
commits (one indexed read) and switches when it changed: no event committed after an
activation is scored with the model before it. Commands and buttons do the same read per
request. Parsed models are cached by version number.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from config.loader import load_config
from scoring import Model
from storage import models as repo
from storage.abtests import active_and_challenger

log = logging.getLogger(__name__)


class ActiveModel:
    """``follow(conn)``: the active version's model (the configured model until a version
    is first activated). Not thread-safe: one per pipeline or per process side."""

    def __init__(self, configured: Model, *, version: int | None = None) -> None:
        self.configured = configured
        self.version = version
        self.model = configured
        # A running A/B test: (challenger version, its model, the share of leads it scores).
        self.challenger: tuple[int, Model, float] | None = None
        self._cache: dict[int, Model] = {}

    def follow(self, conn: Connection) -> Model:
        """The model to score with inside ``conn``'s transaction (the champion, when an A/B
        test runs: ``model_for`` gives each lead's)."""
        current, test = active_and_challenger(conn)
        if current != self.version:
            self.model = self.configured if current is None else self._load(conn, current)
            log.info("scoring with model v%s from now on (was v%s)", current, self.version)
            self.version = current
        if test is None:
            self.challenger = None
        elif self.challenger is None or self.challenger[0] != test[0]:
            self.challenger = (test[0], self._load(conn, test[0]), test[1])
            log.info("A/B test: v%d scores %.0f %% of the leads", test[0], test[1] * 100)
        return self.model

    def model_for(self, lead_id: str) -> Model:
        """The model that scores this lead: the challenger for cohort B of a running test."""
        if self.challenger is not None and cohort(lead_id, self.challenger[2]) == "B":
            return self.challenger[1]
        return self.model

    async def current(self, engine: AsyncEngine) -> Model:
        async with engine.connect() as conn:
            return await conn.run_sync(self.follow)

    def _load(self, conn: Connection, version_id: int) -> Model:
        if version_id not in self._cache:
            version = repo.get_version(conn, version_id)
            assert version is not None  # just read as the active one, in this transaction
            self._cache[version_id] = model_of_yaml(version.yaml, version_id)
        return self._cache[version_id]


def cohort(lead_id: str, share: float) -> str:
    """``"B"`` (the challenger's) for a lead whose id hashes below ``share``, else ``"A"``.
    SHA-256, not ``hash()``: the same lead is in the same cohort in every process, forever."""
    digest = hashlib.sha256(lead_id.encode()).digest()
    return "B" if int.from_bytes(digest[:8], "big") / 2**64 < share else "A"


def model_of_yaml(yaml: str, version_id: int) -> Model:
    """The model a stored version's YAML holds."""
    return load_config(text=yaml, name=f"model v{version_id}").model
