"""training.evaluate: metrics, calibration error, review thresholds and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from training.evaluate import (
    choose_thresholds,
    evaluate_probabilities,
    expected_calibration_error,
    metric_safe,
    plot_confusion_matrix,
    plot_reliability,
    review_rate,
)

LABELS = ("billing", "technical", "account")


def one_hot_probabilities(predicted: list[str], labels=LABELS, confidence: float = 0.8) -> np.ndarray:
    """Probabilities whose argmax is ``predicted``, with the rest spread evenly."""
    rest = (1 - confidence) / (len(labels) - 1)
    matrix = np.full((len(predicted), len(labels)), rest)
    for row, label in enumerate(predicted):
        matrix[row, labels.index(label)] = confidence
    return matrix


Y_TRUE = ["billing", "billing", "technical", "account", "technical", "billing", "account", "technical"]
Y_PRED = ["billing", "technical", "technical", "account", "billing", "billing", "technical", "technical"]


def test_metrics_match_sklearn():
    report = evaluate_probabilities(Y_TRUE, one_hot_probabilities(Y_PRED), LABELS)

    assert report.n == len(Y_TRUE)
    assert report.accuracy == pytest.approx(accuracy_score(Y_TRUE, Y_PRED))
    assert report.macro_f1 == pytest.approx(f1_score(Y_TRUE, Y_PRED, labels=list(LABELS), average="macro"))
    assert report.weighted_f1 == pytest.approx(f1_score(Y_TRUE, Y_PRED, labels=list(LABELS), average="weighted"))
    precision, recall, f1, support = precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=list(LABELS))
    for i, label in enumerate(LABELS):
        metrics = report.per_class[label]
        assert (metrics.precision, metrics.recall, metrics.f1) == pytest.approx((precision[i], recall[i], f1[i]))
        assert metrics.support == support[i]
    assert report.confusion == confusion_matrix(Y_TRUE, Y_PRED, labels=list(LABELS)).tolist()
    assert report.labels == LABELS


def test_hand_computed_values():
    # 5 of 8 right; billing: P 2/3 R 2/3, technical: P 2/4 R 2/3, account: P 1/1 R 1/2
    report = evaluate_probabilities(Y_TRUE, one_hot_probabilities(Y_PRED), LABELS)
    assert report.accuracy == pytest.approx(5 / 8)
    assert report.per_class["technical"].precision == pytest.approx(0.5)
    assert report.per_class["account"].recall == pytest.approx(0.5)


def test_unseen_true_labels_count_as_errors():
    y_true = ["billing", "shipping", "shipping", "technical"]
    predicted = ["billing", "billing", "technical", "technical"]

    report = evaluate_probabilities(y_true, one_hot_probabilities(predicted), LABELS)

    assert report.accuracy == pytest.approx(0.5)
    assert report.labels == (*LABELS, "shipping")
    assert report.per_class["shipping"].support == 2
    assert report.per_class["shipping"].recall == 0.0
    # macro-F1 averages over the unseen class too (its F1 is 0), so it is below the seen-only average
    seen_only = f1_score(y_true, predicted, labels=list(LABELS), average="macro", zero_division=0)
    all_labels = f1_score(y_true, predicted, labels=[*LABELS, "shipping"], average="macro", zero_division=0)
    assert report.macro_f1 == pytest.approx(all_labels)
    assert report.macro_f1 < seen_only
    assert np.asarray(report.confusion).sum() == len(y_true)


def test_majority_baseline():
    y_true = ["billing"] * 6 + ["technical"] * 3 + ["account"]
    report = evaluate_probabilities(y_true, one_hot_probabilities(["billing"] * 10), LABELS)

    baseline = report.majority_baseline
    assert baseline.label == "billing"
    assert baseline.accuracy == pytest.approx(0.6)
    assert baseline.macro_f1 == pytest.approx(f1_score(y_true, ["billing"] * 10, average="macro", zero_division=0))
    # a model that always says billing is exactly the baseline
    assert report.macro_f1 == pytest.approx(baseline.macro_f1)


def test_empty_evaluation_is_refused():
    with pytest.raises(ValueError, match="zero"):
        evaluate_probabilities([], np.empty((0, 3)), LABELS)


def test_summary_is_json_and_flat_metrics_are_mlflow_safe():
    report = evaluate_probabilities(["a b", "c/d"], np.array([[0.9, 0.1], [0.2, 0.8]]), ("a b", "c/d"))
    summary = json.loads(json.dumps(report.summary()))
    assert set(summary) >= {"accuracy", "macro_f1", "per_class", "majority_baseline", "expected_calibration_error"}
    assert summary["per_class"]["a b"]["recall"] == 1.0
    flat = report.flat_metrics()
    assert flat["recall_a_b"] == 1.0 and flat["precision_c/d"] == 1.0
    assert metric_safe("héllo wörld!") == "héllo_wörld_"


# --------------------------------------------------------------------- calibration


def test_ece_is_zero_when_perfectly_calibrated():
    # In each bin, accuracy equals the confidence: 0.25 -> 1 of 4 right, 0.75 -> 3 of 4 right, 1.0 -> all right.
    confidence = np.array([0.25] * 4 + [0.75] * 4 + [1.0] * 2)
    correct = np.array([1, 0, 0, 0] + [1, 1, 1, 0] + [1, 1], dtype=bool)
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_model():
    # Always 95 % sure, right half of the time: ECE is the gap, 0.45.
    confidence = np.full(100, 0.95)
    correct = np.arange(100) % 2 == 0
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.45)


def test_ece_weights_bins_by_size():
    # 80 tickets at 0.9 all right (gap 0.1), 20 at 0.6 all wrong (gap 0.6): 0.8*0.1 + 0.2*0.6
    confidence = np.r_[np.full(80, 0.9), np.full(20, 0.6)]
    correct = np.r_[np.ones(80, bool), np.zeros(20, bool)]
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.8 * 0.1 + 0.2 * 0.6)


def test_report_ece_uses_max_probability_and_correctness():
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.05, 0.95], [0.05, 0.95]])
    report = evaluate_probabilities(["a", "b", "b", "a"], probabilities, ("a", "b"))
    assert report.expected_calibration_error == pytest.approx(0.45)


# --------------------------------------------------------------------- review thresholds


def noisy_predictions(seed: int = 0, n: int = 600):
    """Three classes; the model is more often right when it is more confident."""
    rng = np.random.default_rng(seed)
    labels = ("a", "b", "c")
    y_true = rng.choice(labels, size=n)
    confidence = rng.uniform(0.34, 1.0, size=n)
    right = rng.random(n) < confidence
    wrong_label = {label: [x for x in labels if x != label] for label in labels}
    predicted = [t if r else wrong_label[t][rng.integers(2)] for t, r in zip(y_true, right)]
    probabilities = np.zeros((n, 3))
    for row, (label, c) in enumerate(zip(predicted, confidence)):
        probabilities[row] = (1 - c) / 2
        probabilities[row, labels.index(label)] = c
    return y_true, probabilities, labels


@pytest.mark.parametrize("target", [0.7, 0.85, 0.95])
def test_thresholds_reach_the_target_precision_on_their_data(target):
    y_true, probabilities, labels = noisy_predictions()
    thresholds = choose_thresholds(y_true, probabilities, labels, target_precision=target)

    predicted = np.asarray(labels)[probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    for label in labels:
        threshold = thresholds[label]
        assert 0 < threshold <= 1, f"{label}: {threshold}"
        accepted = (predicted == label) & (confidence >= threshold)
        assert accepted.any()
        assert (y_true[accepted] == label).mean() >= target
        # and it is the lowest such threshold: one more (lower) prediction would miss the target
        lower = (predicted == label) & (confidence < threshold)
        if lower.any():
            next_confidence = confidence[lower].max()
            widened = (predicted == label) & (confidence >= next_confidence)
            assert (y_true[widened] == label).mean() < target


def test_threshold_above_one_when_the_target_is_impossible():
    # Class "b" is predicted three times and always wrong; "c" is never predicted.
    y_true = ["a", "a", "a", "a", "a"]
    probabilities = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0]])
    thresholds = choose_thresholds(y_true, probabilities, ("a", "b", "c"), target_precision=0.9)

    assert thresholds["a"] == pytest.approx(0.8)
    assert thresholds["b"] > 1
    assert thresholds["c"] > 1
    # everything predicted as b goes to review
    assert review_rate(probabilities, ("a", "b", "c"), thresholds) == pytest.approx(3 / 5)


def test_ties_are_not_split():
    # Two predictions at 0.8, one right and one wrong: accepting 0.8 means accepting both (precision 0.5).
    y_true = ["a", "a", "b"]
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.8, 0.2]])
    thresholds = choose_thresholds(y_true, probabilities, ("a", "b"), target_precision=0.9)
    assert thresholds["a"] == pytest.approx(0.9)


def test_min_threshold_is_a_floor():
    y_true, probabilities, labels = noisy_predictions()
    thresholds = choose_thresholds(y_true, probabilities, labels, target_precision=0.5, min_threshold=0.99)
    assert all(value >= 0.99 for value in thresholds.values())


# --------------------------------------------------------------------- plots


def test_plots_are_figures_that_save_as_png(tmp_path):
    report = evaluate_probabilities(Y_TRUE, one_hot_probabilities(Y_PRED), LABELS)
    confidence = np.array([0.05, 0.15, 0.5, 0.5, 0.95, 0.99, 1.0, 0.0])  # includes empty bins and both edges
    correct = np.array([0, 0, 1, 0, 1, 1, 1, 0], dtype=bool)

    for name, figure in [
        ("confusion", plot_confusion_matrix(report, "title")),
        ("reliability", plot_reliability(confidence, correct, bins=10)),
        ("many-classes", plot_confusion_matrix(evaluate_probabilities(
            [f"c{i}" for i in range(25)], np.eye(25), tuple(f"c{i}" for i in range(25))))),
    ]:
        assert isinstance(figure, Figure)
        path = tmp_path / f"{name}.png"
        figure.savefig(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 1000
