"""The service's request and response models (they are also its OpenAPI schema).

Input models refuse unknown fields and check every field on arrival, so a bad
ticket is answered with a 4xx naming the field and never reaches a model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

#: Hard ceiling on a text field (characters). The configurable, usually lower limit
#: (``NIGHTDESK_SERVING_MAX_FIELD_CHARS``) is applied by the service.
FIELD_CHARS_CEILING = 1_000_000

ShortText = Annotated[str, Field(max_length=200)]


class TicketIn(BaseModel):
    """One ticket to triage. At least one of ``subject`` and ``body`` must hold text."""

    model_config = ConfigDict(
        extra="forbid",
        strict=False,
        json_schema_extra={
            # OpenAPI 3.0 ``example`` (BentoML's spec builder has no ``examples``).
            "example": {
                "id": "T-1001",
                "subject": "Cannot log in since this morning",
                "body": "Our whole team is locked out of the dashboard, please help urgently.",
                "channel": "email",
                "customer_tier": "enterprise",
                "language": "en",
                "created_at": "2026-01-05T02:08:17+00:00",
                "customer_timezone": "Europe/Berlin",
            }
        },
    )

    id: Annotated[str, Field(min_length=1, max_length=200, description="The helpdesk's ticket id.")]
    subject: Annotated[str, Field(max_length=FIELD_CHARS_CEILING)] = ""
    # validate_default: an omitted body still gets the "some text" check below.
    body: Annotated[str, Field(max_length=FIELD_CHARS_CEILING, validate_default=True)] = ""
    # Free text rather than an enum: helpdesks have channels and tiers the sample
    # data does not; the model treats an unseen value like a missing one.
    channel: ShortText | None = Field(None, description="e.g. email, web, chat, phone, social, api")
    customer_tier: ShortText | None = Field(None, description="e.g. free, standard, enterprise")
    language: ShortText | None = Field(None, description="ISO 639-1 code, e.g. en, de")
    created_at: datetime | None = Field(None, description="ISO 8601 with a UTC offset, e.g. 2026-01-05T02:08:17+01:00")
    customer_timezone: ShortText | None = Field(None, description="IANA time zone name, e.g. Europe/Berlin")

    @field_validator("created_at", mode="before")
    @classmethod
    def _iso_8601_text(cls, value):
        # Numbers would be read as Unix times; the contract is ISO 8601 text.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("created_at must be an ISO 8601 string with a UTC offset")
        return value

    @field_validator("created_at")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("created_at needs a UTC offset (e.g. +00:00 or Z)")
        return value

    @field_validator("customer_timezone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value not in _zone_names():
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"customer_timezone {value[:60]!r} is not an IANA time zone name") from None
        return value

    @field_validator("body")
    @classmethod
    def _has_text(cls, body: str, info: ValidationInfo) -> str:
        # Checked on body (validated after subject) so that the error names a field.
        if not body.strip() and not str(info.data.get("subject") or "").strip():
            raise ValueError("subject and body are both empty; at least one must hold text")
        return body

    def as_row(self) -> dict:
        """The ticket as one row of a ticket frame (created_at back to ISO 8601 text)."""
        row = self.model_dump()
        if self.created_at is not None:
            row["created_at"] = self.created_at.isoformat()
        return row


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    global _ZONES  # computed once, on first use: available_timezones() walks the tz database
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


class TaskPrediction(BaseModel):
    label: str
    confidence: float
    needs_review: bool = Field(description="True when the confidence is below the label's calibrated threshold.")
    probabilities: dict[str, float]
    top_features: list[str] = Field(description="Words, n-grams and metadata that pushed the ticket towards the label.")
    truncated: bool = Field(description="True when a text field was cut to the model's length limit.")
    model_name: str
    model_version: str


class Routing(BaseModel):
    queue: str
    priority: Literal["P1", "P2", "P3", "P4"]
    reasons: list[str]
    policy: str


class PredictionOut(BaseModel):
    prediction_id: str = Field(description="Quote it when sending feedback on this prediction.")
    ticket_id: str
    predictions: dict[str, TaskPrediction] = Field(description="One entry per task whose model is loaded.")
    missing_tasks: list[str] = Field(default_factory=list, description="Tasks without a loaded model.")
    routing: Routing


class BatchOut(BaseModel):
    predictions: list[PredictionOut]


class ScoredTicket(BaseModel):
    """What scoring one ticket yields before routing (the batchable internal API's item)."""

    predictions: dict[str, TaskPrediction]
    missing_tasks: list[str]


class ModelInfo(BaseModel):
    task: str
    status: Literal["loaded", "missing", "error"]
    model_name: str
    alias: str
    version: str | None = None
    created_at: datetime | None = None
    trained_at: datetime | None = None
    run_id: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    reason: str | None = None


class ModelsOut(BaseModel):
    tracking_uri: str
    models: list[ModelInfo]
