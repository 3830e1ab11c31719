"""Start the two servers under test as subprocesses, wait until they answer, stop them.

The floor is ``python -m tests.bench.floor_app``; leadbot is the real CLI, ``leadbot serve``,
on a fresh SQLite file. Each writes its output to a log file in the bench's temp directory
(leadbot's console transport prints every alert there), never to a pipe that could fill up.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running server process and where to reach it."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/events"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU so far of the process and its child processes (leadbot's
        ingest writer is one), all threads (from /proc)."""
        return sum(_cpu_ticks(pid) for pid in (self.pid, *children(self.pid))) / os.sysconf(
            "SC_CLK_TCK"
        )

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the process plus that of each child (leadbot's ingest
        writer), in MB: what the server needs at most, both processes together."""
        return sum(_peak_kb(pid) for pid in (self.pid, *children(self.pid))) / 1024

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        health = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} at "
                                   f"start; see {self.log_path}:\n{self.log_tail()}")  # fmt: skip
            try:
                with urllib.request.urlopen(health, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {health} within {STARTUP_SECONDS:g} s")

    def stop(self) -> int:
        """SIGINT (aiohttp's graceful shutdown: the committer and engine close), then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, chars: int = 2000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu_ticks(pid: int) -> int:
    try:
        fields = _stat(pid)
    except FileNotFoundError:  # exited between listing and reading
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _peak_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in kB; 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct child processes (field 4 of /proc/<pid>/stat is the parent id)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return found


def _start(name: str, command: list[str], env: dict[str, str], log_path: Path) -> Server:
    port = int(command[command.index("--port") + 1])
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    server = Server(name, process, port, log_path, log)
    server.wait_ready()
    return server


def start_floor(secret: str, workdir: Path) -> Server:
    env = os.environ | {"LEADBOT_WEBHOOK_SECRET": secret}
    command = [sys.executable, "-m", "tests.bench.floor_app", "--port", str(free_port())]
    return _start("floor", command, env, workdir / "floor.log")


def leadbot_command() -> list[str]:
    """The installed ``leadbot`` script; else the same entry point through this Python."""
    script = shutil.which("leadbot") or str(Path(sys.executable).with_name("leadbot"))
    if Path(script).exists():
        return [script]
    return [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())"]


def start_leadbot(secret: str, db_path: Path, workdir: Path) -> Server:
    env = os.environ | {
        "LEADBOT_WEBHOOK_SECRET": secret,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
    }
    command = [*leadbot_command(), "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    return _start("leadbot", command, env, workdir / "leadbot.log")
