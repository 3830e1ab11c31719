"""Drive a server with a written request pool from a separate process: wrk, else Python.

Both generators hand out the pool's requests in turn over `connections` keep-alive
connections for a fixed duration, and report the same ``LoadResult``. The generator's own CPU
time is measured (``RUSAGE_CHILDREN`` around the run), so the output can show whether the
generator, rather than the server, was the limit.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.bench.workload import Pool

WRK_SCRIPT = Path(__file__).with_name("wrk_requests.lua")
WRK_TIMEOUT = "30s"  # a slow answer is a latency to report, not an error


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load run saw. Times in seconds, latencies in milliseconds."""

    generator: str
    duration_s: float
    sent: int  # requests handed out (some may be unanswered when a wrk run stops)
    responses: int
    status_202: int
    status_other: dict[str, int]
    accepted: int  # sum of "accepted" over 202 answers: the events acknowledged
    duplicates: int
    errors: int  # socket errors and timeouts
    wraps: int  # times the pool was exhausted and restarted (duplicate messageIds)
    p50_ms: float
    p99_ms: float
    mean_ms: float
    generator_cpu_s: float

    @property
    def rps(self) -> float:
        """Acknowledged (202) requests per second."""
        return self.status_202 / self.duration_s if self.duration_s else 0.0

    @property
    def unanswered(self) -> int:
        return max(0, self.sent - self.responses)

    @property
    def generator_cpu_percent(self) -> float:
        return 100.0 * self.generator_cpu_s / self.duration_s if self.duration_s else 0.0

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"rps": round(self.rps, 1), "unanswered": self.unanswered}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str, pool: Pool, *, duration: float, connections: int, use_wrk: bool
) -> LoadResult:
    """Run one load phase against `url` with the requests of `pool`."""
    if use_wrk:
        command = _wrk_command(url, pool, duration=duration, connections=connections)
        parse = _parse_wrk
    else:
        command = [sys.executable, "-m", "tests.bench.pyload", "--url", url,
                   "--connections", str(connections), "--duration", str(duration),
                   *map(str, pool.paths)]  # fmt: skip
        parse = _parse_pyload
    before = _children_cpu()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    cpu = _children_cpu() - before
    if proc.returncode != 0:
        raise RuntimeError(
            f"load generator failed (exit {proc.returncode}): {' '.join(command[:3])} ...\n"
            f"{proc.stderr.strip()[-2000:]}"
        )
    return parse(proc.stdout, cpu)


def wrk_threads(connections: int) -> int:
    """One wrk thread keeps one core busy at most; the server needs the other (2-core box)."""
    return 1 if connections < 64 else 2


def _wrk_command(url: str, pool: Pool, *, duration: float, connections: int) -> list[str]:
    return [
        "wrk", "-t", str(len(pool.paths)), "-c", str(connections), "-d", f"{duration:g}s",
        "--timeout", WRK_TIMEOUT, "--latency", "-s", str(WRK_SCRIPT), url,
        "--", *map(str, pool.paths),
    ]  # fmt: skip


def _parse_wrk(stdout: str, cpu: float) -> LoadResult:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no WRKJSON line; its output was:\n{stdout[-2000:]}")
    r = json.loads(line.removeprefix("WRKJSON "))
    other = {k: r[f"s{k}"] for k in ("2xx", "401", "4xx", "5xx", "other") if r[f"s{k}"]}
    return LoadResult(
        generator="wrk",
        duration_s=r["duration_us"] / 1e6,
        sent=r["sent"],
        responses=r["responses"],
        status_202=r["s202"],
        status_other=other,
        accepted=r["accepted"],
        duplicates=r["duplicates"],
        errors=r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"],
        wraps=r["wraps"],
        p50_ms=r["p50_us"] / 1e3,
        p99_ms=r["p99_us"] / 1e3,
        mean_ms=r["mean_us"] / 1e3,
        generator_cpu_s=cpu,
    )


def _parse_pyload(stdout: str, cpu: float) -> LoadResult:
    r = json.loads(stdout.strip().splitlines()[-1])
    return LoadResult(generator="python-aiohttp", **r)  # its own CPU count, pool read left out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
