"""Prediction metrics for ``/metrics`` (BentoML adds request counts and latency histograms).

The metric objects are created on first use, not at import: Prometheus refuses a
second registration of the same name, and importing must have no side effects.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from serving.schemas import PredictionOut


@functools.cache
def _counters():
    import bentoml

    predictions = bentoml.metrics.Counter(
        name="nightdesk_predictions", documentation="Predictions per task and label", labelnames=["task", "label"]
    )
    reviews = bentoml.metrics.Counter(
        name="nightdesk_needs_review", documentation="Predictions flagged for human review, per task",
        labelnames=["task"],
    )
    truncated = bentoml.metrics.Counter(
        name="nightdesk_truncated_tickets", documentation="Tickets whose text was cut to the model limit"
    )
    missing = bentoml.metrics.Counter(
        name="nightdesk_missing_task_answers", documentation="Answers given without a task's model, per task",
        labelnames=["task"],
    )
    return predictions, reviews, truncated, missing


def record(answers: Iterable[PredictionOut]) -> None:
    predictions, reviews, truncated, missing = _counters()
    for answer in answers:
        for task, prediction in answer.predictions.items():
            predictions.labels(task=task, label=prediction.label).inc()
            if prediction.needs_review:
                reviews.labels(task=task).inc()
        if any(p.truncated for p in answer.predictions.values()):
            truncated.inc()
        for task in answer.missing_tasks:
            missing.labels(task=task).inc()
