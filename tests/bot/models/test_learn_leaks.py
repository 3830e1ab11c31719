"""``leadbot learn`` drops id-like columns by itself and refuses likely leaks unless told."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.models.learn_csv import band_note
from config import load_config
from scoring import BandSpec, Threshold
from tests.bot.models.test_learn_csv import write_csv

STRENGTHS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4)


def leaky_rows(n: int = 400, seed: int = 5) -> list[dict[str, str]]:
    """Six honest form columns, a row number, and a quality grade set after the sales call."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        picks = rng.integers(0, 3, 6)
        z = -0.3 + sum(s * (p - 1) for s, p in zip(STRENGTHS, picks, strict=True))
        won = bool(rng.random() < 1 / (1 + np.exp(-z)))
        row = {"Lead Number": str(600_000 + 3 * i)}
        row |= {f"Form {j}": ("low", "mid", "high")[p] for j, p in enumerate(picks)}
        quality = ("High" if won else "Low") if rng.random() < 0.85 else "Medium"
        row |= {"Lead Quality": quality, "Converted": "yes" if won else "no"}
        rows.append(row)
    return rows


def learn(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    history = write_csv(tmp_path / "leads.csv", leaky_rows())
    out = tmp_path / "model.yaml"
    return main(["learn", str(history), "--outcome", "Converted", "--out", str(out), *extra]), out


def test_a_likely_leak_is_refused_with_its_figure_and_the_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = learn(tmp_path)
    err = capsys.readouterr().err
    assert code == 2
    assert not out.exists()
    assert "ignored Lead Number: an id (unique per row)" in err
    assert "warning: Lead Quality: AUC 0.9" in err
    assert "— filled after the sales contact?" in err
    assert "not writing a model: 1 likely leak(s): Lead Quality" in err
    assert "--ignore COLUMN" in err
    assert "--allow COLUMN" in err
    assert 'e.g. --ignore "Lead Quality"' in err


def test_ignore_leaves_the_leak_out_and_the_id_is_never_a_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = learn(tmp_path, "--ignore", "Lead Quality")
    err = capsys.readouterr().err
    assert code == 0
    assert "warning" not in err
    labels = " ".join(r.label for r in load_config(out).model.rules)
    assert "Form 0" in labels
    assert "Lead Quality" not in labels
    assert "Lead Number" not in labels
    assert "# Not learned from Lead Number: an id (unique per row)." in out.read_text()


def test_allow_learns_from_the_flagged_column_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = learn(tmp_path, "--allow", "Lead Quality", "--allow", "Lead Number")
    err = capsys.readouterr().err
    assert code == 0
    assert "(allowed)" in err
    assert "ignored Lead Number" not in err  # --allow keeps an id-like column too
    text = out.read_text()
    assert "# Allowed despite a leak warning: Lead Quality: AUC 0.9" in text
    assert any(r.label.startswith("Lead Quality is") for r in load_config(out).model.rules)


def test_allow_of_an_unknown_column_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = learn(tmp_path, "--allow", "Lead Qualty")
    assert code == 2
    assert "--allow 'Lead Qualty' is not a column" in capsys.readouterr().err


def test_negative_band_edges_are_explained_in_the_yaml(tmp_path: Path) -> None:
    code, out = learn(tmp_path, "--ignore", "Lead Quality")
    assert code == 0
    bands = load_config(out).model.bands
    explained = "A negative band edge is expected" in out.read_text()
    assert explained == (min(bands.warm.points or 0, bands.hot.points or 0) < 0)


def test_only_a_negative_edge_gets_the_note() -> None:
    note = band_note(BandSpec(warm=Threshold(points=-19.0), hot=Threshold(points=12.0)))
    assert note is not None
    assert "relative to a lead that matches no rule" in note
    assert "the top 40 % are warm or hot" in note
    assert band_note(BandSpec(warm=Threshold(points=0.0), hot=Threshold(points=12.0))) is None
