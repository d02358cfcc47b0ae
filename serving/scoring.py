"""Scoring tickets with the held models: the service's only path to a prediction.

It builds the model input exactly as the registered pyfunc model receives it
(``features.predictor.to_model_input``) and calls the same ``TicketClassifier``
that the pyfunc wraps, so a served prediction equals the in-process one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from features.predictor import to_model_input
from serving.models import LoadedModel
from serving.schemas import ScoredTicket, TaskPrediction, TicketIn


def tickets_frame(tickets: Sequence[TicketIn]) -> pd.DataFrame:
    """The tickets as the registered model's input frame (same normalisation as in-process scoring)."""
    return to_model_input(pd.DataFrame.from_records([t.as_row() for t in tickets]))


def score_tickets(
    tickets: Sequence[TicketIn], models: Mapping[str, LoadedModel], tasks: Sequence[str]
) -> list[ScoredTicket]:
    """Every loaded task's prediction for each ticket; tasks without a model are listed as missing."""
    if not tickets:
        return []
    frame = tickets_frame(tickets)
    per_task = {task: _task_predictions(model, frame) for task, model in models.items()}
    missing = [task for task in tasks if task not in models]
    return [
        ScoredTicket(predictions={task: rows[i] for task, rows in per_task.items()}, missing_tasks=missing)
        for i in range(len(tickets))
    ]


def _task_predictions(model: LoadedModel, frame: pd.DataFrame) -> list[TaskPrediction]:
    answers = model.classifier.predict_frame(frame)
    return [
        TaskPrediction(
            label=label,
            confidence=confidence,
            needs_review=bool(review),
            probabilities=probabilities,
            top_features=list(top),
            truncated=bool(truncated),
            model_name=model.name,
            model_version=model.version,
        )
        for label, confidence, review, probabilities, top, truncated in zip(
            answers["label"], answers["confidence"], answers["needs_review"],
            answers["probabilities"], answers["top_features"], answers["truncated"],
        )
    ]


def check_limits(tickets: Sequence[TicketIn], max_field_chars: int, max_tickets: int | None = None,
                 prefix: tuple = ()) -> None:
    """Refuse (as a validation error naming the field) what the settings do not allow.

    These limits are configurable, so they cannot live in the static schema.
    """
    errors: list[InitErrorDetails] = []
    if max_tickets is not None and len(tickets) > max_tickets:
        errors.append(_error(prefix, "too_many_tickets",
                             f"{len(tickets)} tickets in one call; the limit is {max_tickets}"))
    for index, ticket in enumerate(tickets):
        where = (*prefix, index) if prefix else ()
        for field in ("subject", "body"):
            length = len(getattr(ticket, field))
            if length > max_field_chars:
                errors.append(_error((*where, field), "text_too_long",
                                     f"{field} has {length} characters; the limit is {max_field_chars}"))
    if errors:
        raise ValidationError.from_exception_data("TicketIn", errors)


def _error(loc: tuple, kind: str, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)
