"""``leadbot import events FILE.jsonl``: a backfill of past events, straight into the
pipeline (no HTTP, no signatures: whoever runs the command owns the database).

- A line is one Segment call or a batch (``{"batch": [...]}``), as ``/v1/import`` takes
  them, read through the same parser. Blank lines are skipped. ``-`` reads standard input.
- The file is streamed: memory holds one group of ``GROUP`` events, whatever its size.
- By default the import is lenient, like ``/v1/import``: a call with a problem is reported
  (``FILE:LINE: field: what``) and left out, the others are imported, the exit status is 1.
  ``--strict`` reads the whole file first and imports nothing unless every call passes.
- Idempotent: a call keeps its messageId, and one without gets a hash of the call, so
  running the same file again stores nothing twice (it is reported as duplicates), and a
  crash midway loses nothing a second run does not redo (each group is committed whole).
- History is not news: a backfill queues no alert. A lead it makes hot counts as
  announced at the import; it is in ``leadbot top``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.crm.csvimport.importer import Quiet
from bot.errors import InputError
from bot.ingest.inbound import InboundEvent, Parsed, load_json, parse_doc
from bot.ingest.pipeline import Pipeline
from config.loader import LeadbotConfig
from storage.statistics import refresh_statistics

GROUP = 5_000  # events per transaction: per-transaction costs vanish, a group stays small
MAX_LINE_BYTES = 4 * 1_048_576  # a batch line may carry many calls
MAX_EVENT_BYTES = 32_768
SHOWN_PROBLEMS = 50  # problems printed one by one; past that, only counted
PROGRESS_SECONDS = 2.0


@dataclass
class EventTally:
    lines: int = 0
    calls: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    unshown: int = 0  # problems past the first SHOWN_PROBLEMS

    def line(self, elapsed: float) -> str:
        rate = self.calls / elapsed if elapsed > 0 else 0.0
        return (
            f"{self.lines:,} lines, {self.calls:,} calls: {self.accepted:,} stored, "
            f"{self.duplicates:,} duplicates, {self.rejected:,} rejected "
            f"({elapsed:.1f} s, {rate:,.0f} calls/s)"
        )


@contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with Path(path).open("rb") as handle:
        yield handle


def parsed_lines(
    path: str, *, now: float, err: TextIO, tally: EventTally
) -> Iterator[list[InboundEvent]]:
    """Each non-blank line's usable calls; its problems reported to ``err`` and tallied.
    Raises OSError when the file cannot be opened."""
    with _opened(path) as handle:
        for number, raw in enumerate(handle, start=1):
            tally.lines = number
            line = raw.strip()
            if not line:
                continue
            parsed = _parse(line, now)
            if isinstance(parsed, InputError):
                tally.calls += 1
                tally.rejected += 1
                for where, what in parsed.problems:  # the line is the body: no "line 1"
                    what = what.replace("at line 1, column", "at column", 1)
                    _problem(tally, err, f"{path}:{number}: {where or 'line'}: {what}")
                continue
            tally.calls += len(parsed.events) + len(parsed.rejected)
            tally.rejected += len(parsed.rejected)
            for dropped in parsed.rejected:
                _problem(tally, err, f"{path}:{number}: {dropped.field}: {dropped.error}")
            if parsed.events:
                yield parsed.events


def _parse(line: bytes, now: float) -> Parsed | InputError:
    try:
        doc = load_json(line, max_body_bytes=MAX_LINE_BYTES)
        return parse_doc(doc, body=line, now=now, max_event_bytes=MAX_EVENT_BYTES, lenient=True)
    except InputError as exc:  # not JSON, too large, or not a call or a batch at all
        return exc


def _problem(tally: EventTally, err: TextIO, text: str) -> None:
    """Print the first ``SHOWN_PROBLEMS`` problems; count the rest."""
    tally.unshown += len(tally.problems) >= SHOWN_PROBLEMS
    if len(tally.problems) < SHOWN_PROBLEMS:
        tally.problems.append(text)
        err.write(text + "\n")


async def import_events(
    engine: AsyncEngine,
    config: LeadbotConfig,
    path: str,
    *,
    now: float,
    err: TextIO,
    strict: bool = False,
    group: int = GROUP,
) -> EventTally:
    """Import ``path`` (see the module). With ``strict``, a file with any problem imports
    nothing: the returned tally then has ``accepted == 0`` and its problems."""
    if strict:
        checked = EventTally()
        for _ in parsed_lines(path, now=now, err=err, tally=checked):
            pass
        if checked.rejected:
            return checked
    tally, started, shown = EventTally(), time.perf_counter(), time.perf_counter()
    pending: list[InboundEvent] = []
    async with Pipeline(engine, config, inline=True, router=Quiet()) as pipeline:
        for events in parsed_lines(path, now=now, err=err, tally=tally):
            pending += events
            if len(pending) >= group:
                await _store(pipeline, pending, tally, now)
                pending = []
                if time.perf_counter() - shown >= PROGRESS_SECONDS:
                    shown = time.perf_counter()
                    err.write(f"import: {tally.line(shown - started)}\n")
                    err.flush()
        if pending:
            await _store(pipeline, pending, tally, now)
    # A large load: running servers re-plan now, not at autovacuum's round (storage.statistics)
    await refresh_statistics(engine, tally.accepted)
    if tally.unshown:
        err.write(f"import: {tally.unshown:,} more problems not shown\n")
    err.write(f"import: {tally.line(time.perf_counter() - started)}\n")
    return tally


def cmd_import_events(args: Any) -> int:
    """``leadbot import events FILE``: 0 when every call was stored (or was a duplicate),
    1 when some were rejected (with ``--strict``: then none was stored), 2 when the file
    cannot be read."""
    from config.loader import load_config
    from config.settings import load_settings
    from storage.engine import create_engine
    from storage.migrate import upgrade

    settings = load_settings()
    config = load_config(args.config or settings.config_path)
    url = f"sqlite+aiosqlite:///{Path(args.db).resolve()}" if args.db else settings.database_url
    if args.file != "-" and not Path(args.file).is_file():
        sys.stderr.write(f"leadbot: {args.file}: no such file\n")
        return 2

    async def run() -> EventTally:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            return await import_events(
                engine,
                config,
                args.file,
                now=time.time(),
                err=sys.stderr,
                strict=args.strict,
                group=args.group,
            )
        finally:
            await engine.dispose()

    try:
        tally = asyncio.run(run())
    except OSError as exc:
        sys.stderr.write(f"leadbot: {args.file}: {exc.strerror or exc}\n")
        return 2
    if args.strict and tally.rejected:
        sys.stdout.write(
            f"{args.file}: nothing imported (--strict): {tally.rejected:,} of {tally.calls:,} "
            "calls have problems (listed above)\n"
        )
        return 1
    sys.stdout.write(
        f"{args.file}: {tally.calls:,} calls — {tally.accepted:,} events stored, "
        f"{tally.duplicates:,} duplicates (already stored), {tally.rejected:,} rejected\n"
    )
    return 1 if tally.rejected else 0


async def _store(
    pipeline: Pipeline, events: list[InboundEvent], tally: EventTally, now: float
) -> None:
    result = await pipeline.ingest(events, now=now)
    tally.accepted += result.accepted
    tally.duplicates += result.duplicates
