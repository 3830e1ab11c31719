"""The ingest writer in a process of its own, so ingest uses the machine's second core.

One Python process runs on one core at a time (the GIL). The HTTP side — reading requests,
checking signatures, parsing — and the write side — identities, feature state, scores,
SQL — each need most of a core under load, so ``leadbot serve`` runs the write side in a
child process. Parsed events cross a socket pair as compact JSON frames; the child commits
whatever has arrived as one transaction and answers each request after the commit. A
request is acknowledged only once the child says it is committed.

Frames: a 12-byte header ``!IQ`` (payload length, request id) and an orjson payload.
Parent → child: a list of events. Child → parent: ``{"accepted", "duplicates"}`` or
``{"error"}``; request id 0 means "alerts were queued" (wake the dispatcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bot.batcher import commit_isolated
from bot.inbound import InboundEvent
from bot.ingest import following_percentiles
from bot.pipeline import IngestResult, Pipeline
from bot.routing import Router
from config.loader import LeadbotConfig
from storage.engine import create_engine

log = logging.getLogger(__name__)

HEADER = struct.Struct("!IQ")
ALERTS = 0
RESTART_DELAY = 1.0
RECEIVE_BYTES = 1 << 20


class WriterUnavailable(Exception):
    """The writer process stopped before answering; nothing of the request is known stored."""


def frame(request_id: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), request_id) + payload


def encode_events(events: Sequence[InboundEvent]) -> bytes:
    return orjson.dumps([tuple(e) for e in events])  # as plain lists


def decode_events(data: bytes) -> list[InboundEvent]:
    return [InboundEvent._make(fields) for fields in orjson.loads(data)]


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame, or None at a clean end of stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    length, request_id = HEADER.unpack(header)
    return request_id, await reader.readexactly(length)


class IngestProcess:
    """The parent's handle on the writer process: ``submit`` like ``GroupCommitter``."""

    def __init__(
        self,
        *,
        database_url: str,
        config: LeadbotConfig,
        on_alert: Callable[[], None] | None = None,
        max_events: int = 5_000,
        router: Router | None = None,
    ) -> None:
        self._args = (database_url, config, max_events, router or Router())
        self.on_alert = on_alert
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[IngestResult]] = {}
        self._send = asyncio.Lock()
        self._writer: asyncio.StreamWriter | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        parent, child = socket.socketpair()
        context = multiprocessing.get_context("spawn")
        self._process = context.Process(
            target=child_main, args=(child, *self._args), name="leadbot-writer", daemon=True
        )
        self._process.start()
        child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent)
        self._reader_task = asyncio.create_task(self._read(reader))
        log.info("ingest writer process started (pid %s)", self._process.pid)

    async def submit(self, events: Sequence[InboundEvent]) -> IngestResult:
        """Send one request's events; returns once the writer has committed them."""
        if self._writer is None or self._closing:
            raise WriterUnavailable("the ingest writer is not running")
        request_id = next(self._ids)
        done: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = done
        async with self._send:
            self._writer.write(frame(request_id, encode_events(events)))
            await self._writer.drain()
        return await done

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while (got := await read_frame(reader)) is not None:
            request_id, payload = got
            if request_id == ALERTS:
                if self.on_alert is not None:
                    self.on_alert()
                continue
            done = self._pending.pop(request_id, None)
            if done is None or done.done():
                continue
            answer = orjson.loads(payload)
            if "error" in answer:
                done.set_exception(WriterUnavailable(answer["error"]))
            else:
                done.set_result(IngestResult(answer["accepted"], answer["duplicates"]))
        self._fail_pending("the ingest writer stopped")
        if not self._closing:
            log.error("the ingest writer process stopped unexpectedly; restarting it")
            self._writer = None
            await asyncio.sleep(RESTART_DELAY)
            if not self._closing:
                await self.start()

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for done in pending.values():
            if not done.done():
                done.set_exception(WriterUnavailable(reason))

    async def close(self) -> None:
        """Let the writer finish what it accepted, then stop it."""
        self._closing = True
        if self._writer is not None:
            self._writer.write_eof()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                async with asyncio.timeout(30):
                    await asyncio.shield(self._reader_task)
        if self._process is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._process.join, 10)
            if self._process.is_alive():
                self._process.terminate()
        if self._writer is not None:
            self._writer.close()
        self._fail_pending("leadbot is shutting down")


def child_main(
    sock: socket.socket,
    database_url: str,
    config: LeadbotConfig,
    max_events: int,
    router: Router,
) -> None:
    """Entry point of the writer process. It stops when the server closes the socket:
    Ctrl-C or a SIGTERM sent to the whole process group must not cut a transaction short
    or leave the server without its writer while it drains."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s[writer]: %(message)s"
    )
    asyncio.run(_serve(sock, database_url, config, max_events, router))


async def _serve(
    sock: socket.socket,
    database_url: str,
    config: LeadbotConfig,
    max_events: int,
    router: Router,
) -> None:
    """Read every frame that has arrived, commit them as one group, answer, repeat.

    The transaction runs on this loop's thread (``inline``): nothing else needs it, and
    while it runs the next requests pile up in the socket, to form the next group."""
    engine = create_engine(database_url)
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    try:
        async with (
            Pipeline(engine, config, inline=True, router=router) as pipeline,
            following_percentiles(pipeline),
        ):
            pending = bytearray()
            while chunk := await loop.sock_recv(sock, RECEIVE_BYTES):
                pending += chunk
                for group in _groups(take_frames(pending), max_events):
                    await loop.sock_sendall(sock, await _commit(pipeline, group))
    finally:
        sock.close()
        await engine.dispose()


def take_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Remove and return the complete frames at the start of ``buffer``."""
    frames, at = [], 0
    while len(buffer) - at >= HEADER.size:
        length, request_id = HEADER.unpack_from(buffer, at)
        end = at + HEADER.size + length
        if end > len(buffer):
            break
        frames.append((request_id, bytes(buffer[at + HEADER.size : end])))
        at = end
    del buffer[:at]
    return frames


def _groups(
    frames: list[tuple[int, bytes]], max_events: int
) -> list[list[tuple[int, list[InboundEvent]]]]:
    """Decoded requests, in groups of at most ``max_events`` events (at least one request)."""
    groups: list[list[tuple[int, list[InboundEvent]]]] = [[]]
    size = 0
    for request_id, payload in frames:
        events = decode_events(payload)
        if groups[-1] and size + len(events) > max_events:
            groups.append([])
            size = 0
        groups[-1].append((request_id, events))
        size += len(events)
    return [g for g in groups if g]


async def _commit(pipeline: Pipeline, group: list[tuple[int, list[InboundEvent]]]) -> bytes:
    """Commit a group; the reply frames for its requests (and the alert signal)."""
    outcomes, alerts = await commit_isolated(
        pipeline, [events for _, events in group], now=time.time()
    )
    replies = [
        frame(request_id, orjson.dumps(_answer(outcome)))
        for (request_id, _), outcome in zip(group, outcomes, strict=True)
    ]
    if alerts:
        replies.append(frame(ALERTS, b"{}"))
    return b"".join(replies)


def _answer(outcome: IngestResult | Exception) -> dict[str, Any]:
    if isinstance(outcome, Exception):
        return {"error": f"{type(outcome).__name__}: {outcome}"}
    return {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
