"""training.promote: the promotion gate."""

from __future__ import annotations

import numpy as np
import pytest

from training.config import PromotionConfig
from training.evaluate import Baseline, ClassMetrics, EvaluationReport, evaluate_probabilities
from training.promote import decide_promotion


def report(macro_f1: float, recalls: dict[str, float] | None = None, n: int = 100,
           baseline_f1: float = 0.2, supports: dict[str, int] | None = None) -> EvaluationReport:
    recalls = recalls or {"critical": 0.8, "high": 0.8, "medium": 0.8, "low": 0.8}
    supports = supports or {}
    per_class = {label: ClassMetrics(precision=0.8, recall=r, f1=0.8, support=supports.get(label, 25))
                 for label, r in recalls.items()}
    return EvaluationReport(
        n=n, accuracy=0.8, macro_f1=macro_f1, weighted_f1=macro_f1, per_class=per_class,
        majority_baseline=Baseline(label="medium", accuracy=0.4, macro_f1=baseline_f1),
        expected_calibration_error=0.05, labels=tuple(recalls), confusion=[],
    )


NO_FLOORS = PromotionConfig()


def test_first_model_must_beat_the_majority_baseline():
    good = decide_promotion(report(0.6, baseline_f1=0.15), None, NO_FLOORS)
    assert good.promote
    assert any("beats the baseline" in reason and "'medium'" in reason for reason in good.reasons)

    bad = decide_promotion(report(0.15, baseline_f1=0.15), None, NO_FLOORS)  # a tie is not a win
    assert not bad.promote
    assert any("does not beat the baseline" in reason for reason in bad.reasons)


def test_first_model_from_real_metrics():
    # A model that always predicts the majority class is the baseline: it must not be promoted.
    y_true = ["a"] * 7 + ["b"] * 3
    always_a = np.tile([0.9, 0.1], (10, 1))
    assert not decide_promotion(evaluate_probabilities(y_true, always_a, ("a", "b")), None, NO_FLOORS).promote
    perfect = np.array([[0.9, 0.1]] * 7 + [[0.1, 0.9]] * 3)
    assert decide_promotion(evaluate_probabilities(y_true, perfect, ("a", "b")), None, NO_FLOORS).promote


@pytest.mark.parametrize(
    "candidate, champion, tolerance, promote",
    [
        (0.80, 0.80, 0.0, True),  # a tie is enough against a champion
        (0.81, 0.80, 0.0, True),
        (0.79, 0.80, 0.0, False),
        (0.79, 0.80, 0.02, True),  # within tolerance
        (0.77, 0.80, 0.02, False),  # beyond it
    ],
)
def test_champion_comparison_with_tolerance(candidate, champion, tolerance, promote):
    decision = decide_promotion(report(candidate), report(champion), PromotionConfig(macro_f1_tolerance=tolerance))
    assert decision.promote is promote
    wanted = "matches or beats the champion" if promote else "worse than the champion"
    assert any(wanted in reason for reason in decision.reasons), decision.reasons


def test_recall_floor_applies_to_every_class_and_per_class_floors_override():
    recalls = {"critical": 0.45, "high": 0.9, "medium": 0.9, "low": 0.25}

    shared = decide_promotion(report(0.9, recalls), None, PromotionConfig(recall_floor=0.3))
    assert not shared.promote
    assert [r for r in shared.reasons if "below its floor" in r] == [
        "recall of 'low' is 0.250, below its floor 0.300"
    ]

    per_class = PromotionConfig(recall_floor=0.2, recall_floors={"critical": 0.5})
    decision = decide_promotion(report(0.9, recalls), report(0.5), per_class)
    assert not decision.promote
    assert any("'critical'" in r and "0.500" in r for r in decision.reasons)
    assert not any("'low'" in r for r in decision.reasons)  # 0.25 clears the shared 0.2 floor

    fixed = dict(recalls, critical=0.5)
    assert decide_promotion(report(0.9, fixed), report(0.5), per_class).promote  # at the floor is enough


def test_a_class_absent_from_the_evaluation_has_no_recall_to_check():
    decision = decide_promotion(
        report(0.9, {"critical": 0.0, "low": 0.9}, supports={"critical": 0}), None, PromotionConfig(recall_floor=0.5)
    )
    assert decision.promote


def test_reasons_list_failures_first():
    decision = decide_promotion(report(0.5, {"critical": 0.1, "low": 0.9}), report(0.9), PromotionConfig(recall_floor=0.2))
    assert not decision.promote
    assert len(decision.reasons) == 2
    assert "below its floor" in decision.reasons[0]
    assert "worse than the champion" in decision.reasons[1]


def test_different_evaluation_sizes_raise():
    with pytest.raises(ValueError, match="different data.*100 vs 99"):
        decide_promotion(report(0.9, n=100), report(0.8, n=99), NO_FLOORS)
