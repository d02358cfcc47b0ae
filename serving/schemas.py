"""The service's request and response models (they are also its OpenAPI schema).

Input models refuse unknown fields and check every field on arrival, so a bad
ticket is answered with a 4xx naming the field and never reaches a model.
"""

from __future__ import annotations

from collections.abc import Sequence
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


RoutingAction = Literal["page_on_call", "assign_now", "queue_for_next_shift", "auto_acknowledge", "human_review"]


class Deadline(BaseModel):
    target_minutes: int
    clock: Literal["business", "calendar"] = Field(description="business: the clock stops while nobody is on shift")
    due_utc: datetime
    due_local: datetime = Field(description="The same moment in the customer's time zone.")


class SlaDeadlines(BaseModel):
    tier: str
    customer_timezone: str
    received_at: datetime
    first_response: Deadline
    resolution: Deadline
    status: Literal["on_track", "near_breach", "breached"] = "on_track"


class ArticleLink(BaseModel):
    title: str
    url: str
    score: float


class Acknowledgement(BaseModel):
    text: str = Field(description="Drafted reply naming the issue, when a human will answer and help articles.")
    reply_by_local: datetime
    articles: list[ArticleLink]
    send: bool = Field(description="True for auto_acknowledge (send it); False: a draft for the next agent.")


class EscalationStep(BaseModel):
    contact: str
    page_at: datetime


class Routing(BaseModel):
    """The routing decision. ``action`` and the fields after it are set by the round-the-clock policy."""

    queue: str
    priority: Literal["P1", "P2", "P3", "P4"]
    reasons: list[str]
    policy: str
    action: RoutingAction | None = None
    team: str | None = Field(None, description="The team on shift now, or the next one to start.")
    team_on_shift: bool | None = None
    team_available_at: datetime | None = Field(None, description="Now when on shift, else the next shift start (UTC).")
    tier: str | None = None
    signals: list[str] = Field(default_factory=list, description="Keyword signals found (security, outage, ...).")
    confidence_levels: dict[str, Literal["auto_apply", "preselect", "suggest", "review"]] = Field(
        default_factory=dict, description="Per task, what the policy lets the prediction do.")
    sla: SlaDeadlines | None = None
    acknowledgement: Acknowledgement | None = None
    escalation: list[EscalationStep] = Field(default_factory=list,
                                             description="For page_on_call: who is paged when, until one acknowledges.")


class PredictionSummary(BaseModel):
    """A task's prediction as ``/predict`` returned it (extra fields such as ``top_features`` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    label: Annotated[str, Field(min_length=1, max_length=200)]
    probabilities: dict[Annotated[str, Field(max_length=200)], Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        min_length=1, max_length=1000)
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="Defaults to the label's probability.")

    def model_post_init(self, _context) -> None:
        if self.confidence is None:
            self.confidence = self.probabilities.get(self.label, 0.0)


class ReassessIn(BaseModel):
    """``POST /tickets/{id}/reassess``: a still unanswered ticket, its predictions and how long it has waited.

    Give ``elapsed_minutes`` (since ``ticket.created_at``, or since the ticket
    arrived when it has none) or ``now`` (the time of the reassessment); with
    neither, the server's clock is used.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "ticket": {"id": "T-1001", "subject": "Cannot log in", "body": "Locked out since this morning.",
                   "customer_tier": "enterprise", "created_at": "2026-01-05T02:08:17+00:00",
                   "customer_timezone": "Europe/Berlin"},
        "predictions": {"urgency": {"label": "high", "probabilities": {"critical": 0.1, "high": 0.6,
                                                                       "medium": 0.2, "low": 0.1}}},
        "elapsed_minutes": 90,
    }})

    ticket: TicketIn
    predictions: dict[Literal["urgency", "category", "sentiment"], PredictionSummary] = Field(
        default_factory=dict, description="The predictions /predict returned for the ticket, per task.")
    elapsed_minutes: Annotated[float, Field(ge=0.0, le=366 * 24 * 60)] | None = Field(
        None, description="Minutes the ticket has waited for a first response.")
    now: datetime | None = Field(None, description="ISO 8601 with a UTC offset; default: the server's clock.")

    @field_validator("now")
    @classmethod
    def _with_offset(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError("now needs a UTC offset (e.g. +00:00 or Z)")
        return value


class PredictionOut(BaseModel):
    prediction_id: str = Field(description="Quote it when sending feedback on this prediction.")
    ticket_id: str
    predictions: dict[str, TaskPrediction] = Field(description="One entry per task whose model is loaded.")
    missing_tasks: list[str] = Field(default_factory=list, description="Tasks without a loaded model.")
    routing: Routing
    recorded: bool = Field(True, description="False when the prediction store is known to be failing: the "
                                             "prediction is kept in memory and written when it is back.")


class BatchOut(BaseModel):
    predictions: list[PredictionOut]


def answer_json(answer: PredictionOut) -> bytes:
    """The answer's JSON, as ``model_dump_json`` writes it, in bytes: the response, and what the store keeps."""
    return answer.__pydantic_serializer__.to_json(answer)


def batch_json(answers_json: Sequence[bytes]) -> bytes:
    """``BatchOut``'s JSON made of its answers' JSON (each answer is serialized once, for the response
    and the store alike); tests pin it to ``BatchOut.model_dump_json``."""
    return b'{"predictions":[' + b",".join(answers_json) + b"]}"


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
