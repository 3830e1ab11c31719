"""One load phase: write a fresh signed pool, warm up, measure; and the committed-events check.

Pools are written right before the run that uses them (signatures are valid 5 minutes).
The floor keeps no state, so its pools may wrap around; leadbot stores events idempotently
on messageId, so its pools are sized from the rates already seen to last the whole run.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from tests.bench.loadgen import LoadResult, run_load
from tests.bench.servers import Server
from tests.bench.workload import Workload

POOL_MARGIN = 1.5  # a pool holds this many times the requests the run is expected to send
MIN_POOL = 2_000


@dataclass(frozen=True, slots=True)
class RunOptions:
    duration: float
    warmup: float
    connections: int
    threads: int
    use_wrk: bool
    workdir: Path


@dataclass(frozen=True, slots=True)
class PhaseResult:
    name: str
    events_per_request: int
    warmup: LoadResult
    measured: LoadResult
    server_cpu_percent: float
    peak_rss_mb: float = 0.0  # server and its children, peak so far at the phase's end

    @property
    def rps(self) -> float:
        return self.measured.rps

    @property
    def events_per_second(self) -> float:
        return self.measured.accepted / self.measured.duration_s

    def to_json(self) -> dict[str, object]:
        return {
            "events_per_request": self.events_per_request,
            "rps": round(self.rps, 1),
            "events_per_second": round(self.events_per_second, 1),
            "server_cpu_percent": round(self.server_cpu_percent, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "measured": self.measured.to_json(),
            "warmup": self.warmup.to_json(),
        }


def pool_size(rate: float, seconds: float) -> int:
    """Requests for `seconds` at `rate` requests/s, with margin."""
    return max(MIN_POOL, int(rate * seconds * POOL_MARGIN))


def fixed(count: int) -> Callable[[LoadResult], int]:
    """A measured pool of `count` requests, whatever the warm-up saw (for the floor)."""
    return lambda _warmup: count


def scaled(ceiling_rps: float, seconds: float) -> Callable[[LoadResult], int]:
    """A measured pool for `seconds` at twice the warm-up's rate (a warm-up runs slow), but
    no more than at `ceiling_rps`, the floor's rate."""
    return lambda warmup: pool_size(min(ceiling_rps, 2 * warmup.rps), seconds)


def run_phase(
    server: Server,
    workload: Workload,
    options: RunOptions,
    *,
    name: str,
    batch: int,
    warmup_requests: int,
    measured_requests: Callable[[LoadResult], int],
) -> PhaseResult:
    """Warm up with `warmup_requests`, then measure with a pool sized from the warm-up."""

    def load(tag: str, count: int, seconds: float) -> tuple[LoadResult, float]:
        pool = workload.write_pool(
            options.workdir, f"{name}-{tag}", count, batch=batch, threads=options.threads
        )
        cpu = server.cpu_seconds()
        result = run_load(server.url, pool, duration=seconds,
                          connections=options.connections, use_wrk=options.use_wrk)  # fmt: skip
        for path in pool.paths:
            path.unlink()
        return result, server.cpu_seconds() - cpu

    warm, _ = load("warmup", warmup_requests, options.warmup)
    measured, cpu = load("measured", measured_requests(warm), options.duration)
    return PhaseResult(
        name, batch, warm, measured, 100.0 * cpu / measured.duration_s, server.peak_rss_mb()
    )


@dataclass(frozen=True, slots=True)
class CommitCheck:
    """Did every acknowledged event reach the events table?

    `acknowledged` sums "accepted" over 202 answers. wrk stops mid-flight: requests it sent
    but never saw answered may still have been committed, so up to `in_flight_events` more
    rows than acknowledged are expected; fewer rows than acknowledged means lost events.
    """

    phase: str
    responses_202: int
    acknowledged: int
    committed: int
    in_flight_events: int

    @property
    def ok(self) -> bool:
        extra = self.committed - self.acknowledged
        return 0 <= extra <= self.in_flight_events

    def describe(self) -> str:
        verdict = "PASS" if self.ok else "FAIL"
        return (
            f"{verdict}: {self.phase}: 202 answers {self.responses_202:,}, events acknowledged "
            f"{self.acknowledged:,}, events committed {self.committed:,} "
            f"(sent but unanswered when the generator stopped: {self.in_flight_events:,} events)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "responses_202": self.responses_202,
            "acknowledged": self.acknowledged,
            "committed": self.committed,
            "in_flight_events": self.in_flight_events,
        }


def commit_check(phase: PhaseResult, committed: int) -> CommitCheck:
    runs = (phase.warmup, phase.measured)
    return CommitCheck(
        phase=phase.name,
        responses_202=sum(r.status_202 for r in runs),
        acknowledged=sum(r.accepted for r in runs),
        committed=committed,
        in_flight_events=sum(r.unanswered for r in runs) * phase.events_per_request,
    )


def count_events(db_path: Path, *, settle: float = 0.3, tries: int = 50) -> int:
    """Rows in `events`, read once the count stops changing (in-flight requests landed)."""
    last = -1
    for _ in range(tries):
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
            count = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        if count == last:
            return count
        last = count
        time.sleep(settle)
    return last
