"""New rules in a proposal: listed first, apart from the reweighted ones, with their support
and won rate, for the managers and for scripts."""

from __future__ import annotations

from bot.models.learning import proposal_message, retrain_summary
from bot.models.versions import RetrainResult
from config.loader import load_config
from scoring.refit import Proposal

MODEL = load_config().model
NEW = {"id": "lead_source_reference", "label": "lead_source is Reference", "points": 12.5,
       "support": 40, "won_rate": 0.8}  # fmt: skip


def result() -> RetrainResult:
    metrics = {"roc_auc": 0.7, "log_loss": 0.6}
    changes = {"lead_source_reference": (0.0, 12.5), "industry_software": (8.0, 6.0)}
    proposal = Proposal(MODEL, changes, metrics, {"roc_auc": 0.8, "log_loss": 0.5}, labels=200)
    return RetrainResult(proposal, 1, 2, {"rep": 200}, 0, (NEW,))


def test_the_managers_read_a_new_rule_with_its_support_and_won_rate() -> None:
    labels = {r.id: r.label for r in MODEL.rules}
    message = proposal_message(result(), model_labels=labels)
    first, second = message.changes
    assert (first.label, first.old, first.new) == (
        "New: lead_source is Reference (40 labels, 80% won)", 0.0, 12.5,
    )  # fmt: skip
    assert (second.label, second.old, second.new) == (labels["industry_software"], 8.0, 6.0)


def test_scripts_get_new_rules_apart_from_the_reweighted() -> None:
    summary = retrain_summary(result(), None, {r.id: r.label for r in MODEL.rules})
    assert summary["new_rules"] == [NEW]
    assert [r["rule"] for r in summary["reweighted"]] == ["industry_software"]
    assert (summary["status"], summary["auc_before"], summary["auc_after"]) == (
        "proposed", 0.7, 0.8,
    )  # fmt: skip


def test_a_new_scale_reads_with_the_won_rates_at_its_two_ends() -> None:
    """A scale reads above 0 for most labels: its one won rate says little, so the diff
    gives the won rates of the lowest and the highest quarter of its reading."""
    line = {"id": "duration_scaled", "label": "duration, in proportion from 3 to 1,100",
            "points": 42.0, "support": 496, "won_rate": 0.12, "won_lowest_quarter": 0.0312,
            "won_highest_quarter": 0.3125}  # fmt: skip
    changes = {"duration_scaled": (0.0, 42.0)}
    metrics = ({"roc_auc": 0.7, "log_loss": 0.6}, {"roc_auc": 0.8, "log_loss": 0.5})
    proposal = Proposal(MODEL, changes, *metrics, labels=500)
    found = RetrainResult(proposal, 1, 2, {"rep": 500}, 0, (line,))
    (change,) = proposal_message(found, model_labels={}).changes
    assert change.label == (
        "New: duration, in proportion from 3 to 1,100 (496 labels; 3% won in the lowest "
        "quarter, 31% in the highest)"
    )
    assert retrain_summary(found, None, {})["new_rules"] == [line]
