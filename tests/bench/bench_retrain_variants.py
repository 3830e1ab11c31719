"""Retrain settings compared in seconds, on databases the replay kept.

Run on demand: ``python -m tests.bench.bench_retrain_variants SEED=DIR [SEED=DIR …]
[--variant JSON …] [--base N]``, where each ``DIR`` is what ``bench_replay --keep`` left
(``replay.db`` and the config copy) for that ``--seed``. A full replay takes minutes a
seed; the retrain it ends with takes ~40 s. This redoes only that retrain, in process, once
per variant, so a setting can be judged over several seeds before it is wired in:

1. a copy of the kept database, its versions after ``--base`` (default 2: the one fitted at
   the replay's first checkpoint) dropped and ``--base`` made active again;
2. ``bot.models.versions.retrain`` with the config's ``learning:`` section, its guardrails
   and discovery settings overridden by the variant, e.g.
   ``{"discovery": {"max_rules": 40}, "guardrails": {"max_change_points": 20}}``;
3. ``activate`` of the proposal, in process, as ``leadbot model activate`` does (events
   recounted for the rules it adds, every lead rescored);
4. the held-out leads' stored ``score`` read back and ranked against their outcomes (the
   replay's split for that seed).

``{}`` (the config as it is) must give the replay's own figure for its last checkpoint;
it is always run first. Printed: per variant, each seed's held-out AUC, the mean, and the
mean difference from ``{}``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bot.models.versions import activate, retrain
from config.loader import load_config
from scoring.discover import Discovery
from scoring.metrics import roc_auc
from scoring.refit import Guardrails
from storage.engine import create_engine
from tests.bench.bench_learn import DATA
from tests.bench.bench_replay import load_rows, outcome, split
from tests.bench.replay_events import ID_COLUMN

SECTIONS: Mapping[str, type] = {"guardrails": Guardrails, "discovery": Discovery}


def parse_variant(text: str) -> dict[str, dict[str, Any]]:
    """``{"discovery": {...}, "guardrails": {...}}``; a clear error for anything else."""
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err}): {text!r}") from None
    if not isinstance(found, dict) or not set(found) <= set(SECTIONS):
        raise argparse.ArgumentTypeError(f"keys must be among {tuple(SECTIONS)}: {text!r}")
    for section, settings in found.items():
        known = {f.name for f in fields(SECTIONS[section])}
        if not isinstance(settings, dict) or not set(settings) <= known:
            raise argparse.ArgumentTypeError(
                f"{section}: an object of {', '.join(sorted(known))}: {text!r}"
            )
        # JSON has no tuples: the settings' sequences (ordinal, reasons) are tuples
        found[section] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
    return found


def copied(kept: Path, base: int, into: Path) -> Path:
    """A copy of the kept database with ``base`` active again and every later version gone."""
    db = into / "replay.db"
    for suffix in ("", "-wal"):
        if (source := Path(f"{kept / 'replay.db'}{suffix}")).exists():
            shutil.copy(source, f"{db}{suffix}")
    with closing(sqlite3.connect(db)) as conn, conn:  # closed, not only committed
        if conn.execute("SELECT 1 FROM model_versions WHERE id = ?", (base,)).fetchone() is None:
            raise SystemExit(f"{kept}: no model version {base} to start from (--base)")
        conn.execute("DELETE FROM model_versions WHERE id > ?", (base,))
        conn.execute("UPDATE model_versions SET status = 'active' WHERE id = ?", (base,))
    return db


def config_of(kept: Path) -> Path:
    """The config copy the replay ran with."""
    return next(kept.glob("*.yaml"))


def held_out(seed: int) -> tuple[list[str], np.ndarray]:
    """The held-out leads' ids and outcomes: the replay's split for ``seed``."""
    _, held = split(load_rows(DATA), seed)
    return [row[ID_COLUMN] for row in held], np.array([outcome(row) for row in held])


async def held_out_auc(
    kept: Path,
    held: tuple[list[str], np.ndarray],
    variant: Mapping[str, Mapping[str, Any]],
    base: int,
    now: float,
) -> tuple[float, int]:
    """The held-out AUC after the variant's retrain is activated, and its number of rules."""
    config = load_config(config_of(kept))
    learning = config.learning
    with tempfile.TemporaryDirectory(prefix="leadbot-variant-") as tmp:
        db = copied(kept, base, Path(tmp))
        engine = create_engine(f"sqlite+aiosqlite:///{db}")
        try:
            result = await retrain(
                engine=engine, config_model=config.model, now=now, labels=learning.labels,
                guardrails=replace(learning.guardrails, **variant.get("guardrails", {})),
                discovery=replace(learning.discovery, **variant.get("discovery", {})),
                crm_weight=config.crm.label_weight, excluded=learning.exclude_traits,
                label_weights=learning.weights,
            )  # fmt: skip
            if result.version_id is not None:
                await activate(engine=engine, version_id=result.version_id, by="bench", now=now)
        finally:
            await engine.dispose()
        with closing(sqlite3.connect(db)) as conn:
            stored = dict(conn.execute("SELECT id, score FROM leads"))
    ids, truth = held
    scores = np.array([float(stored[lead_id]) for lead_id in ids])
    return roc_auc(truth, scores), len(result.proposal.model.rules)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_retrain_variants")
    parser.add_argument("kept", nargs="+", help="SEED=DIR: what bench_replay --keep left")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[])
    parser.add_argument("--base", type=int, default=2, help="the version the retrain starts from")
    args = parser.parse_args(argv)
    runs = []
    for word in args.kept:
        seed, _, folder = word.partition("=")
        if not seed.isdigit() or not (Path(folder) / "replay.db").exists():
            parser.error(f"expected SEED=DIR with DIR/replay.db, got {word!r}")
        runs.append((int(seed), Path(folder)))
    args.runs = runs
    return args


async def run(args: argparse.Namespace) -> None:
    now = time.time()  # one instant for every variant: decay reads the same
    reference: list[float] = []
    held = {seed: held_out(seed) for seed, _ in args.runs}  # the CSV read once a seed
    for variant in [{}, *args.variant]:
        aucs = []
        for seed, folder in args.runs:
            start = time.perf_counter()
            auc, rules = await held_out_auc(folder, held[seed], variant, args.base, now)
            aucs.append(auc)
            took = time.perf_counter() - start
            sys.stdout.write(f"  seed {seed}: AUC {auc:.4f}, {rules} rules, {took:.0f} s\n")
        reference = reference or aucs
        delta = float(np.mean(aucs) - np.mean(reference))
        sys.stdout.write(
            f"{orjson.dumps(variant).decode()}: mean {np.mean(aucs):.4f} ({delta:+.4f} against "
            f"{{}}), per seed {' '.join(f'{a:.4f}' for a in aucs)}\n"
        )
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
