"""A CPU cap for a set of processes, through the kernel's cgroup file system: a replica with
a machine of its own, ``cores`` wide, on a box that has more cores than it gives each.

It needs root and the ``cpu`` controller, cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``);
without them ``CpuCap`` raises ``CapUnavailable`` saying so. A process added to a cap stays
in it, and so do the processes it starts (a restarted ingest writer); ``close`` removes the
group once its processes have exited.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 10_000  # the accounting period: short, so a capped process never waits long


class CapUnavailable(RuntimeError):
    """This machine (or this user) cannot cap a process's CPU."""


def _v2_cpu() -> bool:
    controllers = ROOT / "cgroup.controllers"
    return controllers.is_file() and "cpu" in controllers.read_text().split()


class CpuCap:
    """A new cgroup whose processes together get at most ``cores`` CPUs."""

    def __init__(self, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"cores must be positive, got {cores}")
        name = f"leadbot-bench-{uuid.uuid4().hex[:8]}"
        quota = max(1_000, round(cores * PERIOD_US))
        if _v2_cpu():
            self.path, limit = ROOT / name, {"cpu.max": f"{quota} {PERIOD_US}"}
        elif (ROOT / "cpu" / "cpu.cfs_quota_us").is_file():
            self.path = ROOT / "cpu" / name
            limit = {"cpu.cfs_period_us": str(PERIOD_US), "cpu.cfs_quota_us": str(quota)}
        else:
            raise CapUnavailable(f"no cgroup cpu controller under {ROOT}")
        try:
            self.path.mkdir()
            for file, value in limit.items():
                (self.path / file).write_text(value)
        except OSError as exc:
            with suppress(OSError):
                self.path.rmdir()
            raise CapUnavailable(f"cannot create a CPU cap at {self.path}: {exc}") from exc
        self.cores = cores

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) under the cap."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Remove the group; its processes must have exited (the kernel refuses otherwise)."""
        with suppress(FileNotFoundError):
            self.path.rmdir()
