"""Evaluation: metrics, calibration, review thresholds and plots (pure functions)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Baseline:
    label: str
    accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class EvaluationReport:
    n: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, ClassMetrics]
    majority_baseline: Baseline
    expected_calibration_error: float
    labels: tuple[str, ...]
    confusion: list[list[int]]

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The stable JSON contract of ``nightdesk evaluate --json``."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "expected_calibration_error": self.expected_calibration_error,
            "per_class": {
                label: {"precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
                for label, m in self.per_class.items()
            },
            "majority_baseline": asdict(self.majority_baseline),
        }

    def flat_metrics(self) -> dict[str, float]:
        """Metric names and values for MLflow (``recall_<label>``, ...)."""
        metrics = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "weighted_f1": self.weighted_f1,
            "ece": self.expected_calibration_error,
            "baseline_accuracy": self.majority_baseline.accuracy,
            "baseline_macro_f1": self.majority_baseline.macro_f1,
        }
        for label, m in self.per_class.items():
            key = metric_safe(label)
            metrics[f"precision_{key}"] = m.precision
            metrics[f"recall_{key}"] = m.recall
        return metrics


def metric_safe(label: str) -> str:
    """MLflow metric names allow letters, digits, and _-./ only."""
    return "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(label))


def evaluate_probabilities(
    y_true, probabilities: np.ndarray, labels: tuple[str, ...], calibration_bins: int = 10
) -> EvaluationReport:
    """Metrics of a model's class probabilities against true labels.

    True labels the model has never seen count as errors (they are part of the
    evaluation data, so hiding them would flatter the model).
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    if len(y_true) == 0:
        raise ValueError("cannot evaluate on zero labelled tickets")
    label_array = np.asarray(labels, dtype=object)
    y_pred = label_array[probabilities.argmax(axis=1)].astype(str)
    all_labels = list(labels) + sorted(set(y_true) - set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=all_labels, zero_division=0
    )
    per_class = {
        label: ClassMetrics(float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(all_labels, precision, recall, f1, support)
    }
    confidence = probabilities.max(axis=1)
    return EvaluationReport(
        n=len(y_true),
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=all_labels, average="macro", zero_division=0)),
        weighted_f1=float(f1_score(y_true, y_pred, labels=all_labels, average="weighted", zero_division=0)),
        per_class=per_class,
        majority_baseline=majority_baseline(y_true, all_labels),
        expected_calibration_error=expected_calibration_error(confidence, y_pred == y_true, calibration_bins),
        labels=tuple(all_labels),
        confusion=confusion_matrix(y_true, y_pred, labels=all_labels).tolist(),
    )


def majority_baseline(y_true: np.ndarray, labels: list[str]) -> Baseline:
    """Always predicting the most frequent label of the evaluation data: the score to beat."""
    values, counts = np.unique(y_true, return_counts=True)
    majority = str(values[counts.argmax()])
    predictions = np.full(len(y_true), majority, dtype=object)
    return Baseline(
        label=majority,
        accuracy=float(counts.max() / len(y_true)),
        macro_f1=float(f1_score(y_true, predictions, labels=labels, average="macro", zero_division=0)),
    )


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence|, weighted by bin size."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def choose_thresholds(
    y_true, probabilities: np.ndarray, labels: tuple[str, ...], target_precision: float, min_threshold: float = 0.0
) -> dict[str, float]:
    """Per predicted label, the lowest confidence at which predictions reach ``target_precision``.

    Predictions below their label's threshold go to human review. A label whose
    predictions never reach the target gets a threshold above 1 (always reviewed),
    which is the honest answer when the model is not good enough for that class.
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    thresholds = {}
    for index, label in enumerate(labels):
        mine = predicted == index
        thresholds[label] = max(
            min_threshold, _lowest_threshold(confidence[mine], y_true[mine] == label, target_precision)
        )
    return thresholds


def _lowest_threshold(confidence: np.ndarray, correct: np.ndarray, target: float) -> float:
    if len(confidence) == 0:
        return 1.01
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    # Precision of "accept everything at or above confidence[i]" for each i.
    precision = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    # Ties: a threshold can only be placed between distinct confidences.
    last_of_tie = np.r_[confidence[1:] != confidence[:-1], True]
    meets = np.flatnonzero((precision >= target) & last_of_tie)
    return float(confidence[meets[-1]]) if len(meets) else 1.01


def review_rate(probabilities: np.ndarray, labels: tuple[str, ...], thresholds: dict[str, float]) -> float:
    predicted = probabilities.argmax(axis=1)
    limits = np.asarray([thresholds.get(label, 0.0) for label in labels])[predicted]
    return float((probabilities.max(axis=1) < limits).mean())


def plot_confusion_matrix(report: EvaluationReport, title: str = "") -> Figure:
    matrix = np.asarray(report.confusion, dtype=float)
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(report.labels) + 2)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.subplots()
    image = axes.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, label="share of true class")
    ticks = np.arange(len(report.labels))
    axes.set_xticks(ticks, report.labels, rotation=90, fontsize=7 if len(ticks) > 20 else 9)
    axes.set_yticks(ticks, report.labels, fontsize=7 if len(ticks) > 20 else 9)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if len(ticks) <= 20:
        for (row, col), count in np.ndenumerate(matrix):
            if count:
                axes.text(col, row, int(count), ha="center", va="center", fontsize=8,
                          color="white" if normalized[row, col] > 0.5 else "black")
    axes.set_title(title or f"Confusion matrix (n={report.n})")
    figure.tight_layout()
    return figure


def plot_reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10, title: str = "") -> Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    centers = (edges[:-1] + edges[1:]) / 2
    accuracy = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(bins)]
    counts = [(which == b).sum() for b in range(bins)]
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    axes.bar(centers, accuracy, width=1 / bins, edgecolor="black", alpha=0.7, label="accuracy in bin")
    for x, y, n in zip(centers, accuracy, counts):
        if n:
            axes.text(x, min(y + 0.02, 0.97), str(n), ha="center", fontsize=7)
    ece = expected_calibration_error(confidence, correct, bins)
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy")
    axes.set_title(title or f"Reliability (ECE {ece:.3f})")
    axes.legend(loc="upper left")
    figure.tight_layout()
    return figure
