"""The ingest writer in a process of its own, so ingest uses the machine's second core.

One Python process runs on one core at a time (the GIL). The HTTP side — reading requests,
checking signatures, parsing — and the write side — identities, feature state, scores,
SQL — each need most of a core under load, so ``leadbot serve`` runs the write side in a
child process. Parsed events cross a socket pair as compact JSON frames; the child commits
whatever has arrived as one transaction and answers each request after the commit. A
request is acknowledged only once the child says it is committed.

The child is a plain ``python -c`` process (not ``multiprocessing``, whose spawn would
import the server's whole command line again in the child, and start a resource tracker
beside it): it imports what writing needs and nothing more.

Frames: a 12-byte header ``!IQ`` (payload length, request id) and a payload. The parent's
first frame, id ``SETUP``, is the pickled arguments of ``child_main``; then each frame is a
request: its events as orjson. Child → parent: ``{"accepted", "duplicates"}`` or
``{"error"}``; request id 0 means "alerts were queued" (wake the dispatcher), and the
child's first frame, id ``READY``, says it is up (a child that dies before it never was).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from bot.chat.routing import Router
from bot.children import child_argv, recv_exactly
from bot.ingest.batcher import commit_isolated
from bot.ingest.inbound import InboundEvent
from bot.ingest.pipeline import IngestResult, Pipeline
from bot.ingest.running import following_percentiles
from bot.throttle import Throttled
from config.loader import LeadbotConfig
from storage.engine import create_engine
from storage.offloop import settle_heap

log = logging.getLogger(__name__)

HEADER = struct.Struct("!IQ")
ALERTS = 0
READY = 0xFFFF_FFFF_FFFF_FFFF  # the child's first frame: its database and pipeline are up
SETUP = 0xFFFF_FFFF_FFFF_FFFE  # the parent's first frame: the child's arguments, pickled
START_SECONDS = 60.0
RESTART_DELAY = 0.1
RESTART_CAP = 10.0
RECEIVE_BYTES = 1 << 20


class WriterStartError(Exception):
    """The writer process could not be started, or exited before it was ready."""


class WriterUnavailable(Exception):
    """The writer is down or stopped before answering; nothing of the request is known
    stored, and the sender should retry (a 503 with ``Retry-After``)."""


def frame(request_id: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), request_id) + payload


DRAIN_ABOVE = 256 * 1024  # bytes queued for the child before a request waits for them to go


def encode_events(events: Sequence[InboundEvent]) -> bytes:
    return orjson.dumps([tuple(e) for e in events])  # as plain lists


def decode_events(data: bytes) -> list[InboundEvent]:
    return [InboundEvent._make(fields) for fields in orjson.loads(data)]


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame, or None when the stream ends, cleanly or not: a child killed with
    -9 shows up as a reset socket (``ConnectionResetError``), not as an end of file."""
    try:
        header = await reader.readexactly(HEADER.size)
        length, request_id = HEADER.unpack(header)
        return request_id, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        return None


def _start_failure(python: str, exit_code: int | None) -> str:
    """Why a child never became ready, as far as the parent can tell."""
    if not os.access(python, os.X_OK):
        return f"the interpreter {python} cannot be executed"
    if exit_code is None:
        return f"it did not get ready within {START_SECONDS:g} s"
    return f"it exited with code {exit_code} before it was ready (its log lines say why)"


def restart_delay(failures: int) -> float:
    """Seconds before the next start after ``failures`` quick deaths in a row:
    0.1, 0.2, 0.4 … capped at 10, so a writer that cannot start does not spin."""
    return min(RESTART_CAP, RESTART_DELAY * 2 ** max(0, failures - 1))


class IngestProcess:
    """The parent's handle on the writer process: ``submit`` like ``GroupCommitter``.

    A supervisor task owns the child: it starts it, reads its answers, and when the child
    dies (end of stream, reset, exit) fails every pending request at once — the webhook
    answers 503 with ``Retry-After`` — and starts a new one with backoff. While no child
    runs, ``submit`` fails immediately instead of queueing."""

    def __init__(
        self,
        *,
        database_url: str,
        config: LeadbotConfig,
        on_alert: Callable[[], None] | None = None,
        max_events: int = 5_000,
        router: Router | None = None,
        answer_timeout: float = 30.0,
    ) -> None:
        self._args = (database_url, config, max_events, router or Router())
        self.python = sys.executable  # the interpreter the child runs on
        self.on_alert = on_alert
        self.answer_timeout = answer_timeout
        self.restarts = 0
        self._ids = itertools.count(1)
        # Each request's answer, and when it is too late (loop time): one watchdog fails
        # the late ones, instead of a timer armed and cancelled per request.
        self._pending: dict[int, tuple[asyncio.Future[IngestResult], float]] = {}
        self._send = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._log = Throttled(log, period=30.0)

    @property
    def pid(self) -> int | None:
        """The running child's pid, or None while it is down."""
        return self._process.pid if self._writer is not None and self._process else None

    @property
    def alive(self) -> bool:
        process = self._process
        return self._writer is not None and process is not None and process.returncode is None

    async def start(self) -> None:
        """Start the child and its supervisor. A child that cannot be started at all (an
        interpreter that cannot run, no memory) raises here, so ``serve`` stops with why."""
        reader = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(reader), name="leadbot-writer")
        self._watchdog = asyncio.create_task(self._expire_late(), name="leadbot-writer-watchdog")

    async def _expire_late(self) -> None:
        """Fail every request the writer has not answered within ``answer_timeout`` (a
        hung child), a quarter of the timeout late at most."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.answer_timeout / 4))
            now = loop.time()
            for request_id, (done, deadline) in list(self._pending.items()):
                if deadline <= now:
                    self._pending.pop(request_id, None)
                    if not done.done():
                        done.set_exception(WriterUnavailable(
                            f"the ingest writer did not answer within {self.answer_timeout:g} s"
                        ))  # fmt: skip

    async def _spawn(self) -> asyncio.StreamReader:
        parent, child = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *child_argv(self.python, __name__, child.fileno()),
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:  # the interpreter is missing or cannot be executed
            parent.close()
            reason = f"the interpreter {self.python} cannot be executed ({exc})"
            raise WriterStartError(reason) from exc
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self._process = process
        reader, writer = await asyncio.open_unix_connection(sock=parent)
        writer.write(frame(SETUP, pickle.dumps(self._args)))
        try:
            async with asyncio.timeout(START_SECONDS):
                first = await read_frame(reader)
        except TimeoutError:
            first = None
        if first is None or first[0] != READY:
            writer.close()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise WriterStartError(_start_failure(self.python, await self._reap()))
        self._writer = writer
        log.info("ingest writer process started (pid %s)", process.pid)
        return reader

    async def _supervise(self, reader: asyncio.StreamReader) -> None:
        failures = 0
        while True:
            started = time.monotonic()
            await self._read(reader)
            self._down("the ingest writer stopped before answering; retry")
            if self._closing:
                return
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            restarted = await self._restart(failures)
            if restarted is None:
                return
            reader = restarted

    async def _restart(self, failures: int) -> asyncio.StreamReader | None:
        """Start a new child after a death, with backoff, until one starts or we close."""
        # Imported here, in the server: the writer child imports this module too, and needs
        # no metrics (prometheus_client is ~12 MB of its memory).
        from bot.metrics import WRITER_RESTARTS

        code = await self._reap()
        self._log.failed(
            "died", "the ingest writer process died (exit code %s); restarting it", code
        )
        while True:
            await asyncio.sleep(restart_delay(failures))
            if self._closing:
                return None
            WRITER_RESTARTS.inc()
            self.restarts += 1
            try:
                reader = await self._spawn()
            except Exception as exc:
                failures += 1
                self._log.failed("start", "cannot start the ingest writer process: %s", exc)
                continue
            self._log.recovered("start", "the ingest writer process starts again")
            return reader

    async def _reap(self, seconds: float = 2.0) -> int | None:
        """Wait for the dead child (briefly) so it leaves no zombie; its exit code (minus
        the signal that killed it), None if it is still running."""
        process = self._process
        if process is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await process.wait()
        return process.returncode

    def _down(self, reason: str) -> None:
        """The child is gone: no new request goes to it, and none waits for it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        pending, self._pending = self._pending, {}
        for done, _ in pending.values():
            if not done.done():
                done.set_exception(WriterUnavailable(reason))

    async def submit(self, events: Sequence[InboundEvent]) -> IngestResult:
        """Send one request's events; returns once the writer has committed them."""
        writer = self._writer
        if writer is None or self._closing:
            raise WriterUnavailable("the ingest writer is restarting; retry")
        request_id = next(self._ids)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[IngestResult] = loop.create_future()
        self._pending[request_id] = (done, loop.time() + self.answer_timeout)
        try:
            # One write call a frame, so frames never interleave; wait only when the socket's
            # buffer is backed up (the child is slower than the requests coming in).
            writer.write(frame(request_id, encode_events(events)))
            if writer.transport.get_write_buffer_size() > DRAIN_ABOVE:
                async with self._send:
                    await writer.drain()
            return await done
        except (ConnectionError, OSError, RuntimeError) as exc:
            # A fresh exception each time: re-raising the stream's stored one would grow
            # its traceback by a few lines per failed request (seen: 1.2 GB of log).
            raise WriterUnavailable(
                f"the ingest writer is unreachable ({type(exc).__name__})"
            ) from None
        finally:
            self._pending.pop(request_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while (got := await read_frame(reader)) is not None:
            request_id, payload = got
            if request_id == ALERTS:
                if self.on_alert is not None:
                    self.on_alert()
                continue
            waiting = self._pending.pop(request_id, None)
            if waiting is None or waiting[0].done():
                continue
            done = waiting[0]
            answer = orjson.loads(payload)
            if "error" in answer:
                done.set_exception(WriterUnavailable(answer["error"]))
            else:
                done.set_result(IngestResult(answer["accepted"], answer["duplicates"]))

    async def close(self, drain_seconds: float = 30.0) -> None:
        """Let the writer finish what it accepted, then stop it; never longer than
        ``drain_seconds``, whatever state the child is in (dead, restarting, hung)."""
        self._closing = True
        if self._writer is not None:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self._writer.write_eof()
        elif self._supervisor is not None:
            self._supervisor.cancel()  # between children: nothing to drain
        if self._supervisor is not None:
            try:
                async with asyncio.timeout(drain_seconds):
                    await asyncio.shield(self._supervisor)
            except TimeoutError:
                log.warning(
                    "the ingest writer did not drain within %g s; stopping it", drain_seconds
                )
                self._supervisor.cancel()
            except asyncio.CancelledError:
                if not self._supervisor.cancelled():
                    raise
        if self._process is not None and await self._reap(5) is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            await self._reap()
        self._down("leadbot is shutting down")
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog


def child_entry() -> None:
    """The child's call (``bot.children.child_argv``): the socket's descriptor is the first
    argument; the first frame on it holds ``child_main``'s other arguments."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # from the start: see child_main
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:  # blocking: nothing else runs yet
        length, request_id = HEADER.unpack(recv_exactly(sock, HEADER.size))
        if request_id != SETUP:
            raise SystemExit(f"leadbot writer: expected the setup frame, got id {request_id}")
        arguments = pickle.loads(recv_exactly(sock, length))
    except EOFError:
        raise SystemExit("leadbot writer: the server closed the socket before the setup") from None
    child_main(sock, *arguments)


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
            settle_heap()  # before READY: no request waits behind this one full collection
            await loop.sock_sendall(sock, frame(READY, b"{}"))
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
