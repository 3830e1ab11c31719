"""``leadbot serve`` as a real subprocess for tests that kill, stop or race it.

The server runs the real CLI with the default process-mode ingest (a writer child), on a
free port, logging to a file in the test's directory (never to a pipe that could fill).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import orjson

from bot.ingest.signatures import sign

STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """One ``leadbot serve`` process: start it, read its endpoints, signal it."""

    def __init__(self, tmp: Path, env: Mapping[str, str], *, name: str = "leadbot") -> None:
        self.port = free_port()
        self.log_path = tmp / f"{name}-{self.port}.log"
        self.env = {**os.environ, "LEADBOT_PORT": str(self.port), "LEADBOT_HOST": "127.0.0.1",
                    **env}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None
        self.args = ["serve"]
        # The program and its first arguments; default: this interpreter calling bot.cli.
        self.program: list[str] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        code = f"import sys; from bot.cli import main; sys.exit(main({self.args!r}))"
        command = [*self.program, *self.args] if self.program else [sys.executable, "-c", code]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"leadbot exited at start:\n{self.log()}")
            if self.get("/readyz")[0] == 200:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"leadbot was not ready within {STARTUP_SECONDS:g} s:\n{self.log()}")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:
            return 0, b""

    def readyz(self) -> dict[str, Any]:
        return dict(orjson.loads(self.get("/readyz")[1] or b"{}"))

    def writer_pid(self) -> int | None:
        writer = self.readyz().get("checks", {}).get("writer", {})
        return writer.get("pid") if writer.get("ok") else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 45.0) -> float:
        """Signal the server and wait for it; the seconds it took (killed after timeout)."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return time.monotonic() - started


def signed_request(
    secret: str, body: Mapping[str, Any], msg_id: str
) -> tuple[bytes, dict[str, str]]:
    """A body and its Standard Webhooks headers, as a sender would post them."""
    raw = orjson.dumps(body)
    headers = sign(secret, raw, msg_id=msg_id, timestamp=int(time.time()))
    return raw, {**headers, "content-type": "application/json"}
