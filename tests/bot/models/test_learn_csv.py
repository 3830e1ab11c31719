"""bot/models/learn_csv.py and the ``leadbot learn`` / ``leadbot score`` commands on small CSVs."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from bot.cli import main
from bot.models.learn_csv import HistoryError, LearnOptions, learn_table, parse_table, read_table
from config import load_config
from scoring.metrics import roc_auc


def synthetic_rows(n: int, seed: int = 1) -> list[dict[str, str]]:
    """Leads whose outcome depends on the source, the time on site and a missing job."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        source = rng.choice(["Google", "google ", "Referral", "Ads", "Select"])
        seconds = float(rng.exponential(400))
        job = rng.choice(["Student", "Working", ""])
        z = -2.0 + 3.0 * (source == "Referral") + seconds / 150 - 2.5 * (job == "")
        won = rng.random() < 1 / (1 + np.exp(-z))
        rows.append(
            {
                "Lead Id": f"L{i:04d}",
                "Lead Source": str(source),
                "Time on site": f"{seconds:.0f}",
                "Job": str(job),
                "Converted": rng.choice(["Yes", "yes"]) if won else rng.choice(["No", "NO"]),
            }
        )
    return rows


def write_csv(
    path: Path,
    rows: list[dict[str, str]],
    *,
    delimiter: str = ",",
    bom: bool = False,
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter, quoting=quoting)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("delimiter", "bom", "quoting"),
    [(",", False, csv.QUOTE_MINIMAL), (";", True, csv.QUOTE_ALL), (";", False, csv.QUOTE_MINIMAL)],
)
def test_dialects_read_the_same_table(
    tmp_path: Path, delimiter: str, bom: bool, quoting: Literal[0, 1, 2, 3]
) -> None:
    rows = synthetic_rows(40)
    table = read_table(
        write_csv(tmp_path / "h.csv", rows, delimiter=delimiter, bom=bom, quoting=quoting)
    )
    assert table.columns == ("Lead Id", "Lead Source", "Time on site", "Job", "Converted")
    assert table.delimiter == delimiter
    assert list(table.rows) == rows


def test_a_trailing_empty_column_and_blank_lines_are_dropped() -> None:
    table = parse_table("a;b;\n1;x;\n\n2;;\n", "t.csv")
    assert table.columns == ("a", "b")
    assert table.rows == ({"a": "1", "b": "x"}, {"a": "2", "b": ""})
    assert table.lines == (2, 4)


def test_a_bad_outcome_names_the_line_and_the_value() -> None:
    table = parse_table("id,won\n1,yes\n2,won\n3,maybe\n", "h.csv")
    with pytest.raises(HistoryError, match=r"h.csv line 4: won: expected 1/0.*got 'maybe'"):
        learn_table(table, LearnOptions(outcome="won"), lambda *_: None)


def test_an_unknown_outcome_column_lists_the_columns() -> None:
    table = parse_table("id,won\n1,yes\n", "h.csv")
    with pytest.raises(HistoryError, match=r"--outcome 'Converted' is not a column.*'won'"):
        learn_table(table, LearnOptions(outcome="Converted"), lambda *_: None)


def test_learn_writes_a_model_that_ranks_new_leads(tmp_path: Path) -> None:
    history = write_csv(tmp_path / "history.csv", synthetic_rows(1500), delimiter=";", bom=True)
    out = tmp_path / "model.yaml"
    code = main(
        ["learn", str(history), "--outcome", "Converted", "--id", "Lead Id", "--out", str(out)]
    )
    assert code == 0
    model = load_config(out).model
    labels = {r.label for r in model.fit_rules}
    assert "Lead Source is Referral" in labels
    assert "Job is missing" in {r.label for r in model.rules}
    assert not any("Lead Id" in r.label for r in model.rules)
    assert all(float(r.points).is_integer() and r.points != 0 for r in model.rules)

    fresh = synthetic_rows(600, seed=2)
    scores_csv = tmp_path / "scores.csv"
    new = write_csv(tmp_path / "new.csv", fresh)
    assert (
        main(["score", str(new), "--model", str(out), "--id", "Lead Id", "--out", str(scores_csv)])
        == 0
    )
    with scores_csv.open(encoding="utf-8", newline="") as f:
        scored = list(csv.DictReader(f))
    assert list(scored[0]) == ["Lead Id", "score", "probability", "band", "reasons"]
    assert [r["Lead Id"] for r in scored] == [r["Lead Id"] for r in fresh]
    y = np.array([r["Converted"].lower() == "yes" for r in fresh], dtype=float)
    assert roc_auc(y, np.array([float(r["score"]) for r in scored])) > 0.8
    assert {r["band"] for r in scored} <= {"cold", "warm", "hot"}
    assert all(0 < float(r["probability"]) < 1 for r in scored)
    assert any(r["reasons"].count(";") == 2 for r in scored)


def test_learn_prints_held_out_metrics_and_says_how_it_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_csv(tmp_path / "h.csv", synthetic_rows(400))
    assert (
        main(
            [
                "learn",
                str(history),
                "--outcome",
                "Converted",
                "--ignore",
                "Lead Id",
                "--out",
                str(tmp_path / "m.yaml"),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "random 25 % of the rows (seed 0; a CSV has no time order)" in err
    assert "ROC AUC" in err
    assert "top-decile lift" in err


def test_the_base_model_is_the_prior_and_keeps_its_event_rules(tmp_path: Path) -> None:
    history = write_csv(tmp_path / "h.csv", synthetic_rows(300))
    out = tmp_path / "m.yaml"
    assert (
        main(
            [
                "learn",
                str(history),
                "--outcome",
                "Converted",
                "--id",
                "Lead Id",
                "--model",
                str(Path("config/default.yaml").resolve()),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    model = load_config(out).model
    base = load_config().model
    assert model.rule("demo_request") == base.rule("demo_request")
    # The data has no title column: the base rule on titles keeps its points.
    assert model.rule("role_sales_leader").points == base.rule("role_sales_leader").points
    assert model.bands == base.bands


def test_a_bad_cli_outcome_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h.csv"
    history.write_text("id,won\n1,yes\n2,perhaps\n", encoding="utf-8")
    assert main(["learn", str(history), "--outcome", "won", "--out", str(tmp_path / "m.yaml")]) == 2
    assert "line 3: won:" in capsys.readouterr().err
    assert not (tmp_path / "m.yaml").exists()
