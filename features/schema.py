"""The ticket schema shared by training and serving.

A ticket frame is a pandas DataFrame whose columns are named by ``TicketColumn``;
labels, when present, live in columns named after the task (``urgency``,
``category``, ``sentiment``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Task(StrEnum):
    """A prediction task; each has its own model, experiment and registry entry."""

    URGENCY = "urgency"
    CATEGORY = "category"
    SENTIMENT = "sentiment"


class TicketColumn(StrEnum):
    ID = "id"
    SUBJECT = "subject"
    BODY = "body"
    CHANNEL = "channel"
    CUSTOMER_TIER = "customer_tier"
    LANGUAGE = "language"
    CREATED_AT = "created_at"
    CUSTOMER_TIMEZONE = "customer_timezone"


TASKS: Final[tuple[str, ...]] = tuple(t.value for t in Task)

TEXT_COLUMNS: Final[tuple[str, ...]] = (TicketColumn.SUBJECT.value, TicketColumn.BODY.value)

#: Inputs a model accepts, in order. Only subject and body are required; the rest
#: improve the metadata features when a source has them.
INPUT_COLUMNS: Final[tuple[str, ...]] = (
    TicketColumn.SUBJECT.value,
    TicketColumn.BODY.value,
    TicketColumn.CHANNEL.value,
    TicketColumn.CUSTOMER_TIER.value,
    TicketColumn.LANGUAGE.value,
    TicketColumn.CREATED_AT.value,
    TicketColumn.CUSTOMER_TIMEZONE.value,
)
OPTIONAL_INPUT_COLUMNS: Final[frozenset[str]] = frozenset(INPUT_COLUMNS) - set(TEXT_COLUMNS)

TICKET_COLUMNS: Final[tuple[str, ...]] = (TicketColumn.ID.value, *INPUT_COLUMNS)

#: Fixed label sets. Category is configurable per helpdesk, so it has none here.
URGENCY_LABELS: Final[tuple[str, ...]] = ("critical", "high", "medium", "low")
SENTIMENT_LABELS: Final[tuple[str, ...]] = ("negative", "neutral", "positive")
FIXED_LABELS: Final[dict[str, tuple[str, ...]]] = {
    Task.URGENCY.value: URGENCY_LABELS,
    Task.SENTIMENT.value: SENTIMENT_LABELS,
}

CHANNELS: Final[tuple[str, ...]] = ("email", "web", "chat", "phone", "social", "api")
CUSTOMER_TIERS: Final[tuple[str, ...]] = ("free", "standard", "enterprise")

#: Values used when an optional column is missing or empty.
MISSING_CATEGORY: Final[str] = "unknown"


def allowed_labels(task: str, category_labels: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """The allowed label values of ``task``; ``None`` means any (an unconfigured category set)."""
    if task == Task.CATEGORY.value:
        return category_labels
    try:
        return FIXED_LABELS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}") from None
