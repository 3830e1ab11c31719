"""Ingest benchmark: leadbot's signed-webhook throughput beside a floor measured in the same run.

``python -m tests.bench.bench_ingest [--duration 10] [--connections 32] [--skip-batch]``

Starts the floor (aiohttp that only verifies the signature and parses the JSON), then
``leadbot serve`` on SQLite, drives both with the same kind of signed single-event requests
from a separate load-generator process (wrk, else a Python aiohttp client), and prints
requests/s of each, their ratio, p50/p99 latency, then events/s for 100-event batches.
Fails (exit 1) when an acknowledged event is missing from the events table.
Targets: leadbot ≥ 0.5 × floor on single events; ≥ 50,000 events/s in batches.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.ingest.signatures import generate_secret
from tests.bench.context import code_version, machine
from tests.bench.loadgen import wrk_available, wrk_threads
from tests.bench.phases import (
    CommitCheck,
    PhaseResult,
    RunOptions,
    commit_check,
    count_events,
    fixed,
    pool_size,
    run_phase,
    scaled,
)
from tests.bench.report import render, summary
from tests.bench.servers import start_floor, start_leadbot
from tests.bench.workload import Workload

BATCH = 100
FLOOR_POOL = {1: 40_000, BATCH: 1_000}  # the floor may reuse a pool: it stores nothing
FLOOR_WARMUP_POOL = {1: 10_000, BATCH: 300}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_ingest", description=__doc__)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per phase")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--skip-batch", action="store_true", help="single events only")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the results here")
    p.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto",
                   help="load generator (auto: wrk when installed)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temp dir (db, server logs)")
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args(argv)


def _options(args: argparse.Namespace, workdir: Path) -> RunOptions:
    if args.generator == "wrk" and not wrk_available():
        raise SystemExit("bench: --generator wrk, but wrk is not installed (see README.md)")
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and wrk_available())
    threads = wrk_threads(args.connections) if use_wrk else 1
    return RunOptions(args.duration, args.warmup, args.connections, threads, use_wrk, workdir)


def _say(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")


def run_floor(workload: Workload, options: RunOptions, batches: bool) -> dict[int, PhaseResult]:
    results: dict[int, PhaseResult] = {}
    with start_floor(workload.secret, options.workdir) as floor:
        _say(f"floor up (pid {floor.pid}); driving it")
        for batch in (1, BATCH) if batches else (1,):
            results[batch] = run_phase(
                floor, workload, options, name=f"floor-{batch}", batch=batch,
                warmup_requests=FLOOR_WARMUP_POOL[batch],
                measured_requests=fixed(FLOOR_POOL[batch]),
            )  # fmt: skip
            _say(f"floor, {batch}-event requests: {results[batch].rps:,.0f} req/s")
    return results


def run_leadbot(
    workload: Workload, options: RunOptions, floor: dict[int, PhaseResult]
) -> tuple[dict[int, PhaseResult], list[CommitCheck]]:
    db_path = options.workdir / "bench.db"
    results: dict[int, PhaseResult] = {}
    checks: list[CommitCheck] = []
    with start_leadbot(workload.secret, db_path, options.workdir) as leadbot:
        _say(f"leadbot serve up (pid {leadbot.pid}, {db_path}); driving it")
        before = 0
        for batch, ceiling in floor.items():
            # leadbot does more than the floor: the floor's rate bounds the pools it needs.
            # A warm-up pool that runs out only resends duplicates, so it is capped.
            warmup = min(pool_size(ceiling.rps, options.warmup), FLOOR_POOL[batch])
            results[batch] = result = run_phase(
                leadbot, workload, options, name=f"leadbot-{batch}", batch=batch,
                warmup_requests=warmup,
                measured_requests=scaled(ceiling.rps, options.duration),
            )  # fmt: skip
            _say(f"leadbot, {batch}-event requests: {result.rps:,.0f} req/s")
            committed = count_events(db_path)
            checks.append(commit_check(result, committed - before))
            before = committed
        leadbot.stop()
    final = count_events(db_path)
    if final != before:  # events that landed after the last count, while stopping
        last = results[max(results)]
        checks[-1] = commit_check(last, checks[-1].committed + final - before)
    return results, checks


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    context = {"code": code_version(), "machine": machine()}
    workdir = Path(tempfile.mkdtemp(prefix="leadbot-bench-"))
    try:
        options = _options(args, workdir)
        workload = Workload(generate_secret(), seed=args.seed)
        floor = run_floor(workload, options, batches=not args.skip_batch)
        leadbot, checks = run_leadbot(workload, options, floor)
    finally:
        if args.keep:
            _say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result = summary(options, floor, leadbot, checks, context)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    else:
        print(json.dumps(result))
    if not all(c.ok for c in checks):
        _say("FAIL: acknowledged events are missing from the events table (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
