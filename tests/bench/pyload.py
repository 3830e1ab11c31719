"""The fallback load generator when wrk is not installed: aiohttp client, one process.

``python -m tests.bench.pyload --url URL --connections 32 --duration 10 POOL_FILE...``
prints one JSON line with the fields of ``LoadResult`` (CPU time counted from the first
request, so reading the pool is left out). `connections` worker coroutines share a
``TCPConnector(limit=connections)`` and hand out the pool's requests in turn; when the duration
is up they stop sending and wait for the answers in flight, so every request sent is answered
(unlike wrk, which abandons them) and the committed check becomes an exact equality.

Being pure Python (no uvloop), it tops out at a few thousand requests/s on one core: when
its CPU use in the bench output is near 100 %, it, not the server, set the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.bench.workload import read_pool

_COUNTS = re.compile(rb'"accepted":(\d+),"duplicates":(\d+)')


@dataclass
class _Tally:
    sent: int = 0
    responses: int = 0
    status_202: int = 0
    status_other: dict[str, int] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    errors: int = 0
    wraps: int = 0
    latencies: list[float] = field(default_factory=list)

    def record(self, status: int, body: bytes, latency: float) -> None:
        self.responses += 1
        self.latencies.append(latency)
        if status != 202:
            key = str(status)
            self.status_other[key] = self.status_other.get(key, 0) + 1
            return
        self.status_202 += 1
        match = _COUNTS.search(body)
        if match:
            self.accepted += int(match[1])
            self.duplicates += int(match[2])


async def drive(
    url: str, pool: list[tuple[dict[str, str], bytes]], *, connections: int, duration: float
) -> dict[str, object]:
    tally = _Tally()
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = loop.time()
        deadline = start + duration

        async def worker() -> None:
            while loop.time() < deadline:
                index = tally.sent
                tally.sent += 1
                if index and index % len(pool) == 0:
                    tally.wraps += 1
                headers, body = pool[index % len(pool)]
                began = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        answer = await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    tally.errors += 1
                    continue
                tally.record(response.status, answer, time.perf_counter() - began)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = loop.time() - start
    return _summary(tally, elapsed)


def _summary(tally: _Tally, elapsed: float) -> dict[str, object]:
    lat = sorted(tally.latencies) or [0.0]

    def pct(p: float) -> float:
        return 1e3 * lat[min(len(lat) - 1, int(p / 100 * len(lat)))]

    return {
        "duration_s": elapsed,
        "sent": tally.sent,
        "responses": tally.responses,
        "status_202": tally.status_202,
        "status_other": tally.status_other,
        "accepted": tally.accepted,
        "duplicates": tally.duplicates,
        "errors": tally.errors,
        "wraps": tally.wraps,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "mean_ms": 1e3 * sum(lat) / len(lat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    pool = read_pool(tuple(args.files))
    cpu = time.process_time()
    result = asyncio.run(
        drive(args.url, pool, connections=args.connections, duration=args.duration)
    )
    result["generator_cpu_s"] = time.process_time() - cpu
    print(json.dumps(result))


if __name__ == "__main__":
    main()
