"""A new customer's domain through the running bot, as issue 17's check drives it: does a
retrain from the default model learn traits it has never seen?

Run on demand: ``python -m tests.bench.bench_new_domain [--data bank|linear] [--rows 4000]
[--labels 500] [--seeds 3] [--as-text] [--keep]``.

Per seed: rows of a generated domain (``tests/bench/synthetic_domains.py``), 30 % held out.
``leadbot serve`` starts on an empty SQLite database with the default B2B model and a webhook
secret; every row becomes a lead through signed ``identify`` webhooks, its columns as traits
(numbers as JSON numbers, or with ``--as-text`` every cell as text, as a CSV export gives
them); the first ``--labels`` training rows get their outcome through ``leadbot feedback
--file`` (id, outcome); then ``leadbot retrain --json`` and ``leadbot model activate N``, and
the held-out leads' scores are read from ``leadbot top N --json``. Their ROC AUC is printed
beside logistic regression and gradient boosting trained on the same labelled rows
(``bench_learn``'s pipelines), with the target: at least 0.98 × the better of the two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from bot.ingest.signatures import generate_secret
from config.loader import DEFAULT_PATH
from scoring.metrics import roc_auc
from tests.bench.bench_learn import _sklearn
from tests.bench.bench_replay import _launch, cli, send_events
from tests.bench.servers import free_port, leadbot_command
from tests.bench.synthetic_domains import DOMAINS, generate

HELD_OUT = 0.3
TARGET = 0.98


def _cell(value: str, as_text: bool) -> Any:
    """A CSV cell as a JSON trait: a number when it reads as one (unless ``as_text``)."""
    if as_text:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def _calls(
    rows: Sequence[tuple[int, dict[str, str]]], columns: list[str], as_text: bool
) -> list[Any]:
    """One identify call per ``(index, row)``, its columns as traits."""
    start = time.time() - 3600
    return [
        {"type": "identify", "userId": f"row-{i}", "messageId": f"identify-{i}",
         "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + i * 0.1)),
         "traits": {c: _cell(row[c], as_text) for c in columns}}
        for i, row in rows
    ]  # fmt: skip


async def run_seed(args: argparse.Namespace, seed: int, workdir: Path) -> dict[str, float]:
    rows = generate(args.data, args.rows, seed)
    columns = [c for c in rows[0] if c != "y"]
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    cut = int(len(rows) * HELD_OUT)
    held, train = order[:cut], order[cut : cut + args.labels]
    secret = generate_secret()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
        "LEADBOT_WEBHOOK_SECRET": secret,
    }
    port = free_port()
    command = [*leadbot_command(), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--config", str(DEFAULT_PATH)]  # fmt: skip
    server = await asyncio.to_thread(_launch, command, env, port, workdir / "leadbot.log")
    try:
        calls = _calls([(i, rows[i]) for i in order], columns, args.as_text)
        async with aiohttp.ClientSession() as http:
            sent = await send_events(http, server.url, secret, calls, "row")
        assert sent == len(calls), (sent, len(calls))
        labels = workdir / "labels.csv"
        labels.write_text(
            "id,outcome\n"
            + "".join(f"row-{i},{'won' if rows[i]['y'] == '1' else 'lost'}\n" for i in train)
        )
        await cli(env, "feedback", "--file", str(labels))
        summary = json.loads(await cli(env, "retrain", "--json"))
        if summary.get("version") is not None:
            await cli(env, "model", "activate", str(summary["version"]))
        top = json.loads(await cli(env, "top", str(len(rows)), "--json"))
    finally:
        server.stop()
    return _measure(rows, columns, held, train, top, summary)


def _measure(
    rows: Sequence[dict[str, str]], columns: list[str], held: list[int], train: list[int],
    top: Any, summary: dict[str, Any],
) -> dict[str, float]:  # fmt: skip
    listed = top["leads"] if isinstance(top, dict) else top
    scores = {entry["id"]: float(entry["score"]) for entry in listed}
    missing = [i for i in held if f"row-{i}" not in scores]
    assert not missing, f"{len(missing)} held-out leads not in `top --json`"
    y_held = np.array([float(rows[i]["y"]) for i in held])
    y_train = np.array([float(rows[i]["y"]) for i in train])
    train_rows, held_rows = [rows[i] for i in train], [rows[i] for i in held]
    got = {"bot": roc_auc(y_held, np.array([scores[f"row-{i}"] for i in held]))}
    for kind in ("lr", "gb"):
        got[kind] = roc_auc(y_held, _sklearn(kind)(train_rows, y_train, held_rows, columns))
    got["new rules"] = float(len(summary.get("new_rules") or []))
    return got


async def main_async(args: argparse.Namespace) -> int:
    results: list[dict[str, float]] = []
    for seed in range(args.seeds):
        workdir = Path(tempfile.mkdtemp(prefix="leadbot-domain-"))
        try:
            got = await run_seed(args, seed, workdir)
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        results.append(got)
        best = max(got["lr"], got["gb"])
        print(
            f"seed {seed}: bot {got['bot']:.4f}  LR {got['lr']:.4f}  GB {got['gb']:.4f}  "
            f"{got['bot'] / best:.3f} × the better  ({got['new rules']:.0f} new rules)"
        )
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    ratios = [r["bot"] / max(r["lr"], r["gb"]) for r in results]
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"\n{args.data}, {args.labels} labels, medians of {args.seeds} seeds: bot "
          f"{med['bot']:.4f}, LR {med['lr']:.4f}, GB {med['gb']:.4f}; the bot against the "
          f"better of the two, per seed: median {ratio:.3f} ({verdict} ≥ {TARGET}), "
          f"{sum(r >= TARGET for r in ratios)} of {len(ratios)} seeds at or above it, "
          f"least {min(ratios):.3f}")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=tuple(DOMAINS), default="bank")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--as-text", action="store_true", help="every trait as text")
    parser.add_argument("--keep", action="store_true", help="keep each seed's directory")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
