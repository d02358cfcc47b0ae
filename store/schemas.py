"""The store's typed inputs and outputs (pydantic), shared by serving, training and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Roles of API keys, from least to most powerful; each role may do what the ones before it may.
ROLES: tuple[str, ...] = ("integration", "agent", "admin")
Role = Literal["integration", "agent", "admin"]

Name = Annotated[str, Field(min_length=1, max_length=200)]


class TaskOutcome(BaseModel):
    """One task's answer inside a recorded prediction."""

    label: str
    probabilities: dict[str, float]
    confidence: float
    needs_review: bool
    model_name: str
    model_version: str


class PredictionRecord(BaseModel):
    """A served prediction as the store keeps it (the text is masked by the store before writing)."""

    prediction_id: Name
    ticket_id: Name
    created_at: datetime = Field(description="When the prediction was made (UTC if no offset).")
    subject: str = ""
    body: str = ""
    channel: str | None = None
    customer_tier: str | None = None
    language: str | None = None
    ticket_created_at: datetime | None = None
    customer_timezone: str | None = None
    outcomes: dict[str, TaskOutcome] = Field(default_factory=dict, description="Per task.")
    routing: dict[str, Any] | None = Field(None, description="The routing recommendation, as JSON.")


class CorrectionIn(BaseModel):
    """An agent's correction of one task's label; name the prediction, or the ticket (its latest prediction)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "prediction_id": "6f1c0d3e9a7b4c2d8e5f1a2b3c4d5e6f", "task": "urgency", "label": "critical",
        "agent_id": "agent-17", "reason": "Production outage", "misrouted": False}})

    prediction_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    ticket_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    task: Name
    label: Annotated[str, Field(min_length=1, max_length=200, description="The corrected label.")]
    agent_id: Name
    reason: Annotated[str, Field(max_length=2000)] | None = None
    misrouted: bool = Field(False, description="The ticket was sent to the wrong queue.")

    @model_validator(mode="after")
    def _names_a_prediction(self) -> CorrectionIn:
        if self.prediction_id is None and self.ticket_id is None:
            raise ValueError("prediction_id or ticket_id is required")
        return self


class CorrectionResult(BaseModel):
    """What the store holds for a correction after a request: ``status`` tells whether it changed."""

    id: int
    prediction_id: str
    ticket_id: str
    task: str
    label: str
    original_label: str
    agent_id: str
    reason: str | None
    misrouted: bool
    model_name: str
    model_version: str
    created_at: datetime
    updated_at: datetime
    status: Literal["created", "updated", "unchanged"]


class OverrideRate(BaseModel):
    """Of the recorded predictions in a group, how many an agent corrected to another label."""

    task: str
    key: str = Field(description="The group: the predicted class, the model version or the hour (UTC, 00-23).")
    predictions: int
    overridden: int
    rate: float
    misrouted: int = 0


class FeedbackStats(BaseModel):
    predictions: int = Field(description="Recorded predictions (tickets).")
    corrections: int
    by_task: list[OverrideRate]
    by_class: list[OverrideRate]
    by_model_version: list[OverrideRate]
    by_hour: list[OverrideRate] = Field(description="Hour of day (UTC) of the prediction.")


class RecentPrediction(BaseModel):
    """A recorded prediction for the agent console."""

    prediction_id: str
    ticket_id: str
    created_at: datetime
    subject: str
    body: str
    channel: str | None = None
    customer_tier: str | None = None
    language: str | None = None
    ticket_created_at: datetime | None = None
    customer_timezone: str | None = None
    queue: str | None = None
    outcomes: dict[str, TaskOutcome]
    routing: dict[str, Any] | None = None


class ApiKeyInfo(BaseModel):
    id: int
    prefix: str = Field(description="The token's first characters, to recognise it.")
    role: Role
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None
