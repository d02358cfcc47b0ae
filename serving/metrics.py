"""Prediction metrics for ``/metrics`` (BentoML adds request counts and latency histograms).

The metric objects are created on first use, not at import: Prometheus refuses a
second registration of the same name, and importing must have no side effects.
"""

from __future__ import annotations

import functools
from collections import Counter
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


@functools.cache
def _batch_sizes():
    import bentoml

    return bentoml.metrics.Histogram(
        name="nightdesk_scoring_batch_size",
        documentation="Tickets per model call (concurrent /predict requests are scored together)",
        buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    )


def record_batch(tickets: int) -> None:
    """Count one model call of ``tickets`` tickets."""
    _batch_sizes().observe(tickets)


def record(answers: Iterable[PredictionOut]) -> None:
    predictions, reviews, truncated, missing = _counters()
    # Counted here first: a bulk call then costs one increment per label, not one per ticket and task.
    labels, review_tasks, missing_tasks, truncated_answers = Counter(), Counter(), Counter(), 0
    for answer in answers:
        for task, prediction in answer.predictions.items():
            labels[task, prediction.label] += 1
            if prediction.needs_review:
                review_tasks[task] += 1
        if any(p.truncated for p in answer.predictions.values()):
            truncated_answers += 1
        missing_tasks.update(answer.missing_tasks)
    for (task, label), count in labels.items():
        predictions.labels(task=task, label=label).inc(count)
    for task, count in review_tasks.items():
        reviews.labels(task=task).inc(count)
    for task, count in missing_tasks.items():
        missing.labels(task=task).inc(count)
    if truncated_answers:
        truncated.inc(truncated_answers)


@functools.cache
def _paging_counters():
    import bentoml

    delivered = bentoml.metrics.Counter(
        name="nightdesk_pages_delivered", documentation="On-call pages accepted by the paging webhook"
    )
    failures = bentoml.metrics.Counter(
        name="nightdesk_page_failures",
        documentation="On-call pages never delivered, by the last error (http_4xx, http_5xx, http_429, "
                      "connection, queue_full, internal)",
        labelnames=["reason"],
    )
    return delivered, failures


def record_page(result) -> None:
    """Count one ``serving.paging.PageResult``."""
    delivered, failures = _paging_counters()
    if result.delivered:
        delivered.inc()
        return
    status = result.status_code
    if status is not None:
        reason = "http_429" if status == 429 else f"http_{status // 100}xx"
    elif result.attempts:
        reason = "connection"
    else:
        reason = "queue_full" if "queue full" in (result.error or "") else "internal"
    failures.labels(reason=reason).inc()
