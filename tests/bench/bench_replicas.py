"""Does ingest grow with the number of ``leadbot serve`` replicas on one PostgreSQL?

Run on demand, with a PostgreSQL server whose URL can create databases:
``LEADBOT_TEST_POSTGRES_URL=postgresql+asyncpg://… python -m tests.bench.bench_replicas
[--replicas 1,2,4] [--runs 3] [--duration 10] [--batch 1] [--cpu-per-replica CORES]``.

Per run and per replica count, on a fresh database (migrated once, before the replicas
start): N ``leadbot serve`` processes with ``LEADBOT_REUSE_PORT=1`` on ONE port (the kernel
spreads the load generator's connections between them), driven like the ingest bench (its
workload, its pools of signed requests, wrk or the Python generator over 32 connections: a
warm-up, an ``ANALYZE`` (as autovacuum would run soon after a deployment's first rows),
then the measured run). Then every acknowledged event must be in ``events``
(``FAIL`` and exit 1 otherwise). Prints events/s per replica count, as a ratio to the
single-replica figure of the same run, each replica's share of the server CPU, and the
medians. The single replica is the floor: N replicas would ideally do N times as much.

On a machine that one replica and PostgreSQL already keep busy, more replicas can only
split its cores. ``--cpu-per-replica CORES`` asks the other question, as if each replica
had a small machine of its own: a cgroup caps each replica (its server and its writer) at
CORES CPUs, and each replica gets the load one alone gets (``--connections`` each). Then N
replicas doing N times as much means the shared database, its locks and the claims add no
bottleneck of their own up to that load (root and the cgroup ``cpu`` controller needed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bot.ingest.signatures import generate_secret
from storage.engine import create_engine
from storage.migrate import upgrade
from tests.bench.cpucap import CapUnavailable, CpuCap
from tests.bench.loadgen import LoadResult, run_load, wrk_available, wrk_threads
from tests.bench.phases import PhaseResult, commit_check, pool_size
from tests.bench.servers import (
    STARTUP_SECONDS,
    STOP_SECONDS,
    Server,
    children,
    free_port,
    leadbot_command,
)
from tests.bench.workload import USERS, Workload

WARMUP_REQUESTS = 4_000
CEILING_RPS = 20_000.0  # the largest pool a measured run may need, per second


def listen_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port``: with the port shared,
    a /healthz answer may come from another replica, so readiness is read from /proc."""
    inodes = listen_inodes(port)
    with suppress(FileNotFoundError, PermissionError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
    return False


def start_replicas(
    url: str, n: int, port: int, secret: str, workdir: Path, *, ingest: str = "process"
) -> list[Server]:
    """``n`` ``leadbot serve`` processes sharing ``port`` (``LEADBOT_REUSE_PORT=1``) on the
    database ``url`` (``LEADBOT_INGEST=ingest``); returned once each one listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNECTIONS__"))}
    env |= {"DATABASE_URL": url, "LEADBOT_WEBHOOK_SECRET": secret, "LEADBOT_REUSE_PORT": "1",
            "LEADBOT_LOG_LEVEL": "WARNING", "LEADBOT_INGEST": ingest}  # fmt: skip
    command = [*leadbot_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    servers = []
    for i in range(n):
        log_path = workdir / f"replica{n}-{i}.log"
        log = log_path.open("wb")
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        servers.append(Server(f"replica{i}", process, port, log_path, log))
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        for server in servers:
            while not listening(server.pid, port):
                if server.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} did not start:\n{server.log_tail()}")
                time.sleep(0.1)
        servers[0].wait_ready()  # the shared port answers /healthz
    except BaseException:
        stop_replicas(servers)
        raise
    return servers


def stop_replicas(servers: list[Server]) -> None:
    """SIGINT to all first, so they drain side by side; then reap each."""
    for server in servers:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGINT)
    for server in servers:
        with suppress(subprocess.TimeoutExpired):
            server.process.wait(STOP_SECONDS)
        server.stop()


async def _create(admin_url: str) -> str:
    name = f"bench_replicas_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
    return url


async def _analyze(url: str) -> None:
    """What autovacuum does within a minute of a real deployment's first rows. Without it
    the measured run is a fresh database's first seconds: each replica's statements were
    prepared on empty tables, and PostgreSQL keeps the generic plans it chose then (a
    sequential scan of ``identities`` per transaction) until an ANALYZE invalidates them.
    That halved a single replica's events/s (README)."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def _count_and_drop(admin_url: str, url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            count = int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())
    finally:
        await engine.dispose()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            name = url.rsplit("/", 1)[1]
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
    return count


def _machine() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _postgres_cpu() -> float:
    """CPU seconds so far of every process named postgres (the server and its backends)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):
                if (entry / "comm").read_text().strip() == "postgres":
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds over one measured run: each replica's, PostgreSQL's, the machine's."""

    replicas: list[float]
    postgres: float
    busy: float
    total: float


def _load(
    servers: list[Server], workload: Workload, args: argparse.Namespace, tag: str,
    count: int, seconds: float, workdir: Path,
) -> tuple[LoadResult, Cpu]:  # fmt: skip
    """One load phase against the shared port; the run and the CPU it took."""
    connections = _connections(args, len(servers))
    threads = wrk_threads(connections)
    pool = workload.write_pool(workdir, tag, count, batch=args.batch, threads=threads)
    cpu, postgres, (busy, total) = [s.cpu_seconds() for s in servers], _postgres_cpu(), _machine()
    result = run_load(servers[0].url, pool, duration=seconds, connections=connections,
                      use_wrk=args.use_wrk)  # fmt: skip
    busy_after, total_after = _machine()
    used = Cpu(
        [s.cpu_seconds() - c for s, c in zip(servers, cpu, strict=True)],
        _postgres_cpu() - postgres, busy_after - busy, total_after - total,
    )  # fmt: skip
    for path in pool.paths:
        path.unlink()
    return result, used


def _connections(args: argparse.Namespace, replicas: int) -> int:
    """With a CPU cap per replica, each replica gets the load one alone would: the question
    is then whether capacity added by replicas is used, not how a fixed load splits."""
    return args.connections * (replicas if args.cpu_per_replica else 1)


def _cap(servers: list[Server], cores: float | None, caps: list[CpuCap]) -> None:
    """One cap per replica, holding its server and its ingest writer, appended to ``caps``
    as each is made (the caller removes every one made, even if a later one fails)."""
    if cores is None:
        return
    for server in servers:
        caps.append(CpuCap(cores))
        for pid in (server.pid, *children(server.pid)):
            caps[-1].add(pid)


def _one(n: int, args: argparse.Namespace, workdir: Path, run: int) -> tuple[float, bool, str]:
    """events/s of ``n`` replicas on a fresh database, whether every acknowledged event is
    committed, and a line describing the run."""
    secret = generate_secret()
    url = asyncio.run(_create(args.postgres))
    workload = Workload(secret, seed=args.seed + run, users=args.users)
    servers = start_replicas(url, n, free_port(), secret, workdir)
    caps: list[CpuCap] = []
    try:
        _cap(servers, args.cpu_per_replica, caps)
        tag = f"r{run}n{n}"
        warm, _ = _load(servers, workload, args, f"{tag}w", WARMUP_REQUESTS, args.warmup, workdir)
        asyncio.run(_analyze(url))
        count = pool_size(min(CEILING_RPS, 2 * max(warm.rps, 500.0)), args.duration)
        measured, cpu = _load(servers, workload, args, f"{tag}m", count, args.duration, workdir)
    finally:
        stop_replicas(servers)
        for cap in caps:
            cap.close()
    phase = PhaseResult(f"{n} replicas", args.batch, warm, measured, 0.0)
    check = commit_check(phase, asyncio.run(_count_and_drop(args.postgres, url)))
    leadbot = sum(cpu.replicas) or 1.0
    shares = "/".join(f"{c / leadbot:.0%}" for c in cpu.replicas)
    seconds, events = measured.duration_s, max(1, measured.accepted)
    line = (
        f"{phase.events_per_second:7,.0f} events/s, p99 {measured.p99_ms:.0f} ms; CPU in % of "
        f"a core: leadbot {100 * leadbot / seconds:.0f} (per replica {shares}), PostgreSQL "
        f"{100 * cpu.postgres / seconds:.0f}, generator {measured.generator_cpu_percent:.0f}; "
        f"machine busy {cpu.busy / cpu.total:.0%}; leadbot+PostgreSQL "
        f"{1e3 * (leadbot + cpu.postgres) / events:.2f} ms CPU per event; {check.describe()}"
    )
    return phase.events_per_second, check.ok, line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("LEADBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--users", type=int, default=USERS,
        help=f"distinct userIds the events come from (default {USERS:,}, as bench_ingest)",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-per-replica", type=float, metavar="CORES",
        help="cap each replica (server and writer) at CORES CPUs (cgroups; root), and give "
        "each the --connections one alone gets: does added capacity add throughput?",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.postgres:
        sys.stderr.write("bench_replicas needs --postgres URL or LEADBOT_TEST_POSTGRES_URL\n")
        return 2
    args.use_wrk = wrk_available()
    counts = [int(n) for n in args.replicas.split(",")]
    if args.cpu_per_replica is not None:
        try:
            CpuCap(args.cpu_per_replica).close()
        except (CapUnavailable, ValueError) as exc:
            sys.stderr.write(f"bench_replicas: --cpu-per-replica: {exc}\n")
            return 2
    each = " per replica" if args.cpu_per_replica else ""
    cap = f", each replica capped at {args.cpu_per_replica:g} CPU" if args.cpu_per_replica else ""
    print(f"generator: {'wrk' if args.use_wrk else 'python'}, {args.connections} connections"
          f"{each}, {args.batch} event(s) per request, {os.cpu_count()} cores{cap}")  # fmt: skip
    rates: dict[int, list[float]] = {n: [] for n in counts}
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        for run in range(args.runs):
            for n in counts:
                rate, committed, line = _one(n, args, Path(tmp), run)
                rates[n].append(rate)
                ok &= committed
                base = rates[counts[0]][-1]
                print(f"run {run + 1}, {n} replica(s): {line} [{rate / base:.2f}x]")
    base = statistics.median(rates[counts[0]])
    print("median events/s:")
    for n in counts:
        value = statistics.median(rates[n])
        raw = ", ".join(f"{r:,.0f}" for r in rates[n])
        print(f"  {n} replica(s): {value:9,.0f} = {value / base:.2f}x {counts[0]} "
              f"replica(s) (ideal {n / counts[0]:.0f}x; runs: {raw})")  # fmt: skip
    print("every acknowledged event committed" if ok else "FAIL: acknowledged events missing")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
