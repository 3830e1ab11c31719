"""What a result was measured on: the leadbot code the server ran, and how busy the box was.

Figures from a checkout with uncommitted changes, or from a machine that was running
something else, are not comparable with others: the output says so next to them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIRS = ("bot", "storage", "scoring", "config")


def leadbot_source() -> Path:
    """The directory the ``bot`` package is imported from, in a fresh interpreter with the
    environment the server gets (so ``PYTHONPATH`` pointing at another tree is honoured)."""
    out = subprocess.run(
        [sys.executable, "-c", "import bot, pathlib; print(pathlib.Path(bot.__file__).parent)"],
        capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    return Path(out.stdout.strip()).parent


def code_version() -> dict[str, object]:
    """Commit and uncommitted project files of the leadbot code under test, when in git."""
    root = leadbot_source()

    def git(*args: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return proc.stdout.rstrip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", *PROJECT_DIRS)
    return {
        "source": str(root),
        "commit": commit,
        "uncommitted": [line[3:] for line in dirty.splitlines()] if dirty else [],
    }


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
